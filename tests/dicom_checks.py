"""Test helpers for DICOM outputs: dciodvfy (dicom3tools) as the standard's oracle."""

import subprocess
from pathlib import Path

import requirements


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings) that dciodvfy reports for one file; skips without dicom3tools."""
    exe = requirements.tool("dciodvfy", "dicom3tools")
    run = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
    lines = (run.stdout + run.stderr).splitlines()
    return ([x for x in lines if x.startswith("Error")],
            [x for x in lines if x.startswith("Warning")])


def content_items(ds):
    """Every item of an SR content tree, depth first."""
    for item in ds.get("ContentSequence", []):
        yield item
        yield from content_items(item)

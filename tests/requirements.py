"""What some tests need from outside Python's own packages (Debian tools, optional extras).

On a developer's machine a missing piece skips the test with a message naming the package.
Under CI (`CI` set, as `.ci/run` runs) it fails instead: `.ci/run` and `make test` install
every piece, so a skip there would hide a claim the README makes."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI installs it, so its absence here is a failure)")
    pytest.skip(message, allow_module_level=True)


def tool(name: str, package: str) -> str:
    """The path of a command-line tool from a Debian package."""
    exe = shutil.which(name)
    if exe is None:
        _missing(f"{name} is absent: install the Debian package {package}")
    return exe


def file(path: Path, package: str) -> Path:
    """A file a Debian package installs (a plugin, a data file)."""
    if not path.exists():
        _missing(f"{path} is absent: install the Debian package {package}")
    return path


def module(name: str, install: str) -> ModuleType:
    """An importable module that a test extra provides."""
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(f"{name} is not installed: {install}")

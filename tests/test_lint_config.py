"""The lint configuration in pyproject.toml does what `make lint` promises: ruff fails on an
unused import and on `typing.Any` in the packages that must not use it; mypy fails on a type
error, is strict exactly on cam/, session/, launch/, imaging/, models/ and marks/ and not
elsewhere.

Probe modules are written to a temporary folder laid out like the package (so that mypy gives
them the module names the per-package settings match) and checked with the project's own
pyproject.toml; nothing is written into the checkout."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"
STRICT = ("cam", "session", "launch", "imaging", "models", "marks")
DEFAULT = ("trust", "batch", "render")

UNTYPED = "def double(x):\n    return x * 2\n"
TYPED = "def double(x: int) -> int:\n    return x * 2\n"
TYPE_ERROR = 'def double(x: int) -> int:\n    return x * 2\n\n\ncount: int = double("2")\n'


def _mypy_overrides() -> list[dict[str, object]]:
    overrides = tomllib.loads(CONFIG.read_text(encoding="utf-8"))["tool"]["mypy"]["overrides"]
    return list(overrides)


def _ruff(source: str, as_path: str) -> subprocess.CompletedProcess[str]:
    """ruff on `source` as if it were the file `as_path` of the checkout (per-file settings)."""
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--config", str(CONFIG),
                           "--no-cache", "--output-format", "concise",
                           "--stdin-filename", str(ROOT / as_path), "-"],
                          input=source, capture_output=True, text=True, cwd=ROOT, timeout=120)


def _mypy(tmp_path: Path, modules: dict[str, str]) -> dict[str, list[str]]:
    """mypy with the project's configuration on probe modules {"cam/probe.py": source}; the
    error codes it reports, per probe."""
    package = tmp_path / "gradcam_viewer"
    for rel, source in modules.items():
        path = package / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in (package, path.parent):
            (folder / "__init__.py").touch()
        path.write_text(source)
    files = [str(package / rel) for rel in modules]
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(CONFIG),
                           "--cache-dir", str(tmp_path / ".mypy_cache"), "--no-error-summary",
                           *files], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert "error: " in done.stdout or done.returncode == 0, done.stdout + done.stderr
    found: dict[str, list[str]] = {rel: [] for rel in modules}
    for line in done.stdout.splitlines():
        match = re.match(r"gradcam_viewer/(\S+?):\d+: error: .*\[([a-z-]+)\]$", line)
        if match and match.group(1) in found:
            found[match.group(1)].append(match.group(2))
    assert (done.returncode == 0) == (not any(found.values())), done.stdout + done.stderr
    return found


def test_ruff_fails_on_an_unused_import():
    clean = _ruff(TYPED, "gradcam_viewer/trust/probe.py")
    assert clean.returncode == 0, clean.stdout
    unused = _ruff("import os\n\n\n" + TYPED, "gradcam_viewer/trust/probe.py")
    assert unused.returncode == 1 and "F401" in unused.stdout, unused.stdout


@pytest.mark.parametrize("package", ["cam", "imaging", "models", "launch", "session"])
def test_ruff_bans_any_in_the_typed_packages(package):
    source = "from typing import Any\n\n\ndef ident(x: Any) -> Any:\n    return x\n"
    banned = _ruff(source, f"gradcam_viewer/{package}/probe.py")
    assert banned.returncode == 1 and "TID251" in banned.stdout, banned.stdout
    elsewhere = _ruff(source, "gradcam_viewer/trust/probe.py")
    assert elsewhere.returncode == 0, elsewhere.stdout


def test_mypy_fails_on_a_type_error_and_is_strict_only_where_configured(tmp_path):
    probes = {f"{p}/untyped_probe.py": UNTYPED for p in STRICT + DEFAULT}
    probes.update({f"{p}/typed_probe.py": TYPED for p in STRICT})
    probes["trust/error_probe.py"] = TYPE_ERROR
    found = _mypy(tmp_path, probes)
    strict = [o for o in _mypy_overrides() if o.get("disallow_untyped_defs")]
    assert len(strict) == 1 and sorted(strict[0]["module"]) == sorted(  # type: ignore[arg-type]
        f"gradcam_viewer.{p}.*" for p in STRICT)
    assert not any(o.get("ignore_errors") for o in _mypy_overrides())  # nothing switched off
    for package in STRICT:  # a function without annotations fails the strict packages
        assert "no-untyped-def" in found[f"{package}/untyped_probe.py"], (package, found)
        assert found[f"{package}/typed_probe.py"] == [], (package, found)
    for package in DEFAULT:  # ... and passes the default-checked ones
        assert found[f"{package}/untyped_probe.py"] == [], (package, found)
    assert found["trust/error_probe.py"] == ["arg-type"], found

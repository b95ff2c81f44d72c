"""`make package`: PyInstaller one-folder bundle, trimmed and checked, then a .tar.gz and a .deb.

Prints the bundle size and the newest glibc symbol version the bundle needs. Run by a Windows
Python (under Wine: `make package-windows`, packaging/windows/build_windows.py) it freezes, trims
and writes the licence list only, into $GRADCAM_WINDOWS_WORK/dist; NSIS makes the installer.
The macOS (.app/.dmg) recipe is in packaging/macos.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = "gradcam-viewer"
WINDOWS = sys.platform == "win32"
# Windows: outside the checkout (packaging/windows/wine.py says why)
WINDOWS_WORK = Path(os.environ.get("GRADCAM_WINDOWS_WORK", ROOT / "build" / "windows"))
DIST = WINDOWS_WORK / "dist" if WINDOWS else ROOT / "dist"
BUNDLE = DIST / NAME
WORKPATH = WINDOWS_WORK / "pyinstaller" if WINDOWS else ROOT / "build" / "pyinstaller"

# Qt parts the viewer does not use (Essentials ships them; nothing we load links them).
QT_DROP_DIRS = ["translations", "qml", "resources/qtwebengine_devtools_resources.pak"]
QT_KEEP_PLUGINS = {"platforms", "imageformats", "platformthemes", "xcbglintegrations",
                   "styles", "iconengines", "platforminputcontexts", "egldeviceintegrations",
                   "wayland-shell-integration", "wayland-decoration-client",
                   "wayland-graphics-integration-client"}
# TensorFlow libraries that are safe to strip (numpy's are left alone: --strip breaks them)
STRIP_PATTERNS = [r"_pywrap_tensorflow_internal\.so$", r"libtensorflow_framework\.so(\.\d+)*$",
                  r"libtensorflow_cc\.so(\.\d+)*$", r"_pywrap_.*\.so$"]


# PyInstaller's run-time part is GPL-2.0-or-later *with the bootloader exception*, which lets
# bundled programs be distributed under any licence.
GPL_WITH_EXCEPTION = ("pyinstaller",)


def version() -> str:
    from gradcam_viewer import __version__

    return __version__


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def run_pyinstaller() -> None:
    shutil.rmtree(BUNDLE, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                    "--distpath", str(DIST), "--workpath", str(WORKPATH),
                    str(ROOT / "packaging" / "gradcam-viewer.spec")], check=True, cwd=ROOT)


def internal() -> Path:
    inner = BUNDLE / "_internal"
    return inner if inner.is_dir() else BUNDLE


def trim() -> int:
    before = du(BUNDLE)
    qt = internal() / "PySide6" / "Qt"  # Linux and macOS wheels; Windows ones have no Qt/
    if not qt.is_dir():
        qt = internal() / "PySide6"
    for rel in QT_DROP_DIRS:
        target = qt / rel
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    plugins = qt / "plugins"
    if plugins.is_dir():
        for child in plugins.iterdir():
            if child.is_dir() and child.name not in QT_KEEP_PLUGINS:
                shutil.rmtree(child)
    gtk = plugins / "platformthemes" / "libqgtk3.so"  # needs GTK 3, which we do not declare
    if gtk.exists():
        gtk.unlink()
    for junk in ("tensorflow/include", "pydicom/data/test_files"):
        shutil.rmtree(internal() / junk, ignore_errors=True)
    for pattern in ("**/__pycache__", "**/tests", "**/testing"):
        for p in internal().glob(pattern):
            if p.is_dir() and "numpy" not in p.parts:  # numpy.testing is imported by numpy
                shutil.rmtree(p, ignore_errors=True)
    return before - du(BUNDLE)


def strip_tensorflow() -> int:
    if shutil.which("strip") is None:
        return 0
    saved = 0
    for p in internal().rglob("*.so*"):
        if p.is_symlink() or not p.is_file() or "tensorflow" not in str(p):
            continue
        if any(re.search(pat, p.name) for pat in STRIP_PATTERNS):
            size = p.stat().st_size
            subprocess.run(["strip", "--strip-unneeded", str(p)], check=True)
            saved += size - p.stat().st_size
    return saved


def glibc_needed() -> str:
    newest = (0, 0)
    for p in list(internal().rglob("*.so*")) + [BUNDLE / NAME]:
        if p.is_symlink() or not p.is_file():
            continue
        out = subprocess.run(["objdump", "-T", str(p)], capture_output=True, text=True).stdout
        for major, minor in re.findall(r"GLIBC_(\d+)\.(\d+)", out):
            newest = max(newest, (int(major), int(minor)))
    return f"{newest[0]}.{newest[1]}"


def licences() -> tuple[Path, list[str]]:
    """THIRD_PARTY_LICENSES.md for every distribution with code in the bundle."""
    from importlib.metadata import packages_distributions

    top = {p.name.split(".")[0] for p in internal().iterdir()}
    for pattern in ("*.so*", "*.pyd", "*.dll"):
        top |= {p.stem.split(".")[0] for p in internal().glob(pattern)}
    # pure-Python modules live inside the PYZ archive, listed in PyInstaller's TOC
    toc = WORKPATH / NAME / "PYZ-00.toc"
    if toc.is_file():
        top |= set(re.findall(r"\('([A-Za-z_][\w]*)[.']", toc.read_text()))
    mapping = packages_distributions()
    dists = sorted({d for mod, ds in mapping.items() if mod in top for d in ds}
                   | {"PySide6_Essentials", "shiboken6"})
    out = subprocess.run([sys.executable, "-m", "piplicenses", "--format=markdown",
                          "--with-urls", "--with-license-file", "--no-license-path",
                          "--packages", *dists], capture_output=True, text=True, check=True).stdout
    target = internal() / "THIRD_PARTY_LICENSES.md"
    target.write_text("# Third-party licences of gradcam-viewer's bundle\n\n" + out,
                      encoding="utf-8")
    rows = subprocess.run([sys.executable, "-m", "piplicenses", "--format=csv", "--packages",
                           *dists], capture_output=True, text=True, check=True).stdout
    gpl = [line for line in rows.splitlines()[1:]
           if re.search(r"\bGPL", line) and not re.search(r"LGPL|Lesser", line)
           and not line.strip('"').lower().startswith(GPL_WITH_EXCEPTION)]
    return target, gpl


def make_tar(ver: str) -> Path:
    out = DIST / f"{NAME}-{ver}-linux-x86_64.tar.gz"
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(BUNDLE, arcname=f"{NAME}-{ver}")
    return out


def make_deb(ver: str) -> Path:
    stage = ROOT / "build" / "deb"
    shutil.rmtree(stage, ignore_errors=True)
    opt = stage / "opt" / NAME
    shutil.copytree(BUNDLE, opt, symlinks=True)
    (stage / "usr" / "bin").mkdir(parents=True)
    os.symlink(f"/opt/{NAME}/{NAME}", stage / "usr" / "bin" / NAME)
    apps = stage / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copy(ROOT / "packaging" / "linux" / f"{NAME}.desktop", apps)
    icons = stage / "usr" / "share" / "icons" / "hicolor" / "256x256" / "apps"
    icons.mkdir(parents=True)
    shutil.copy(ROOT / "resources" / "icons" / f"{NAME}.png", icons)
    debian = stage / "DEBIAN"
    debian.mkdir()
    control = (ROOT / "packaging" / "linux" / "control.in").read_text()
    control = control.replace("@VERSION@", ver).replace(
        "@SIZE@", str(du(stage) // 1024))
    (debian / "control").write_text(control)
    out = DIST / f"{NAME}_{ver}_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "-z6", "--build", str(stage),
                    str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-pyinstaller", action="store_true")
    args = parser.parse_args()
    ver = version()
    if not args.skip_pyinstaller:
        run_pyinstaller()
    untrimmed = du(BUNDLE)
    trimmed = trim()
    stripped = 0 if WINDOWS else strip_tensorflow()
    lic, gpl = licences()
    if gpl:
        print("GPL-licensed packages in the bundle:\n  " + "\n  ".join(gpl), file=sys.stderr)
        return 1
    if WINDOWS:  # CPython itself (python311.dll, the standard library) is no pip distribution
        shutil.copy(Path(sys.base_prefix) / "LICENSE.txt", internal() / "PYTHON_LICENSE.txt")
    size = du(BUNDLE)
    if WINDOWS:
        print(f"bundle: {BUNDLE}\n  untrimmed {untrimmed / 2**20:.0f} MiB, trimmed "
              f"{trimmed / 2**20:.0f} MiB -> {size / 2**20:.0f} MiB\n"
              f"  licence list: {lic.relative_to(BUNDLE)} (no GPL-only package)")
        return 0
    tar = make_tar(ver)
    deb = make_deb(ver)
    print(f"bundle: {BUNDLE}")
    print(f"  untrimmed {untrimmed / 2**20:.0f} MiB, trimmed {trimmed / 2**20:.0f} MiB, "
          f"stripped {stripped / 2**20:.0f} MiB -> {size / 2**20:.0f} MiB")
    print(f"  needs glibc >= {glibc_needed()}")
    print(f"  licence list: {lic.relative_to(BUNDLE)} (no GPL-only package)")
    print(f"tar.gz: {tar.name} {tar.stat().st_size / 2**20:.0f} MiB")
    print(f"deb:    {deb.name} {deb.stat().st_size / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

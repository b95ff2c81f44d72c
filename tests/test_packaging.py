"""Lint the installer recipes (NSIS, macOS, Linux): syntax, required keys, files they name; and
the spec's Windows-only collection of wheel DLL folders, run against a fake site-packages.
`make package-test` and `make package-test-windows` build and run the real installers."""

import ast
import configparser
import os
import plistlib
import re
import shutil
import subprocess
import sys
import sysconfig
import types
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "packaging"
SAMPLE_PNG = ROOT / "resources" / "samples" / "phantom_03_nodule.png"


def test_spec_is_valid_python_and_one_folder():
    source = (PKG / "gradcam-viewer.spec").read_text()
    tree = ast.parse(source)
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name)}
    assert {"Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE"} <= calls
    assert "exclude_binaries=True" in source  # one-folder: binaries go to COLLECT
    assert "upx=False" in source and "strip=False" in source
    info = re.search(r"info_plist=(\{.*?\n        \}),\n    \)", source, re.S).group(1)
    plist = ast.literal_eval(info)
    plistlib.dumps(plist)  # serialisable as an Info.plist
    assert "dcm" in plist["CFBundleDocumentTypes"][0]["CFBundleTypeExtensions"]


def test_nsis_script():
    """The Windows installer's recipe has what a reading room needs; `make package-test-windows`
    builds it and runs it under Wine."""
    text = (PKG / "windows" / "gradcam-viewer.nsi").read_text()
    for needed in ("MULTIUSER_USE_PROGRAMFILES64", "MULTIUSER_INSTALLMODE_COMMANDLINE",
                   "MUI_PAGE_LICENSE", "WriteUninstaller", "QuietUninstallString",
                   r"Software\Classes\.dcm\OpenWithProgids", r"$SMPROGRAMS\${APPNAME}.lnk"):
        assert needed in text, needed
    # "Open with" only: the installer never writes the default value of .dcm itself
    assert not re.search(r'WriteRegStr \S+ "Software\\Classes\\.dcm" ""', text)
    # the user's data goes only when asked: an unselected uninstaller section
    assert re.search(r'^Section /o "un\.[^"]*settings', text, re.M)
    # gradcam-viewer:// links: a URL protocol whose command passes the whole link as the only
    # argument, which the program reads (gradcam_viewer/launch/links.py)
    from gradcam_viewer.launch.links import SCHEME

    assert "URI_HANDLER" not in text  # built into every installer
    assert f'!define URI_SCHEME "{SCHEME}"' in text
    uri = text.split('Section "Open ${URI_SCHEME}://')[1].split("SectionEnd")[0]
    assert '"URL Protocol" ""' in uri
    assert r"""'"$INSTDIR\${APPEXE}" "%1"'""" in uri
    assert (PKG / "windows" / "gradcam-viewer.ico").is_file()
    assert (ROOT / "LICENSES.md").is_file()


def _compile_nsis(tmp_path: Path, *defines: str) -> Path:
    bundle = tmp_path / "bundle"
    (bundle / "_internal").mkdir(parents=True, exist_ok=True)
    (bundle / "gradcam-viewer.exe").write_bytes(b"MZ")
    out = tmp_path / "setup.exe"
    subprocess.run(["makensis", "-V2", "-INPUTCHARSET", "UTF8", "-DVERSION=0.1.0",
                    f"-DBUNDLE={bundle}", f"-DOUTFILE={out}", f"-DROOT={ROOT}", *defines,
                    str(PKG / "windows" / "gradcam-viewer.nsi")], check=True,
                   capture_output=True, text=True)
    return out


def test_nsis_script_compiles(tmp_path):
    """makensis accepts the script (a fake one-file bundle)."""
    if shutil.which("makensis") is None:  # CI does not install it (a plain skip, not a failure)
        pytest.skip("makensis is absent: install the Debian package nsis")
    out = _compile_nsis(tmp_path, "-DFAST_COMPRESSION")
    head = out.read_bytes()[:4096]
    assert head[:2] == b"MZ"  # a Windows program...
    pe = int.from_bytes(head[0x3C:0x40], "little")
    assert head[pe:pe + 4] == b"PE\0\0"
    # ...for x64: a 32-bit installer needs wine32 under Wine, and sees the 32-bit registry view
    assert int.from_bytes(head[pe + 4:pe + 6], "little") == 0x8664


def _run_spec(monkeypatch, site: Path, found_binaries=(), pure=(), platform="win32"):
    """Execute packaging/gradcam-viewer.spec with PyInstaller's build objects replaced by
    recorders, as PyInstaller would on `platform` with `site` as site-packages. Returns what
    reaches COLLECT: the bundle's files, and the executables (EXE's keyword arguments)."""
    collected = {}

    class Analysis:
        def __init__(self, *args, **kwargs):
            self.binaries = list(found_binaries)
            self.datas, self.scripts, self.pure = [], [], list(pure)

    def exe(*args, **kwargs):
        return dict(kwargs)

    def collect(*args, **kwargs):
        collected["toc"] = [entry for arg in args if isinstance(arg, list) for entry in arg]
        collected["exes"] = [arg for arg in args if isinstance(arg, dict)]

    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_data_files = hooks.collect_submodules = hooks.copy_metadata = (
        lambda *a, **k: [])
    for name in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(sysconfig, "get_path", lambda name, *a, **k: str(site))
    spec = PKG / "gradcam-viewer.spec"
    namespace = {"SPECPATH": str(PKG), "__name__": "__main__", "Analysis": Analysis,
                 "PYZ": lambda *a, **k: None, "EXE": exe, "COLLECT": collect,
                 "BUNDLE": lambda *a, **k: None}
    exec(compile(spec.read_text(), str(spec), "exec"), namespace)
    monkeypatch.undo()
    return {dest.replace("\\", "/") for dest, *_ in collected["toc"]}, collected["exes"]


def test_spec_collects_every_wheel_dll_folder_on_windows(tmp_path, monkeypatch):
    """Windows wheels keep their DLLs in `<package>.libs/` (delvewheel), and each package adds
    its own folder to the DLL search path. PyInstaller's analysis keeps a DLL shared by several
    wheels once (msvcp140-<hash>.dll under optree.libs) and drops ml_dtypes.libs, so the frozen
    app could not import ml_dtypes. The spec must collect every such folder of the bundled
    packages, whole, at its own path. The tree below is laid out as those wheels install."""
    site = tmp_path / "site-packages"
    shared = "msvcp140-a4c2229bdc2a2a630acdc095b4d86008.dll"
    layout = {
        "ml_dtypes.libs": [shared],
        "optree.libs": [shared],
        "numpy.libs": ["libscipy_openblas64_-caad452230ae4ddb57899b8b3a33c55c.dll",
                       "msvcp140-23ebcc0b37c8e3d074511f362feac48b.dll"],
        "scipy.libs": ["libopenblas-0123.dll"],  # installed, but scipy is not in the bundle
    }
    for folder, dlls in layout.items():
        (site / folder).mkdir(parents=True)
        for dll in dlls:
            (site / folder / dll).write_bytes(b"MZ")
    (site / "optree.libs" / "README.txt").write_text("not a DLL")
    # what PyInstaller's own analysis found: the extensions, and the shared DLL once
    found = [("ml_dtypes\\_ml_dtypes_ext.cp311-win_amd64.pyd", "x", "EXTENSION"),
             ("optree\\_C.cp311-win_amd64.pyd", "x", "EXTENSION"),
             ("numpy\\_core\\_multiarray_umath.cp311-win_amd64.pyd", "x", "EXTENSION"),
             (f"optree.libs\\{shared}", str(site / "optree.libs" / shared), "BINARY")]
    pure = [("numpy", "x", "PYMODULE"), ("ml_dtypes", "x", "PYMODULE"),
            ("optree", "x", "PYMODULE")]
    bundle, _ = _run_spec(monkeypatch, site, found, pure)
    for folder in ("ml_dtypes.libs", "optree.libs", "numpy.libs"):
        for dll in layout[folder]:
            assert f"{folder}/{dll}" in bundle, f"{folder}/{dll} missing from the bundle"
    assert not any(dest.startswith("scipy.libs/") for dest in bundle)
    assert "optree.libs/README.txt" not in bundle


def test_desktop_entry_and_control():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(PKG / "linux" / "gradcam-viewer.desktop")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Exec"].startswith("gradcam-viewer")
    assert d["Categories"].endswith(";") and d["MimeType"].endswith(";")
    control = (PKG / "linux" / "control.in").read_text()
    fields = dict(re.findall(r"^([\w-]+): (.*)$", control, re.M))
    for key in ("Package", "Version", "Architecture", "Maintainer", "Depends", "Description"):
        assert key in fields
    for lib in ("libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0", "libxkbcommon-x11-0"):
        assert lib in fields["Depends"]


def test_icons():
    with Image.open(ROOT / "resources" / "icons" / "gradcam-viewer.png") as png:
        assert png.size == (256, 256)
    with Image.open(PKG / "windows" / "gradcam-viewer.ico") as ico:
        assert (256, 256) in ico.info["sizes"]
    with Image.open(PKG / "macos" / "gradcam-viewer.icns") as icns:
        assert icns.format == "ICNS"


def test_installer_leaves_the_cluster_extra_out():
    """Ray (explain --ray) is the optional extra gradcam-viewer[cluster], never bundled."""
    source = (PKG / "gradcam-viewer.spec").read_text()
    tree = ast.parse(source)
    excludes = next(ast.literal_eval(n.value) for n in ast.walk(tree)
                    if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "excludes")
    assert {"ray", "pyarrow"} <= set(excludes)
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(dep.startswith("ray") for dep in project["dependencies"])
    assert any(dep.startswith("ray[data]") for dep in project["optional-dependencies"]["cluster"])


@pytest.mark.parametrize("platform", ["win32", "linux"])
def test_spec_executables(tmp_path, monkeypatch, platform):
    """Windows gets a windowed gradcam-viewer.exe and a console twin for the headless commands
    (a windowed program prints nothing into cmd.exe, which does not wait for it); Linux one
    console program."""
    _, exes = _run_spec(monkeypatch, tmp_path, platform=platform)
    consoles = {e["name"]: e["console"] for e in exes}
    if platform == "win32":
        assert consoles == {"gradcam-viewer": False, "gradcam-viewer-cli": True}
        assert all(e["icon"].endswith("gradcam-viewer.ico") for e in exes)
    else:
        assert consoles == {"gradcam-viewer": True}


def test_entry_runs_a_command_without_standard_streams(tmp_path):
    """A windowed Windows program starts with sys.stdout and sys.stderr set to None: `explain`
    run by gradcam-viewer.exe (not the -cli twin) must still do its work and exit 0, not die
    on its first message."""
    script = (
        "import os, runpy, sys\n"
        "sys.stdout = sys.stderr = None\n"
        f"sys.argv = ['gradcam-viewer', 'explain', {str(SAMPLE_PNG)!r}, '--out', "
        f"{str(tmp_path / 'out')!r}, '--overlays', 'none']\n"
        "try:\n"
        f"    runpy.run_path({str(PKG / 'entry.py')!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    os.write(1, f'exit {e.code}'.encode())\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600, cwd=ROOT,
                         env={**os.environ, "GRADCAM_VIEWER_LOG_DIR": str(tmp_path / "log")})
    assert run.stdout.strip().endswith("exit 0"), run.stdout[-2000:] + run.stderr[-2000:]
    assert (tmp_path / "out" / f"{SAMPLE_PNG.stem}.json").is_file()


def test_gradcam_viewer_links_are_registered():
    """The link scheme the program reads is the one each installer registers, and the bundle
    keeps QtNetwork (the local socket that hands a second launch to the running viewer)."""
    from gradcam_viewer.launch.links import SCHEME

    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(PKG / "linux" / "gradcam-viewer.desktop")
    d = entry["Desktop Entry"]
    assert f"x-scheme-handler/{SCHEME}" in d["MimeType"].split(";")
    # %U: links arrive as themselves, files as file:// URLs (which the program reads as paths)
    assert d["Exec"] == "gradcam-viewer %U"
    source = (PKG / "gradcam-viewer.spec").read_text()
    plist = ast.literal_eval(re.search(r"info_plist=(\{.*?\n        \}),\n    \)", source,
                                       re.S).group(1))
    assert plist["CFBundleURLTypes"][0]["CFBundleURLSchemes"] == [SCHEME]
    excludes = next(ast.literal_eval(n.value) for n in ast.walk(ast.parse(source))
                    if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "excludes")
    assert "PySide6.QtNetwork" not in excludes


def test_desktop_entry_is_valid():
    import subprocess

    import requirements

    exe = requirements.tool("desktop-file-validate", "desktop-file-utils")
    done = subprocess.run([exe, str(PKG / "linux" / "gradcam-viewer.desktop")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error:" not in done.stdout


def test_the_commands_imported_by_name_are_in_the_bundle():
    """cli/__init__.py imports each command's module by name when it runs; PyInstaller cannot
    see such imports, so the spec collects the package (without it the bundle's `explain`
    stopped with ModuleNotFoundError)."""
    source = (PKG / "gradcam-viewer.spec").read_text()
    assert 'collect_submodules("gradcam_viewer.cli")' in source
    from gradcam_viewer.cli import _MODULES

    for module in _MODULES.values():
        assert (ROOT / "gradcam_viewer" / "cli" / f"{module}.py").is_file()


def test_windows_pins_are_within_the_program_s_ranges():
    """Every package the Windows build pins (packaging/windows/constraints.txt) satisfies what
    pyproject.toml asks of it: a pin outside the Linux range (PySide6 6.12.0 against <6.12 once)
    builds an installer of versions no test ran."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    root = Path(__file__).resolve().parents[1]
    pins = {}
    for line in (root / "packaging/windows/constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    checked = []
    for spec in project["dependencies"]:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"sys_platform": "win32",
                                                               "platform_system": "Windows"}):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned for the Windows build"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{req.name}=={pins[name]} is outside {req.specifier} (pyproject.toml)"
        checked.append(name)
    assert "pyside6-essentials" in checked and "numpy" in checked

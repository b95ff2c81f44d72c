"""Lint the installer recipes that cannot be built here (Inno Setup, macOS) and the Linux ones
that `make package-test` builds: syntax, required keys, and that every file they name exists."""

import ast
import configparser
import plistlib
import re
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "packaging"


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


def test_inno_setup_script():
    text = (PKG / "windows" / "gradcam-viewer.iss").read_text()
    sections = re.findall(r"^\[(\w+)\]", text, re.M)
    for needed in ("Setup", "Files", "Icons", "Registry", "Tasks", "Run"):
        assert needed in sections, needed
    setup = dict(re.findall(r"^(\w+)=(.*)$", text.split("[Setup]")[1].split("\n[")[0], re.M))
    assert re.fullmatch(r"\{\{[0-9A-F-]{36}\}", setup["AppId"])
    assert setup["ChangesAssociations"] == "yes"
    assert (PKG / "windows" / setup["SetupIconFile"]).is_file()
    assert (PKG / "windows" / setup["LicenseFile"].replace("\\", "/")).resolve().is_file()
    assert r'Subkey: "Software\Classes\.dcm\OpenWithProgids"' in text
    assert '"{uninstallexe}"' in text  # an uninstaller entry in the Start menu
    for line in text.splitlines():
        if line.startswith(("Root:", "Name:", "Source:", "Filename:")):
            assert line.count('"') % 2 == 0, line


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

"""`make package-test-windows`: build the Windows installer, then try it under Wine and Xvfb.

Silent per-machine install; the installed gradcam-viewer.exe's --self-test; the installed
`explain` on real DICOMs (JPEG Lossless and 12-bit JPEG decoded by the GDCM child process,
JPEG 2000, JPEG-LS, JPEG baseline, no file meta) compared with the Linux source tree's results
and its --dicom-out objects checked by dciodvfy; a screenshot of the window on a sample; silent
uninstall (Program Files emptied, registry cleaned, the user's data kept); then a per-user
install and an uninstall that removes the user's data when asked. Prints each step's time.

SKIP_BUILD=1 tests the installer already in dist/ (with the prefix of that build).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wine import (
    DIST,
    NAME,
    PREFIX,
    ROOT,
    fail,
    print_times,
    step,
    version,
    wine,
    wine_env,
    wineserver_wait,
    winpath,
)

APPNAME = "Grad-CAM Viewer"
PROGRAM_FILES = PREFIX / "drive_c" / "Program Files"
INSTALLED = PROGRAM_FILES / APPNAME
UNINSTKEY = r"Software\Microsoft\Windows\CurrentVersion\Uninstall\gradcam-viewer"
LINUX_PY = ROOT / ".venv" / "bin" / "python"
SHARED = Path(os.environ.get("GRADCAM_SHARED_DATA", ROOT.parent / "shared" / "data"))
TOLERANCE = 1e-5
SAMPLE = ROOT / "resources" / "samples" / "phantom_02_cardiomegaly_effusion.dcm"


def inputs(work: Path) -> list[Path]:
    """Real DICOMs of every path through the decoders (the 12-bit JPEG from pydicom's corpus),
    copied into one folder so that both runs name their outputs alike."""
    dicom = SHARED / "cxr-dicom"
    if not dicom.is_dir():
        fail(f"{dicom} is absent (set GRADCAM_SHARED_DATA to the shared data folder)")
    corpus = subprocess.run([str(LINUX_PY), "-c", "from pydicom.data import get_testdata_file;"
                             "print(get_testdata_file('JPEG-lossy.dcm'))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    sources = {f.name: f for f in sorted(dicom.glob("*.dcm"))}
    sources["WG04_RG2_JPLL.dcm"] = dicom / "other" / "WG04_RG2_JPLL.dcm"
    sources["JPEG-lossy-12bit.dcm"] = Path(corpus)
    folder = work / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        shutil.copyfile(source, folder / name)
    return sorted(folder.iterdir())


def reg_query(hive_key: str, value: str | None = None) -> str | None:
    args = ["reg", "query", hive_key] + (["/v", value] if value else [])
    run = wine(*args, check=False, capture=True)
    return run.stdout if run.returncode == 0 else None


def installed_exe(name: str = "gradcam-viewer.exe") -> str:
    return rf"C:\Program Files\{APPNAME}\{name}"


def install(setup: Path) -> None:
    shutil.rmtree(INSTALLED, ignore_errors=True)
    wine(winpath(setup), "/S")
    wineserver_wait()
    for rel in ("gradcam-viewer.exe", "gradcam-viewer-cli.exe", "uninstall.exe", "_internal/LICENSES.md",
                "_internal/THIRD_PARTY_LICENSES.md", "_internal/ml_dtypes.libs"):
        if not (INSTALLED / rel).exists():
            fail(f"not installed: {INSTALLED / rel}")
    start_menu = PREFIX / "drive_c" / "ProgramData" / "Microsoft" / "Windows" / "Start Menu" / (
        "Programs") / f"{APPNAME}.lnk"
    if not start_menu.is_file():
        fail(f"no Start menu entry: {start_menu}")
    entry = reg_query(rf"HKLM\{UNINSTKEY}", "UninstallString")
    if not entry or "uninstall.exe" not in entry:
        fail(f"no Add/Remove Programs entry under HKLM\\{UNINSTKEY}")
    progids = reg_query(r"HKLM\Software\Classes\.dcm\OpenWithProgids")
    if not progids or "GradCamViewer.dcm" not in progids:
        fail(".dcm 'Open with' not registered")
    default = reg_query(r"HKLM\Software\Classes\.dcm", "")  # the default program: left alone
    if default and "GradCamViewer" in default.split("OpenWithProgids")[0]:
        fail(".dcm's default program was taken over")
    link = reg_query(r"HKLM\Software\Classes\gradcam-viewer\shell\open\command", "")
    if not link or f'"{installed_exe()}" "%1"' not in link:
        fail(f"gradcam-viewer:// links not registered to the installed program: {link}")
    size = sum(p.stat().st_size for p in INSTALLED.rglob("*") if p.is_file())
    print(f"   installed {size / 2**20:.0f} MiB in C:\\Program Files\\{APPNAME}, Start menu entry,"
          " Add/Remove Programs entry, .dcm in Open with (default program untouched),"
          " gradcam-viewer:// links")


def self_test() -> None:
    run = wine(installed_exe(), "--self-test", capture=True, timeout=900)
    said = [line for line in run.stdout.splitlines() if line.startswith("self-test:")]
    print("   " + (said[-1] if said else run.stdout[-2000:]))
    if not said or not said[-1].startswith("self-test: OK"):
        fail("self-test did not report OK")


def explain(files: list[Path], work: Path) -> tuple[Path, Path]:
    """The same files through the installed program and through the Linux source tree; each
    writes its outputs into <folder>/ and its DICOM objects into <folder>-dicom/."""
    ref, out, dicom_out = work / "linux", work / "windows", work / "windows-dicom"
    common = ["explain", "--overlays", "Effusion,Nodule"]
    subprocess.run([str(LINUX_PY), "-m", "gradcam_viewer", *common, "--out", str(ref),
                    "--dicom-out", str(work / "linux-dicom"), *map(str, files)],
                   check=True, cwd=ROOT, timeout=1800,
                   env=dict(os.environ, CUDA_VISIBLE_DEVICES="-1", TF_CPP_MIN_LOG_LEVEL="2"))
    wine(installed_exe("gradcam-viewer-cli.exe"), *common, "--out", winpath(out),
         "--dicom-out", winpath(dicom_out), *map(winpath, files), timeout=1800)
    return ref, out


def compare(files: list[Path], ref: Path, out: Path) -> None:
    """Probabilities, OOD scores and heatmaps (the Parametric Maps' float pixels) equal Linux's
    within TOLERANCE. The overlay PNGs are compared too, allowing one grey level of rounding and
    a handful of pixels whose heatmap value sits on the overlay's cut-off (seen: 1 pixel of
    3.6 million, from a heatmap difference of 5e-7)."""
    import numpy as np
    import pydicom
    from PIL import Image

    worst, worst_map, off_pixels, pixels = 0.0, 0.0, 0, 0
    formats = []
    for f in files:
        a = json.loads((ref / f"{f.stem}.json").read_text())
        b = json.loads((out / f"{f.stem}.json").read_text())
        diff = max(abs(a["probabilities"][k] - b["probabilities"][k]) for k in a["probabilities"])
        diff = max(diff, abs(a["ood"]["score"] - b["ood"]["score"]))
        worst = max(worst, diff)
        if diff >= TOLERANCE:
            fail(f"{f.name}: probabilities or OOD score differ by {diff:g} from Linux's")
        if a["format"] != b["format"]:
            fail(f"{f.name}: decoded as {b['format']!r}, Linux {a['format']!r}")
        formats.append(b["format"].removeprefix("DICOM, "))
        maps = sorted((ref.parent / f"{ref.name}-dicom").glob(f"{f.stem}_PM_*.dcm"))
        if not maps:
            fail(f"{f.name}: no Parametric Map written")
        for pm in maps:
            ha = pydicom.dcmread(pm).pixel_array
            hb = pydicom.dcmread(out.parent / f"{out.name}-dicom" / pm.name).pixel_array
            worst_map = max(worst_map, float(np.abs(ha - hb).max()))
        for png in sorted(ref.glob(f"{f.stem}_*.png")):
            pa = np.asarray(Image.open(png), dtype=np.int16)
            pb = np.asarray(Image.open(out / png.name), dtype=np.int16)
            off_pixels += int((np.abs(pa - pb).max(axis=-1) > 1).sum())
            pixels += pa.shape[0] * pa.shape[1]
    if worst_map >= TOLERANCE:
        fail(f"heatmaps differ by {worst_map:g} from Linux's")
    print(f"   {len(files)} files ({'; '.join(sorted(set(formats)))})")
    print(f"   equal to Linux's: probabilities and OOD scores (max diff {worst:.1g}), heatmaps "
          f"(max diff {worst_map:.1g}) < {TOLERANCE:g}; overlay pixels off by more than one grey "
          f"level: {off_pixels} of {pixels}")
    if off_pixels > pixels * 1e-5:
        fail("the overlay images differ from Linux's by more than rounding")


def dciodvfy(folder: Path) -> None:
    objects = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in ("", ".dcm"))
    if not objects:
        fail(f"no DICOM objects in {folder}")
    for obj in objects:
        run = subprocess.run(["dciodvfy", str(obj)], capture_output=True, text=True, timeout=60)
        errors = [x for x in (run.stdout + run.stderr).splitlines() if x.startswith("Error")]
        if errors:
            fail(f"dciodvfy: {obj.name}: " + "; ".join(errors[:3]))
    print(f"   dciodvfy: {len(objects)} objects, no errors")


def screenshot(png: Path) -> None:
    """The window on a sample under a real X server; the picture is for a person to look at."""
    display = next(f":{n}" for n in range(71, 200) if not Path(f"/tmp/.X{n}-lock").exists())
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    app = None
    try:
        time.sleep(2)
        env = wine_env(display=display)
        app = subprocess.Popen(["wine", installed_exe(), winpath(SAMPLE)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            tree = subprocess.run(["xwininfo", "-root", "-tree"], env=env, capture_output=True,
                                  text=True).stdout
            if f"{SAMPLE.name} \u2014 {APPNAME}" in tree:  # the sample is open
                break
            time.sleep(3)
        else:
            fail("no window showing the sample within 300 s")
        time.sleep(int(os.environ.get("SCREENSHOT_WAIT", "40")))  # the model explains it
        subprocess.run(["import", "-display", display, "-window", "root", str(png)], check=True)
        print(f"   screenshot: {png}")
    finally:
        subprocess.run(["wineserver", "-k"], env=wine_env(), check=False)
        if app is not None:
            app.wait(timeout=60)
        xvfb.terminate()
        xvfb.wait(timeout=30)


def uninstall(folder: Path, *args: str) -> None:
    wine(winpath(folder / "uninstall.exe"), "/S", *args)
    wineserver_wait()  # the uninstaller runs on from a copy in TEMP
    if folder.exists():
        left = [str(p.relative_to(folder)) for p in folder.rglob("*")][:5]
        fail(f"left behind in {folder}: {left}")


def uninstall_all_users(user_data: Path) -> None:
    marker = user_data / "kept-by-uninstall.txt"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("user data\n")
    uninstall(INSTALLED)
    if any(PROGRAM_FILES.glob(f"{APPNAME}*")):
        fail("Program Files still holds the program")
    if reg_query(rf"HKLM\{UNINSTKEY}") is not None:
        fail("Add/Remove Programs entry left")
    progids = reg_query(r"HKLM\Software\Classes\.dcm\OpenWithProgids") or ""
    if "GradCamViewer" in progids or reg_query(r"HKLM\Software\Classes\GradCamViewer.dcm"):
        fail(".dcm association left")
    if reg_query(r"HKLM\Software\Classes\gradcam-viewer") is not None:
        fail("gradcam-viewer:// link handler left")
    if not marker.is_file():
        fail("the uninstaller deleted the user's data without being asked")
    print("   Program Files empty, registry clean, the user's data kept")


def per_user(setup: Path, user_data: Path) -> None:
    wine(winpath(setup), "/S", "/CurrentUser")
    wineserver_wait()
    found = sorted(PREFIX.glob(f"drive_c/users/*/AppData/Local/Programs/{APPNAME}"))
    if not found or not (found[0] / "gradcam-viewer.exe").is_file():
        fail("per-user install: nothing under %LOCALAPPDATA%\\Programs")
    if reg_query(rf"HKCU\{UNINSTKEY}", "UninstallString") is None:
        fail("per-user install: no HKCU Add/Remove Programs entry")
    if reg_query(rf"HKLM\{UNINSTKEY}") is not None:
        fail("per-user install wrote to HKLM")
    uninstall(found[0], "/REMOVEUSERDATA")
    if user_data.exists():
        fail("/REMOVEUSERDATA left the user's data")
    if reg_query(rf"HKCU\{UNINSTKEY}") is not None:
        fail("per-user uninstall left its HKCU entry")
    print(f"   per-user install in {found[0].relative_to(PREFIX)}; uninstall with "
          "/REMOVEUSERDATA removed it and the user's data")


def main() -> int:
    times: dict[str, float] = {}
    setup = DIST / f"{NAME}-{version()}-windows-x64-setup.exe"
    if not os.environ.get("SKIP_BUILD"):
        with step("build (make package-windows)", times):
            subprocess.run([sys.executable, str(Path(__file__).with_name("build_windows.py"))],
                           check=True)
    if not setup.is_file() or not PREFIX.is_dir():
        fail(f"{setup} or its Wine prefix is missing: run make package-windows")
    print(f"installer: {setup.name} {setup.stat().st_size / 2**20:.1f} MiB")
    work = Path(tempfile.mkdtemp(prefix="gradcam-windows-test-"))
    shots = ROOT / "build"
    try:
        files = inputs(work)
        with step("silent install (/S)", times):
            install(setup)
        with step("installed --self-test", times):
            self_test()
        with step("installed explain (+ Linux reference)", times):
            ref, out = explain(files, work)
        with step("compare with Linux, dciodvfy", times):
            compare(files, ref, out)
            dciodvfy(work / "windows-dicom")
        with step("screenshot under Xvfb", times):
            shots.mkdir(exist_ok=True)
            screenshot(shots / "windows-screenshot.png")
        user_data = next(PREFIX.glob("drive_c/users/*/AppData/Local")) / "gradcam-viewer"
        with step("silent uninstall", times):
            uninstall_all_users(user_data)
        with step("per-user install/uninstall", times):
            per_user(setup, user_data)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_times(times)
    print(f"installer size: {setup.stat().st_size / 2**20:.1f} MiB")
    print("package-test-windows: OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

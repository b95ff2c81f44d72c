"""Reading at a radiologist's pace: Page Down -> the next image's heatmap drawn, in the real
window, with reading ahead on and off in the same run.

The scenario: a folder of 8 distinct generated JPEG 2000 DICOMs (14 MP, 4664x3064, 12 bits),
a CheXNet-sized model (DenseNet121 at 320x320, random weights written here); after the first
heatmap the reader looks at each image for 4 s and presses Page Down (7 times). Each case runs
in a fresh process (a fresh window), offscreen unless QT_QPA_PLATFORM says otherwise (run it
under `xvfb-run` with QT_QPA_PLATFORM=xcb for a real X server). Printed per case: Page Down ->
image on screen and -> heatmap drawn (the view repainted), median and worst; at the fast pace
(a key every 0.5 s, not waiting for anything) the time from the last key to the last file's
heatmap, against one decode + explanation (a file paged past, opened right after in the same
window). Paging
starts once the first image's heatmap is drawn and the explanation's compiled function has
been traced in the background (seconds of CPU, once per model and method).

Run: .venv/bin/python benchmarks/bench_reading.py                      (the scenario above)
     .venv/bin/python benchmarks/bench_reading.py --model demo --megapixels 3
     .venv/bin/python benchmarks/bench_reading.py --gil    (does a decode hold the GIL?)
Options: --paces 4 0.5, --runs N (fresh windows per case; samples pooled), --data DIR (keep
and reuse the generated files).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from timing import wait_until  # benchmarks/ is the script's folder

ROOT = Path(__file__).resolve().parents[1]
SIZES = {14: (3064, 4664), 3: (1500, 2000)}  # megapixels: (rows, columns)
IMAGES = 8


# ---------------------------------------------------------------- the folder ----
def make_folder(folder: Path, megapixels: int, images: int = IMAGES) -> list[Path]:
    """Distinct radiograph-like images (a body, ribs, noise), one series in instance order,
    JPEG 2000 lossless as a flat-panel detector's archive stores them."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pydicom.uid import JPEG2000Lossless, generate_uid

    from dicom_factory import make_dataset

    rows, cols = SIZES[megapixels]
    folder.mkdir(parents=True, exist_ok=True)
    done = sorted(folder.glob("im_*.dcm"))
    if len(done) == images:
        return done
    study, series = generate_uid(), generate_uid()
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    paths = []
    for i in range(images):
        rng = np.random.default_rng(i)
        cx, cy = cols * (0.42 + 0.02 * i), rows * (0.5 - 0.01 * i)
        body = 1800 + 1200 * np.exp(-(((xx - cx) / (cols / 3)) ** 2 + ((yy - cy) / (rows / 2.8)) ** 2))
        ribs = 150 * np.sin(yy / (38.0 + i)) * np.exp(-((xx - cx) / (cols / 4)) ** 2)
        pixels = (body + ribs + rng.normal(0, 8, body.shape)).clip(0, 4095).astype(np.uint16)
        ds = make_dataset(pixels, bits_stored=12, WindowCenter=2400, WindowWidth=2400,
                          StudyInstanceUID=study, SeriesInstanceUID=series, InstanceNumber=i + 1,
                          SeriesNumber=1, StudyDate="20240101")
        ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
        path = folder / f"im_{i + 1:02d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def chexnet_weights(folder: Path) -> Path:
    path = folder / "chexnet.weights.h5"
    if not path.exists():
        code = ("import sys; from gradcam_viewer.models.chexnet import build_chexnet; "
                "build_chexnet().save_weights(sys.argv[1])")
        subprocess.run([sys.executable, "-c", code, str(path)], env=_env(), timeout=900,
                       check=True, capture_output=True)
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    return env


# ---------------------------------------------------------------- one case, in a child ----
def run_case(spec: dict) -> dict:
    """One fresh window: load the model, open the folder, page through it at `pace`."""
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from gradcam_viewer.ui.main_window import MainWindow

    folder = Path(spec["folder"])
    settings = QSettings(str(Path(spec["scratch"]) / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("reading/read_ahead", "true" if spec["read_ahead"] else "false")
    win = MainWindow(settings)
    win.resize(1400, 900)
    win.show()
    s, area = win.session, win.image_area

    def wait(pred, timeout=600.0) -> None:
        wait_until(app, pred, timeout, "get there", poll=0.001)

    def idle(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.002)

    def heatmap_drawn(path: Path) -> bool:
        return (s.image is not None and s.image.path == path and s.result is not None
                and s.belongs(s.result) and not s.busy and win.drawn())

    based: dict[Path, float] = {}  # when each file's image went on screen
    real_set_base = area.view.set_base

    def set_base(image):
        real_set_base(image)
        if s.image is not None:
            based.setdefault(s.image.path, time.perf_counter())

    area.view.set_base = set_base
    win.load_model(spec["kind"], spec["weights"])
    wait(lambda: s.model is not None)
    win.open_paths([folder])
    wait(lambda: getattr(s.files, "complete", True) and len(s.files.paths) == IMAGES)
    files = list(s.files.paths)
    wait(lambda: heatmap_drawn(files[0]))
    # the reader starts once the compiled function is traced (in the background, once per
    # model and method: seconds of CPU that would fall on the first pages only)
    wait(lambda: win.worker.explainer is not None and win.worker.explainer.is_traced(s.method))
    area.view.viewport().repaint()
    keys, images, heats = [], [], []
    pace = float(spec["pace"])
    slow = pace >= 1.0
    last_key = time.perf_counter()
    for k in range(1, IMAGES):
        if slow:  # the reader looks at the image (its heatmap is on screen) for `pace` s
            idle(pace)
        else:  # paging fast: a key every `pace` s, whatever is on screen
            idle(max(0.0, last_key + pace - time.perf_counter()))
        last_key = time.perf_counter()
        QTest.keyClick(win, Qt.Key.Key_PageDown)
        keys.append(last_key)
        if slow:
            wait(lambda k=k: heatmap_drawn(files[k]))
            area.view.viewport().repaint()  # painted: on screen
            done = time.perf_counter()
            images.append(based.get(files[k], done) - last_key)
            heats.append(done - last_key)
    reference = []
    if not slow:
        wait(lambda: heatmap_drawn(files[-1]))
        area.view.viewport().repaint()
        heats.append(time.perf_counter() - last_key)
        # one decode + explanation, in this window now: a file paged past (never explained),
        # opened as File > Open does (decoded anew)
        skipped = files[IMAGES // 2]
        idle(1.0)
        started = time.perf_counter()
        win.open_file(skipped)
        wait(lambda: heatmap_drawn(skipped))
        area.view.viewport().repaint()
        reference.append(time.perf_counter() - started)
    decoders = getattr(win.worker, "decoders", None)  # (none before decoding processes)
    out = {"images": images, "heats": heats, "reference": reference,
           "shown": [str(p) for p in based],
           "rss_mb": _peak_rss_mb(), "cache_mb": s.cache.nbytes / 2**20,
           "decode_children": decoders.starts if decoders else 0,
           "decodes_given_up": decoders.given_up if decoders else 0}
    win.shutdown()
    return out


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------- the GIL ----
def gil(path: Path) -> None:
    """bench_gil's spinning counter while a 14 MP frame decodes: in this process (pydicom's own
    call), then in a child process (what the viewer does). ~0 means the decode held the GIL."""
    from bench_gil import report
    from gradcam_viewer.imaging import load_image
    from gradcam_viewer.imaging.decode_processes import DecodePool, Offload

    pool = DecodePool()
    load_image(path, offload=Offload(pool))  # the child is up
    report("decode in this process", lambda: load_image(path))
    report("decode in a child process", lambda: load_image(path, offload=Offload(pool)))
    pool.close()


# ---------------------------------------------------------------- the report ----
def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["chexnet", "demo"], default="chexnet")
    parser.add_argument("--megapixels", type=int, choices=sorted(SIZES), default=14)
    parser.add_argument("--paces", type=float, nargs="+", default=[4.0, 0.5])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--data", type=Path, help="keep the generated files here (reused)")
    parser.add_argument("--gil", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(json.loads(args.child))))
        return 0
    data = args.data or Path(tempfile.mkdtemp(prefix="bench_reading_"))
    started = time.perf_counter()
    files = make_folder(data / f"{args.megapixels}mp", args.megapixels)
    print(f"{IMAGES} files of {args.megapixels} MP ({SIZES[args.megapixels][1]}x"
          f"{SIZES[args.megapixels][0]}), JPEG 2000 lossless, "
          f"{sum(p.stat().st_size for p in files) / IMAGES / 2**20:.1f} MB each "
          f"(made in {time.perf_counter() - started:.0f} s)")
    if args.gil:
        gil(files[0])
        return 0
    weights = str(chexnet_weights(data)) if args.model == "chexnet" else ""
    model = "DenseNet121 320x320" if args.model == "chexnet" else "demo model"
    print(f"model: {model}; platform {_env()['QT_QPA_PLATFORM']}; load "
          f"{os.getloadavg()[0]:.1f} at the start")
    results: dict[tuple[float, bool], list[dict]] = {}
    for _ in range(args.runs):
        for pace in args.paces:
            for read_ahead in (True, False):  # alternating: the machine's load hits both
                spec = {"folder": str(files[0].parent), "kind": args.model, "weights": weights,
                        "pace": pace, "read_ahead": read_ahead,
                        "scratch": tempfile.mkdtemp(prefix="bench_reading_run_")}
                out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                                     env=_env(), capture_output=True, text=True, timeout=3600)
                if out.returncode != 0:
                    print(out.stderr[-3000:], file=sys.stderr)
                    return 1
                results.setdefault((pace, read_ahead), []).append(
                    json.loads(out.stdout.strip().splitlines()[-1]))
    report(results, args.paces)
    print(f"load {os.getloadavg()[0]:.1f} at the end")
    return 0


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:6.0f} ms, worst {max(values) * 1000:6.0f} ms"


def report(results: dict[tuple[float, bool], list[dict]], paces: list[float]) -> None:
    for pace in paces:
        for read_ahead in (True, False):
            runs = results[(pace, read_ahead)]
            heats = [h for r in runs for h in r["heats"]]
            images = [i for r in runs for i in r["images"]]
            name = f"{pace:g} s pace, reading ahead {'on ' if read_ahead else 'off'}"
            extra = (f"  peak RSS {max(r['rss_mb'] for r in runs):.0f} MB, "
                     f"decodes given up {sum(r['decodes_given_up'] for r in runs)}")
            if pace >= 1.0:
                print(f"{name}: Page Down -> image {_ms(images)}; -> heatmap {_ms(heats)}"
                      f"  ({len(heats)} keys){extra}")
            else:
                ratios = [r["heats"][0] / r["reference"][0] for r in runs]
                print(f"{name}: last key -> last heatmap {_ms(heats)}  ({len(heats)} runs); "
                      f"one decode + explanation just after, same window: "
                      f"{_ms([r['reference'][0] for r in runs])}; ratio "
                      + " ".join(f"{x:.2f}" for x in ratios) + f" (goal <= 1){extra}")
    for pace in paces:
        if pace >= 1.0:
            on = statistics.median(h for r in results[(pace, True)] for h in r["heats"])
            print(f"{pace:g} s pace: median Page Down -> heatmap with reading ahead "
                  f"{on * 1000:.0f} ms (goal <= 250 ms)")


if __name__ == "__main__":
    raise SystemExit(main())

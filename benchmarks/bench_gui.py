"""Time from process start to a visible window, and to the first heatmap drawn, on the demo
model (or, with --chexnet, the CheXNet preset next to the floor any Keras program pays), cold
(a fresh process each run), and where the time goes (each piece timed by wrapping the function
that does it; the first call only). Run: .venv/bin/python benchmarks/bench_gui.py [--runs N]
[--chexnet]. Needs a display or QT_QPA_PLATFORM=offscreen.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import time
t0 = time.perf_counter()
import json
import sys
KIND, WEIGHTS = sys.argv[1], sys.argv[2]
from gradcam_viewer.ui import preload
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from gradcam_viewer.ui.app import default_sample
from gradcam_viewer.ui.main_window import MainWindow
preload.start()  # where run_gui starts it: after the window's imports
marks = {}

def mark(name):
    marks.setdefault(name, time.perf_counter() - t0)

def timed(owner, attr, name):  # the first call's start and end
    real = getattr(owner, attr)
    def call(*args, **kwargs):
        mark(name + " start")
        try:
            return real(*args, **kwargs)
        finally:
            mark(name + " end")
    setattr(owner, attr, call)

import gradcam_viewer.imaging as imaging
import gradcam_viewer.models.chexnet as chexnet
from gradcam_viewer.ui.worker import Worker
timed(chexnet, "build_chexnet", "build")
timed(imaging, "load_image", "image load")
real_load = Worker.load_model
def load_model(self, *args):  # on the worker thread: Keras is imported there, not here
    preload.wait()
    import keras
    from gradcam_viewer.cam.explainer import Explainer
    import gradcam_viewer.models as models
    mark("worker has Keras")
    timed(keras.Model, "load_weights", "weights")
    timed(models, "load_model_bundle", "demo model load")
    timed(Explainer, "explain", "first explanation")
    return real_load(self, *args)
Worker.load_model = load_model
win = MainWindow()
win.show()
app.processEvents()
shown = time.perf_counter() - t0
import_done_at_show = "finished" in preload.timings
win.load_model(KIND, WEIGHTS)
win.open_file(default_sample())
def poll():
    if win.session.result is not None and win.image_area.view.overlay.pixmap() is not None \
            and not win.image_area.view.overlay.pixmap().isNull():
        mark("heat")
        app.quit()
timer = QTimer(); timer.timeout.connect(poll); timer.start(5)
app.exec()
win.shutdown()
marks["window"] = shown
marks["import start"] = preload.timings["started"] - t0
marks["import end"] = preload.timings["finished"] - t0
marks["traced in the background"] = win.worker.tracer.traced
print(json.dumps(marks))
print(f"{shown:.3f} {marks.get('heat', float('nan')):.3f} {int(import_done_at_show)}")
"""

# The floor any Keras program pays for the CheXNet preset: import TensorFlow, build DenseNet121,
# load the weights, one eager forward pass.
FLOOR = r"""
import time
t0 = time.perf_counter()
import sys
import numpy as np
from gradcam_viewer.models.chexnet import build_chexnet
model = build_chexnet()
model.load_weights(sys.argv[1])
model(np.zeros((1, 320, 320, 3), np.float32), training=False)
print(f"{time.perf_counter() - t0:.3f}")
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chexnet", action="store_true",
                        help="the CheXNet preset (DenseNet121 320x320, weights written here) "
                             "instead of the demo model, next to the floor of any Keras program")
    args = parser.parse_args()
    kind, weights, floors = "demo", "", []
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.chexnet:
        import tempfile

        kind, weights = "chexnet", str(Path(tempfile.mkdtemp(prefix="bench_gui_")) /
                                       "chexnet.weights.h5")
        build = ("import sys; from gradcam_viewer.models.chexnet import build_chexnet; "
                 "build_chexnet().save_weights(sys.argv[1])")
        subprocess.run([sys.executable, "-c", build, weights], env=env, timeout=600,
                       check=True, capture_output=True)
    windows, heats, runs = [], [], []
    for _ in range(args.runs):
        if args.chexnet:
            floor = subprocess.run([sys.executable, "-c", FLOOR, weights], capture_output=True,
                                   text=True, env=env, timeout=300, check=True)
            floors.append(float(floor.stdout.strip().splitlines()[-1]))
        out = subprocess.run([sys.executable, "-c", CHILD, kind, weights], capture_output=True,
                             text=True, env=env, timeout=300, check=True)
        lines = out.stdout.strip().splitlines()
        shown, heat, import_done = lines[-1].split()
        runs.append(json.loads(lines[-2]))
        windows.append(float(shown))
        heats.append(float(heat))
        assert import_done == "0", "the window waited for TensorFlow's import"
    print(f"platform {env['QT_QPA_PLATFORM']}, {args.runs} cold runs (median, min-max)")
    print(f"process start -> visible window: {statistics.median(windows):.2f} s "
          f"({min(windows):.2f}-{max(windows):.2f})   goal < 1.5 s")
    print(f"process start -> first heatmap:  {statistics.median(heats):.2f} s "
          f"({min(heats):.2f}-{max(heats):.2f})   goal < 10 s ({kind} model)")
    if floors:
        floor = statistics.median(floors)
        print(f"floor (import TF, build DenseNet121, load weights, one eager pass): {floor:.2f} s "
              f"({min(floors):.2f}-{max(floors):.2f}); first heatmap / floor = "
              f"{statistics.median(heats) / floor:.2f}   goal <= 1.2")
    print_breakdown(runs)
    print("The window appeared before TensorFlow's import (a thread of its own) had finished.")
    return 0


PIECES = [  # (what, start mark, end mark)
    ("Qt + window shown", None, "window"),
    ("import TensorFlow/Keras/engine (own thread)", "import start", "import end"),
    ("build DenseNet121", "build start", "build end"),
    ("load the weights", "weights start", "weights end"),
    ("load the demo model", "demo model load start", "demo model load end"),
    ("load the image", "image load start", "image load end"),
    ("first explanation (eager, the warm-up)", "first explanation start",
     "first explanation end"),
    ("explanation -> heatmap on screen", "first explanation end", "heat"),
]


def print_breakdown(runs: list[dict]) -> None:
    """Median start, end and duration of each piece, seconds from process start."""
    print(f"{'piece':46s} {'from':>6s} {'to':>6s} {'takes':>6s}")
    for what, start, end in PIECES:
        if not all(end in r and (start is None or start in r) for r in runs):
            continue
        t0 = statistics.median(r[start] if start else 0.0 for r in runs)
        t1 = statistics.median(r[end] for r in runs)
        took = statistics.median(r[end] - (r[start] if start else 0.0) for r in runs)
        print(f"{what:46s} {t0:6.2f} {t1:6.2f} {took:6.2f}")
    print(f"compiled functions traced in the background after the first heatmap: "
          f"{statistics.median(r['traced in the background'] for r in runs):.0f} per run")


if __name__ == "__main__":
    raise SystemExit(main())

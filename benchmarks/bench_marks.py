"""Marking a 14 MP radiograph (4664x3064): how long the GUI thread is held by the live score
and by the marks key, before and after they moved off it.

1. The live score in the window (demo model, offscreen): four marks (three of Nodule, one of
   Mass), then repeated threshold moves, finding changes and mark edits. For each, the longest
   the GUI thread went without running its event loop (wall) and the GUI thread's CPU time in
   that stretch (which the other programs on a busy machine cannot inflate), and how long
   until the score was shown. "before": the score computed in the slot as the window did
   (`ImageMarks.mask_of` and `localise` with the window's cached maps, every finding with
   marks, each time); "after": the score thread.
2. The same computation without Qt (ms per call): what the thread now spends per event.
3. The marks key of a PNG or TIFF (SHA-256 of the file, done on the GUI thread when the image is
   shown), next to reading the file and to loading the image (done off the GUI thread).

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_marks.py [--repeats N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from timing import timed

H, W = 4664, 3064


def write_images(folder: Path) -> tuple[Path, Path]:
    """A smooth 16-bit radiograph-like image with noise, as PNG (compressed as a detector's
    PNG is) and as an uncompressed TIFF."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    pixels = (np.sin(xx / 300) + np.cos(yy / 400) + 2) * 8000 + rng.normal(0, 200, (H, W))
    array = np.clip(pixels, 0, 65535).astype(np.uint16)
    png, tif = folder / "chest14mp.png", folder / "chest14mp.tif"
    Image.fromarray(array).save(png)
    Image.fromarray(array).save(tif)
    return png, tif


def marks_on(key):
    from gradcam_viewer.marks.shapes import ImageMarks, Mark

    return ImageMarks(key, (
        Mark.rectangle(600, 900, 1400, 1900, "Nodule"),
        Mark.ellipse_in(1200, 1600, 2000, 2700, "Nodule"),
        Mark.polygon([(300, 3000), (1400, 3100), (1700, 4200), (500, 4400)], "Nodule"),
        Mark.rectangle(1700, 700, 2800, 2200, "Mass")), "chest14mp.png", (H, W))


def old_scores(request, display_map):
    """What the window computed in the slot before: every finding with marks, its union mask
    made again, the map from the window's cache."""
    from gradcam_viewer.marks.live import LiveScore
    from gradcam_viewer.marks.scores import localise

    out = LiveScore()
    for k, label in enumerate(request.labels):
        mask = request.marks.mask_of(label, request.shape)
        if mask is not None:
            out.yours[k] = localise(request.normalized[k], mask, request.threshold,
                                    display_map(k))
    return out


class Beat:
    """A 1 ms timer on the GUI thread: the longest wall and CPU stretch between two ticks."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.timeout.connect(self.tick)
        self.timer.start(1)
        self.reset()

    def reset(self) -> None:
        self.last = (time.perf_counter(), time.thread_time())
        self.wall = self.cpu = 0.0

    def tick(self) -> None:
        now = (time.perf_counter(), time.thread_time())
        self.wall = max(self.wall, now[0] - self.last[0])
        self.cpu = max(self.cpu, now[1] - self.last[1])
        self.last = now


def window_part(png: Path, repeats: int) -> None:
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from gradcam_viewer.ui import live_score
    from gradcam_viewer.ui.main_window import MainWindow
    from gradcam_viewer.ui.marking import Marking

    if QApplication.instance() is None:
        QApplication([])
    folder = Path(tempfile.mkdtemp(prefix="bench_marks_win_"))
    os.environ["GRADCAM_VIEWER_MARKS"] = str(folder / "marks")
    win = MainWindow(QSettings(str(folder / "s.ini"), QSettings.Format.IniFormat))
    win.show()
    win.load_model("demo", "")

    def wait(predicate, timeout=300.0):
        """Run the event loop until `predicate()`. Not a loop of processEvents(): PySide6
        6.12 on CPython 3.11 loses a reference to None per call of a method returning
        nothing, and some 10^5 of them abort the process."""
        if predicate():
            return
        loop = QEventLoop()
        deadline = time.monotonic() + timeout
        poll = QTimer()
        poll.timeout.connect(lambda: loop.quit() if predicate() or time.monotonic() > deadline
                             else None)
        poll.start(1)
        loop.exec()
        poll.stop()
        if not predicate():
            raise TimeoutError

    wait(lambda: win.session.model is not None)
    win.open_file(png)
    wait(lambda: win.session.result is not None and win.drawn())
    labels = win.session.model.labels
    nodule, mass = labels.index("Nodule"), labels.index("Mass")
    editor = win.marking.editor
    for mark in marks_on(editor.marks.key).marks:
        win.marking._edit(lambda m=mark: editor.put(m))
    wait(lambda: not win.marking.scoring)
    real_submit, real_refresh = live_score.ScoreThread.submit, Marking.refresh_scores

    def inline(self, token, request):  # the slot computed it, as before
        result = win.session.result
        self.ready.emit(token, old_scores(
            request, lambda k: win.session.cache.display_map(result, k, request.shape)))

    def every_time(self):  # ... every time it was called (a finding picked too)
        self._request = None
        real_refresh(self)

    events = {
        "threshold move": lambda i: win.controls.threshold.setValue(30 + i % 40),
        "finding change": lambda i: win.findings.labels.select_label((nodule, mass)[i % 2]),
        "mark edit": lambda i: win.marking._edit(
            lambda: editor.put(editor.marks.marks[i % 4].moved(1 if i % 2 else -1, 0))),
    }
    beat = Beat()
    print(f"1. live score in the window, {W}x{H}, 4 marks of 2 findings (median of "
          f"{repeats}; ms)")
    print(f"   {'event':16s} {'':7s} {'GUI held (wall)':>16s} {'GUI CPU':>8s} {'shown after':>12s}")
    for mode in ("before", "after"):
        live_score.ScoreThread.submit = inline if mode == "before" else real_submit
        Marking.refresh_scores = every_time if mode == "before" else real_refresh
        for name, event in events.items():
            walls, cpus, shown = [], [], []
            for i in range(repeats + 1):
                wait(lambda: not win.marking.scoring and win.drawn())
                beat.reset()
                start = time.perf_counter()
                event(i)
                wait(lambda: not win.marking.scoring)
                done = time.perf_counter()
                wait(lambda: win.drawn())
                beat.tick()
                if i:  # the first one warms the caches
                    walls.append(beat.wall)
                    cpus.append(beat.cpu)
                    shown.append(done - start)
            print(f"   {name:16s} {mode:7s} {statistics.median(walls) * 1e3:16.0f} "
                  f"{statistics.median(cpus) * 1e3:8.0f} {statistics.median(shown) * 1e3:12.0f}"
                  f"   (max held {max(walls) * 1e3:.0f})")
    live_score.ScoreThread.submit, Marking.refresh_scores = real_submit, real_refresh
    win.shutdown()
    win.close()


def compute_part(repeats: int) -> None:
    from dataclasses import replace

    from gradcam_viewer.cam.heatmap import normalize_heatmaps
    from gradcam_viewer.marks.live import LiveScorer, ScoreInput
    from gradcam_viewer.marks.shapes import ImageKey
    from gradcam_viewer.session.results import ResultCache

    rng = np.random.default_rng(1)
    small = normalize_heatmaps(rng.random((6, 28, 28)).astype(np.float32) ** 3)[0]
    labels = ("Cardiomegaly", "Effusion", "Nodule", "Mass", "Pneumothorax", "Consolidation")
    marks = marks_on(ImageKey("sop", "1.2.3"))
    request = ScoreInput(("x", 0, "gradcam", 1), small, labels, marks, (H, W), 0.5)

    class Result:  # what ResultCache.display_map reads of a result
        key = request.result
        normalized = small

    cache = ResultCache()

    def before(req):
        return old_scores(req, lambda k: cache.display_map(Result, k, req.shape))

    scorer = LiveScorer()
    moved = marks.with_mark(marks.marks[0].moved(1, 0))
    cases = {"threshold move": replace(request, threshold=0.4),
             "mark edit": replace(request, marks=moved)}

    print(f"2. the computation without Qt (median of {repeats}; ms)")
    for name, changed in cases.items():
        old = timed(lambda c=changed: before(c), repeats)
        new = timed(lambda c=changed, r=request: (scorer.score(r), scorer.score(c)),  # 2 changes
                    repeats)
        print(f"   {name:16s} before {old:6.0f} (GUI thread)   after {new / 2:6.0f} "
              f"(score thread)")
    print("   finding change   before "
          f"{timed(lambda: before(request), repeats):6.0f} (GUI thread)   after      0 (the same "
          "request: nothing computed)")


def hash_part(png: Path, tif: Path, repeats: int) -> None:
    from gradcam_viewer.imaging import load_image
    from gradcam_viewer.marks.store import FileHashes

    def ms(fn) -> float:
        return timed(fn, repeats)

    print(f"3. the marks key (SHA-256 of the file; median of {repeats}; page cache warm; ms)")
    for path in (png, tif):
        size = path.stat().st_size / 1e6
        key = ms(lambda p=path: FileHashes().sha256(p))
        read = ms(lambda p=path: p.read_bytes())
        plain = ms(lambda p=path: hashlib.sha256(p.read_bytes()).hexdigest())
        load = ms(lambda p=path: load_image(p))
        print(f"   {path.suffix[1:]:4s} {size:5.1f} MB: key {key:5.0f} (GUI thread)   read "
              f"{read:4.0f}   read + hashlib {plain:4.0f}   load_image {load:5.0f} (worker)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    folder = Path(tempfile.mkdtemp(prefix="bench_marks_"))
    png, tif = write_images(folder)
    window_part(png, args.repeats)
    compute_part(args.repeats)
    hash_part(png, tif, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())

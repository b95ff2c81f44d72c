"""Soak: the real window (offscreen) under random user actions for a long time, with
invariants checked after every step. `make soak` runs it for 20 minutes; not in `make test`.

Actions (a seeded random generator; 30% come in bursts of 2-5 without waiting in between):
Page Down / Up, a pick in the Studies list, finding up/down, CAM method, colormap, opacity,
zoom, pan and window/level drags (real mouse events), invert, reset, overlay on/off, grid
on/off, opening folders (keys pressed while they are scanned) and single files, switching
models (the demo model and a second one), exports (PNG, CSV, JSON into a temporary folder).
The files: the bundled samples (PNG and DICOM), and generated JPEG 2000 DICOMs of 3 and 14 MP.

After every step, once the window has settled:
- it settled within the bound: the slowest decode + 2 x the slowest explanation (both
  measured at the start) + 1 s, plus the model's load time when the step loaded one: a
  request waits at most for the stage in hand of a read ahead, and an explanation cannot be
  stopped halfway (a decode no longer wanted is); the 1 s is for drawing and scheduling;
- the image on screen is the file the steps lead to (an oracle of its own: the list as the
  scan found it, the position moved by the keys), with the method and model asked for last,
  its heatmaps are that image's (key of file, frame, method and model), the windowed pixels
  are that image's size, and a heatmap is drawn exactly when the finding has evidence;
- the RSS of the process and its decoding children stays within the process's RSS with both
  models loaded and no image opened + the cache budget + 400 MB;
- nothing was logged at ERROR or above and no exception reached Qt's event loop.
It prints the action count, the slowest step, and the memory curve; exit 1 on any violation.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/soak_actions.py [--minutes 20]
     [--seed 0] [--budget-mb 512] [--second small|chexnet]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))


def rss_mb(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class ViolationError(AssertionError):
    pass


class Errors(logging.Handler):
    """Records at ERROR and above from the program's loggers."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


def make_data(root: Path, second: str) -> tuple[list[Path], list[Path], tuple[str, str]]:
    """Folders to open, single files to open, and the second model (kind, path)."""
    from bench_reading import make_folder
    from gradcam_viewer.resources import samples_dir

    samples = root / "samples"
    shutil.copytree(samples_dir(), samples, ignore=shutil.ignore_patterns("*.json"))
    small = make_folder(root / "jpeg2000_3mp", 3, images=4)
    large = make_folder(root / "jpeg2000_14mp", 14, images=2)
    folders = [samples, small[0].parent, large[0].parent]
    singles = [sorted(samples.glob("*.png"))[0], small[1], large[0]]
    if second == "chexnet":
        from bench_reading import chexnet_weights

        return folders, singles, ("chexnet", str(chexnet_weights(root)))
    import subprocess

    code = ("import sys; sys.path.insert(0, sys.argv[2]); import models_zoo as z; "
            "from pathlib import Path; p = Path(sys.argv[1]); "
            "z.small_cnn_gap(64).save(p); "
            "z.write_beside(p, z.manifest_for(p, ['a', 'b', 'c'], name='soak second model', "
            "input={'height': 64, 'width': 64, 'channels': 3}))")
    path = root / "second.keras"
    subprocess.run([sys.executable, "-c", code, str(path), str(ROOT / "tests")], check=True,
                   timeout=600, capture_output=True)
    return folders, singles, ("keras", str(path))


class Soak:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        self.app = QApplication.instance() or QApplication(sys.argv[:1])
        from gradcam_viewer.ui.main_window import MainWindow

        self.rnd = random.Random(args.seed)
        self.root = root
        self.exports = root / "exports"
        self.exports.mkdir()
        self.folders, self.singles, self.second = make_data(root, args.second)
        self.budget_mb = args.budget_mb
        settings = QSettings(str(root / "settings.ini"), QSettings.Format.IniFormat)
        settings.setValue("memory/cache_mb", args.budget_mb)
        self.errors = Errors()
        logging.getLogger("gradcam_viewer").addHandler(self.errors)
        self.excepthook = sys.excepthook
        sys.excepthook = self._qt_exception
        self.win = MainWindow(settings)
        self.win.resize(1400, 900)
        self.win.show()
        self.s = self.win.session
        # the oracle
        self.models = {"demo": ("demo", ""), "second": self.second}
        self.model = "demo"
        self.method = self.s.method
        self.list: list[Path] = []
        self.index = -1
        # bookkeeping
        self.steps = 0
        self.pending = False  # an action of the running burst came before this one
        self.names: dict[str, str] = {}  # the models' names, as the window shows them
        self.counts: dict[str, int] = {}
        self.slowest = (0.0, "")
        self.memory: list[tuple[float, float]] = []
        self.started = time.monotonic()

    def _qt_exception(self, kind, value, tb) -> None:
        self.errors.records.append("".join(traceback.format_exception(kind, value, tb)))

    # ---------------------------------------------------------------- waiting ----
    def pump(self, seconds: float = 0.0) -> None:
        end = time.monotonic() + seconds
        while True:
            self.app.processEvents()
            if time.monotonic() >= end:
                return
            time.sleep(0.002)

    def settled(self) -> bool:
        s, win = self.s, self.win
        return (not s.busy and win.drawn() and s.files.complete and not win.studies.scanning
                and (s.model is None or s.image is None or s.result is not None))

    def settle(self, bound: float, what: str) -> float:
        start = time.monotonic()
        while not self.settled():
            if time.monotonic() - start > bound:
                raise ViolationError(f"{what}: still busy after {bound:.1f} s")
            self.pump(0.01)
        self.pump(0.02)  # anything a last reply queued
        return time.monotonic() - start

    # ---------------------------------------------------------------- calibration ----
    def calibrate(self) -> None:
        """The bound of a step: the slowest decode and explanation of these files."""
        from gradcam_viewer.imaging import load_image
        from gradcam_viewer.imaging.decode_processes import DecodePool, Offload

        pool = DecodePool()
        decodes = []
        for folder in self.folders:
            for path in sorted(folder.iterdir()):
                t0 = time.monotonic()
                load_image(path, offload=Offload(pool))
                decodes.append(time.monotonic() - t0)
        pool.close()
        self.decode_max = max(decodes)
        self.load_time: dict[str, float] = {}
        for name in ("second", "demo"):  # both models touched, no image yet: the base RSS
            t0 = time.monotonic()
            self.win.load_model(*self.models[name])
            self.settle(600, f"loading the {name} model")
            self.load_time[name] = time.monotonic() - t0
        self.base_rss = rss_mb()
        explains = []
        for name in ("second", "demo"):
            self.win.load_model(*self.models[name])
            self.settle(600, f"loading the {name} model")
            self.names[name] = self.s.model.name
            for folder in self.folders:
                self.win.open_file(sorted(folder.iterdir())[-1])
                self.settle(600, "calibration")
                explains.append(self.s.result.seconds)
        self.model = "demo"
        self.explain_max = max(explains)
        self.bound = self.decode_max + 2 * self.explain_max + 1
        print(f"slowest decode {self.decode_max:.2f} s, slowest explanation "
              f"{self.explain_max:.2f} s: a step must settle within {self.bound:.1f} s "
              f"(+ a model's load: demo {self.load_time['demo']:.1f} s, second "
              f"{self.load_time['second']:.1f} s); RSS with both models, no image "
              f"{self.base_rss:.0f} MB, limit {self.base_rss + self.budget_mb + 400:.0f} MB",
              flush=True)

    # ---------------------------------------------------------------- actions ----
    def key(self, key) -> None:
        from PySide6.QtTest import QTest

        self.win.activateWindow()
        self.win.image_area.view.setFocus()
        QTest.keyClick(self.win, key)

    def page(self, delta: int) -> None:
        from PySide6.QtCore import Qt

        self.key(Qt.Key.Key_PageDown if delta > 0 else Qt.Key.Key_PageUp)
        if self.list:
            self.index = min(max(self.index + delta, 0), len(self.list) - 1)

    def open_folder(self) -> None:
        """Open a folder; sometimes press Page Down before its scan has listed it."""
        from PySide6.QtCore import Qt

        folder = self.rnd.choice(self.folders)
        early = self.rnd.choice([0, 0, 1, 2])
        self.win.open_paths([folder])
        for _ in range(early):
            self.key(Qt.Key.Key_PageDown)
        self.settle(self.bound, "opening a folder")
        self.list = list(self.s.files.paths)
        if sorted(self.list) != sorted(p for p in folder.iterdir()):
            raise ViolationError(f"the scan of {folder.name} listed {len(self.list)} files")
        self.index = min(early, len(self.list) - 1)

    def open_single(self) -> None:
        path = self.rnd.choice(self.singles)
        self.win.open_paths([path])
        self.list, self.index = [path], 0

    def pick(self) -> None:
        if not self.list:
            return
        self.index = self.rnd.randrange(len(self.list))
        self.win.studies.image_chosen.emit(self.list[self.index], 0)

    def method_change(self) -> None:
        box = self.win.controls.method_box
        box.setCurrentIndex(self.rnd.randrange(box.count()))
        self.method = self.s.method

    def model_switch(self) -> float:
        self.model = "second" if self.model == "demo" else "demo"
        self.win.load_model(*self.models[self.model])
        return self.load_time[self.model] * 2

    def drag(self, button) -> None:
        from PySide6.QtCore import QPoint
        from PySide6.QtTest import QTest

        view = self.win.image_area.view.viewport()
        start = QPoint(view.width() // 2, view.height() // 2)
        end = start + QPoint(self.rnd.randint(-150, 150), self.rnd.randint(-150, 150))
        QTest.mousePress(view, button, pos=start)
        for i in range(1, 6):
            QTest.mouseMove(view, start + (end - start) * (i / 5))
        QTest.mouseRelease(view, button, pos=end)

    def export(self) -> None:
        if self.s.image is None or self.s.result is None:
            return
        n = self.steps
        kind = self.rnd.choice(["png", "csv", "json"])
        target = self.exports / f"export_{n}.{kind}"
        if kind == "png":
            written = self.win.exports.view_png(target, overwrite=True)
        else:
            written = self.win.exports.predictions(target, kind, overwrite=True)
        if not written.exists() or written.stat().st_size == 0:
            raise ViolationError(f"the {kind} export wrote nothing")
        written.unlink()

    def one_action(self) -> tuple[str, float]:
        """Do one action; its name and any extra time it may take to settle."""
        from PySide6.QtCore import Qt

        win, rnd = self.win, self.rnd
        actions = [
            ("page down", 20, lambda: self.page(1)), ("page up", 8, lambda: self.page(-1)),
            ("pick", 4, self.pick),
            ("finding", 8, lambda: self.key(rnd.choice([Qt.Key.Key_Up, Qt.Key.Key_Down]))),
            ("method", 5, self.method_change),
            ("colormap", 4, lambda: win.controls.colormap.setCurrentIndex(
                rnd.randrange(win.controls.colormap.count()))),
            ("opacity", 3, lambda: win.controls.opacity.setValue(rnd.randint(0, 100))),
            ("zoom", 4, lambda: self.key(rnd.choice([Qt.Key.Key_Plus, Qt.Key.Key_Minus,
                                                     Qt.Key.Key_Equal, Qt.Key.Key_1]))),
            ("pan", 3, lambda: self.drag(Qt.MouseButton.LeftButton)),
            ("window drag", 5, lambda: self.drag(Qt.MouseButton.RightButton)),
            ("invert/reset", 3, lambda: self.key(rnd.choice([Qt.Key.Key_I, Qt.Key.Key_Space]))),
            ("overlay", 2, lambda: self.key(Qt.Key.Key_O)),
            ("grid", 3, lambda: self.key(Qt.Key.Key_G)),
            ("open folder", 3, self.open_folder),
            ("open file", 2, self.open_single),
            ("model", 1, self.model_switch),
            ("export", 3, self.export),
        ]
        name, _, act = rnd.choices(actions, weights=[w for _, w, _ in actions])[0]
        if name == "open folder" and self.pending:  # its own settling: not inside a burst
            name, act = "page down", lambda: self.page(1)
        extra = act()
        self.counts[name] = self.counts.get(name, 0) + 1
        return name, float(extra or 0.0)

    # ---------------------------------------------------------------- invariants ----
    def check(self, what: str) -> None:
        s, win = self.s, self.win
        if self.errors.records:
            raise ViolationError(f"after {what}: an error was logged:\n{self.errors.records[0]}")
        if s.model is None or s.model.name != self.names[self.model]:
            raise ViolationError(f"after {what}: the model is {s.model and s.model.name}, "
                            f"not {self.names[self.model]}")
        if not self.list:
            return
        expected = self.list[self.index]
        if s.image is None or s.image.path != expected:
            raise ViolationError(f"after {what}: {s.image and s.image.path.name} on screen, "
                            f"not {expected.name}")
        result = s.result
        if result is None or result.key != (str(expected), 0, self.method, s.model.model_id):
            raise ViolationError(f"after {what}: the explanation {result and result.key} is not "
                            f"{expected.name}'s with {self.method}")
        display = win.image_area.display
        if display is None or display.shape[:2] != s.image.size:
            raise ViolationError(f"after {what}: the windowed pixels are not this image's")
        shown = win.snapshot()
        drawn = not win.image_area.view.overlay.pixmap().isNull()
        if not win.image_area.grid_shown() and drawn != (shown.evidence_label() is not None):
            raise ViolationError(f"after {what}: a heatmap drawn: {drawn}, expected: "
                            f"{shown.evidence_label() is not None}")
        limit, used = self.base_rss + self.budget_mb + 400, rss_mb() + self.children_mb()
        if used > limit:
            raise ViolationError(f"after {what}: RSS with the decoding children {used:.0f} MB "
                                 f"over {limit:.0f} MB")

    # ---------------------------------------------------------------- the run ----
    def run(self, minutes: float) -> None:
        self.calibrate()
        self.open_folder()
        self.check("the first folder")
        end = time.monotonic() + minutes * 60
        next_report = time.monotonic()
        durations: list[float] = []
        while time.monotonic() < end:
            burst = self.rnd.randint(2, 5) if self.rnd.random() < 0.3 else 1
            names, extra = [], 0.0
            self.pending = False
            for _ in range(burst):
                name, more = self.one_action()
                names.append(name)
                extra += more
                self.pending = True
                self.pump(self.rnd.choice([0.0, 0.0, 0.05, 0.2]) if burst > 1 else 0.0)
            what = " + ".join(names)
            took = self.settle(self.bound + extra, what)
            self.steps += len(names)
            durations.append(took)
            if took > self.slowest[0]:
                self.slowest = (took, what)
            self.check(what)
            if time.monotonic() >= next_report:
                next_report += 60
                minute = (time.monotonic() - self.started) / 60
                self.memory.append((minute, rss_mb()))
                print(f"{minute:5.1f} min  {self.steps:6d} actions  RSS {rss_mb():6.0f} MB  "
                      f"cache {self.s.cache.nbytes / 2**20:6.1f} MB  decoding children "
                      f"{self.children_mb():4.0f} MB", flush=True)
        print(f"{self.steps} actions in {(time.monotonic() - self.started) / 60:.1f} min, "
              f"all invariants held after every step")
        print(f"slowest step: {self.slowest[0]:.2f} s ({self.slowest[1]}); median "
              f"{statistics.median(durations) * 1000:.0f} ms; bound {self.bound:.1f} s")
        print("actions: " + ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())))
        peak = max(m for _, m in self.memory)
        print("memory (RSS, MB, once a minute): "
              + " ".join(f"{m:.0f}" for _, m in self.memory)
              + f"; peak {peak:.0f} = before the first image {self.base_rss:.0f} "
              f"+ {peak - self.base_rss:.0f} (limit: + budget {self.budget_mb} + 400)")

    def children_mb(self) -> float:
        import multiprocessing

        return sum(rss_mb(p.pid) for p in multiprocessing.active_children()
                   if p.pid is not None)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-mb", type=int, default=512)
    parser.add_argument("--second", choices=["small", "chexnet"], default="small")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")  # the offscreen plugin's chatter
    with tempfile.TemporaryDirectory(prefix="soak_") as tmp:
        soak = Soak(args, Path(tmp))
        try:
            soak.run(args.minutes)
        except ViolationError as exc:
            print(f"VIOLATION after {soak.steps} actions (seed {args.seed}): {exc}",
                  file=sys.stderr)
            return 1
        finally:
            soak.win.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Soak: page through many 14 MP DICOMs in the real window, waiting for each image to be
decoded, explained and drawn before the next (nothing is dropped as stale), and print the
process memory after the first image and as it goes.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/soak_gui.py [--images 50]
     [--unique 5] [--budget-mb 512]
The images are generated (4664x3064, 12 bits stored in 16, like a flat-panel radiograph) into a
temporary folder; `--unique` distinct files are linked under `--images` names, so every page is
a different file to the viewer (decoded and explained anew) without writing gigabytes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from soak_actions import rss_mb  # benchmarks/ is the script's folder
from timing import wait_until

ROOT = Path(__file__).resolve().parents[1]


def make_images(folder: Path, images: int, unique: int) -> list[Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    from dicom_factory import make_dataset, write

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:3064, 0:4664].astype(np.float32)
    originals = []
    for i in range(unique):
        body = 1800 + 1200 * np.exp(-(((xx - 2000 - 150 * i) / 1500) ** 2
                                      + ((yy - 1532) / 1100) ** 2))
        pixels = (body + rng.normal(0, 40, body.shape)).clip(0, 4095).astype(np.uint16)
        ds = make_dataset(pixels, bits_stored=12, WindowCenter=2400, WindowWidth=2400)
        originals.append(write(folder / f"original_{i}.dcm", ds))
    links = []
    for n in range(images):
        link = folder / "pages" / f"page_{n:03d}.dcm"
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(originals[n % unique])
        links.append(link)
    return links


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--unique", type=int, default=5)
    parser.add_argument("--budget-mb", type=int, default=512)
    args = parser.parse_args()
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from gradcam_viewer.ui.main_window import MainWindow

    def wait(pred, timeout=300) -> None:
        wait_until(app, pred, timeout, "finish the image", poll=0.005)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pages = make_images(folder, args.images, args.unique)
        settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
        settings.setValue("memory/cache_mb", args.budget_mb)
        win = MainWindow(settings)
        win.show()
        win.load_model("demo", "")
        wait(lambda: win.session.model is not None)

        def done(path: Path) -> bool:
            s = win.session
            return (s.image is not None and s.image.path == path and s.result is not None
                    and s.belongs(s.result) and not s.busy and win.drawn())

        print(f"start (model loaded): {rss_mb():.0f} MB")
        started = time.perf_counter()
        win.session.files.set(pages, 0)  # the pages in order (the Studies panel would list the
        win.open_file(pages[0])  # links to one file once: they share its UIDs)
        wait(lambda: done(pages[0]))
        base = rss_mb()
        print(f"after the first image: {base:.0f} MB")
        peak = base
        explained = 1
        for n in range(1, len(pages)):
            win.step_file(1)
            wait(lambda n=n: done(pages[n]))
            explained += 1
            peak = max(peak, rss_mb())
            if n % 5 == 4 or n == len(pages) - 1:
                print(f"{n + 1:4d} images: {rss_mb():7.0f} MB  (+{rss_mb() - base:.0f})  "
                      f"cache {win.session.cache.nbytes / 2**20:.1f} MB, {len(win.session.cache)} results",
                      flush=True)
        seconds = time.perf_counter() - started
        print(f"{explained} images decoded, explained and drawn in {seconds:.0f} s "
              f"({seconds / explained:.2f} s each); growth after the first image: "
              f"{rss_mb() - base:.0f} MB at the end, {peak - base:.0f} MB at the peak "
              f"(goal < 300 MB)")
        win.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

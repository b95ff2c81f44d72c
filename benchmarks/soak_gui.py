"""Soak: many open requests in quick succession; prints the process memory curve.
Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/soak_gui.py [--requests N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=50)
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from gradcam_viewer.resources import samples_dir
    from gradcam_viewer.ui.main_window import MainWindow

    def wait(pred, timeout=300):
        end = time.monotonic() + timeout
        while not pred() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.005)

    win = MainWindow()
    win.show()
    win.load_model("demo", "")
    wait(lambda: win.model is not None)
    paths = sorted(samples_dir().glob("*.png")) + sorted(samples_dir().glob("*.dcm"))
    win.open_file(paths[0])
    wait(lambda: win.result is not None)
    base = rss_mb()
    print(f"after the first image: {base:.0f} MB")
    sent = 0
    while sent < args.requests:
        for _ in range(args.burst):
            win.open_file(paths[sent % len(paths)])
            sent += 1
        target = str(paths[(sent - 1) % len(paths)])
        wait(lambda: win.result is not None and win.result.key[0] == target)
        print(f"{sent:6d} requests: {rss_mb():7.0f} MB  (+{rss_mb() - base:.0f})", flush=True)
    win.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

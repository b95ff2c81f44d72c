"""docs/screenshot.png and docs/grid_view.png: the window as `make run` opens it (demo model, the
bundled samples in the Studies panel, the sample DICOM shown), then the grid of all findings (G).

Run under a real X server (Qt's xcb plugin also needs libxcb-cursor0, libxcb-icccm4,
libxcb-keysyms1):

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python docs/make_screenshots.py [OUT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication


def wait(app: QApplication, done, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not done():
        app.processEvents()
        time.sleep(0.01)


def main() -> int:
    app = QApplication(sys.argv[:1])
    from gradcam_viewer.ui.app import open_start_sample
    from gradcam_viewer.ui.main_window import MainWindow

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:  # a first run: no saved layout or recent files
        win = MainWindow(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        win.setWindowState(win.windowState() & ~win.windowState().WindowMaximized)
        win.resize(1400, 900)
        win.show()
        win.load_model("demo", "")
        open_start_sample(win)
        wait(app, lambda: (win.session.result is not None and win.drawn() and not win.session.busy
                           and not win.studies.scanning), 240)
        wait(app, lambda: False, 3)  # the Studies panel's thumbnails arrive from its thread
        win.grab().save(str(out / "screenshot.png"))
        win.image_area.toggle_grid()
        wait(app, lambda: False, 1)
        win.grab().save(str(out / "grid_view.png"))
        win.shutdown()
    print(out / "screenshot.png", out / "grid_view.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

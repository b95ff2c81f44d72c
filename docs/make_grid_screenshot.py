"""Screenshot of the grid view (G) for docs/grid_view.png.

Run under a real X server, e.g.:  xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python
docs/make_grid_screenshot.py [out.png] [image]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication


def main() -> int:
    app = QApplication(sys.argv[:1])
    from gradcam_viewer.resources import samples_dir
    from gradcam_viewer.ui.main_window import MainWindow

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "grid_view.png"
    sample = Path(sys.argv[2]) if len(sys.argv) > 2 else (
        samples_dir() / "phantom_02_cardiomegaly_effusion.dcm")
    with tempfile.TemporaryDirectory() as tmp:
        win = MainWindow(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        win.setWindowState(win.windowState() & ~win.windowState().WindowMaximized)
        win.resize(1400, 900)
        win.show()
        win.load_model("demo", "")
        win.open_file(sample)
        end = time.monotonic() + 240
        while time.monotonic() < end and not (win.session.result is not None and win.drawn()
                                              and not win.session.busy):
            app.processEvents()
            time.sleep(0.01)
        win.image_area.toggle_grid()
        for _ in range(50):
            app.processEvents()
            time.sleep(0.01)
        win.grab().save(str(out))
        win.shutdown()
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

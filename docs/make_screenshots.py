"""docs/screenshot.png and docs/grid_view.png: the window as `make run` opens it (demo model, the
bundled samples in the Studies panel, the sample DICOM shown), then the grid of all findings (G);
docs/marks.png: a sample with marks over its heatmap and their live score (the marks go to a
temporary store, not the user's).

Run under a real X server (Qt's xcb plugin also needs libxcb-cursor0, libxcb-icccm4,
libxcb-keysyms1):

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python docs/make_screenshots.py [OUT_DIR]
"""

from __future__ import annotations

import os
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


def show_marks(app: QApplication, win, folder: Path) -> None:
    """The mass sample as DICOM, in a folder that also holds another reader's TID 1500 report
    (an ellipse: dashed, read-only, as the viewer reads it from the folder), with a rectangle and
    a polygon of the user's, the Mass finding picked."""
    import shutil

    import numpy as np
    import pydicom

    from gradcam_viewer.marks import Kind, Mark
    from gradcam_viewer.marks.shapes import ImageKey, ImageMarks
    from gradcam_viewer.outputs.dicom.marks_sr import marks_objects
    from gradcam_viewer.outputs.dicom.objects import write_objects
    from gradcam_viewer.resources import samples_dir

    folder.mkdir()
    path = Path(shutil.copy(samples_dir() / "phantom_04_mass_consolidation.dcm", folder))

    def shown() -> bool:
        s = win.session
        return (s.result is not None and win.drawn() and not s.busy and s.image is not None
                and s.image.path == path and not win.studies.scanning)

    win.open_file(path)
    wait(app, shown, 240)
    labels, result, size = win.session.model.labels, win.session.result, win.session.image.size

    def peak(label: str) -> tuple[float, float]:
        heat = result.display_heatmap(labels.index(label), size)
        y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
        return float(x), float(y)

    mx, my = peak("Mass")
    theirs = Mark(Kind.ELLIPSE, ((mx - 50, my + 10), (mx + 60, my - 10), (mx + 2, my - 40),
                                 (mx + 8, my + 40)), "Mass")
    uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
    report = ImageMarks(ImageKey("sop", uid), (theirs,), path.name, size)
    write_objects(marks_objects(path, report, "Other^Reader"), folder, "other_reader")
    win.open_paths([folder])  # the folder's report is read and matched to the image
    wait(app, shown, 240)
    win.findings.labels.select_label(labels.index("Mass"))
    editor = win.marking.editor
    editor.put(Mark.rectangle(mx - 70, my - 50, mx + 40, my + 60, "Mass"))
    cx, cy = peak("Consolidation")
    editor.put(Mark.polygon([(cx - 70, cy - 40), (cx + 50, cy - 60), (cx + 80, cy + 30),
                             (cx + 10, cy + 90), (cx - 80, cy + 50)], "Consolidation"))
    editor.selected = next(m.id for m in editor.marks.marks if not m.read_only)
    win.marking.layer.redraw()
    win.marking.refresh_scores()
    wait(app, lambda: False, 2)


def main() -> int:
    os.environ["GRADCAM_VIEWER_MARKS"] = tempfile.mkdtemp(prefix="marks-")
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
        win.image_area.toggle_grid()
        show_marks(app, win, Path(tmp) / "study")
        win.grab().save(str(out / "marks.png"))
        win.shutdown()
    print(out / "screenshot.png", out / "grid_view.png", out / "marks.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

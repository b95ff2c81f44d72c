"""A radiologist's marks on an image, Qt-free: the shapes (`shapes`), where they are kept
(`store`), how a heatmap is scored against them (`scores`) and the undo history (`history`).
The viewer draws and edits them in `ui/marks_layer.py`; the command line and the DICOM SR
code read and write the same `Mark` and `ImageMarks` values."""

from gradcam_viewer.marks.shapes import NO_FINDING, ImageMarks, Kind, Mark

__all__ = ["NO_FINDING", "ImageMarks", "Kind", "Mark"]

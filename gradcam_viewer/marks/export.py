"""Marks written out for other programs: a CSV in NIH's `BBox_List_2017.csv` layout (the
bounding box of every shape, which `gradcam-viewer evaluate --boxes` and most ChestX-ray8 code
read) and a JSON with the exact shapes (`ImageMarks.to_json` per image).

Only the user's own marks are written: marks read from other readers' reports (read-only)
would pass for the user's in a file that names no observer; they stay in their reports.
"No finding" marks have no box: they are in the JSON only. The CSV's Image Index is the file
name the image had when it was marked.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import replace

from gradcam_viewer.marks.shapes import ImageMarks

NIH_HEADER = ["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]"]


def own_marks(images: Iterable[ImageMarks]) -> list[ImageMarks]:
    """Each image with the user's own marks only; images with none of theirs left out."""
    out = []
    for image in images:
        own = tuple(m for m in image.marks if not m.read_only)
        if own:
            out.append(replace(image, marks=own))
    return out


def nih_csv(images: Iterable[ImageMarks]) -> str:
    """One row per shape: image name, finding, x, y, w, h of its bounding box (pixels, the
    box's top-left corner; NIH writes the header's last four cells as 'Bbox [x,y,w,h],,,')."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["Image Index", "Finding Label", "Bbox [x,y,w,h]", "", "", ""])
    for image in own_marks(images):
        for mark in image.regions():
            x0, y0, x1, y1 = mark.bounds()
            writer.writerow([image.name, mark.finding,
                             *(f"{v:.10g}" for v in (x0, y0, x1 - x0, y1 - y0))])
    return buf.getvalue()


def shapes_json(images: Iterable[ImageMarks]) -> str:
    """{"images": [ImageMarks.to_json(), ...]}: every shape as drawn, in image pixels
    (x = column, y = row, (0, 0) the top-left corner of the top-left pixel)."""
    return json.dumps({"format": "gradcam-viewer marks export", "version": 1,
                       "images": [image.to_json() for image in own_marks(images)]},
                      indent=1, ensure_ascii=False)

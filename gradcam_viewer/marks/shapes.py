"""What a radiologist marked on one image: `Mark` (one shape and its finding) and `ImageMarks`
(the image's key and all its marks). Frozen values: an edit makes a new value, so the undo
history keeps old ones as they were and a snapshot can go to another thread.

Coordinates are image pixels as DICOM's SCOORD (PS3.3, Graphic Annotation Units PIXEL) and
Cornerstone/OHIF give them: x = column, y = row, floats, (0, 0) the top-left *corner* of the
top-left pixel, (W, H) the bottom-right corner of the bottom-right pixel; pixel (row r, column c)
covers [c, c+1) x [r, r+1) and its centre is (c + 0.5, r + 0.5). The viewer's scene uses the
same numbers (the image item sits at the scene's origin, one scene unit per pixel), so an SR's
graphic data is taken as it is, with no half-pixel shift either way.

Geometry per kind (`Mark.points`):
- rectangle: two opposite corners (x0, y0), (x1, y1) with x0 <= x1, y0 <= y1 (an SR writes it
  as a closed POLYLINE of its 4 corners);
- ellipse: four points, as SR ELLIPSE gives them: the two ends of the major axis, then the two
  ends of the minor axis. It may be rotated. The centre is the middle of the major axis; the
  minor axis is taken perpendicular to it (its length from the last two points);
- polygon: its vertices (>= 3), closed implicitly (an SR writes a closed POLYLINE);
- no finding: no points; it stands for the whole image ("reviewed, nothing found").

A pixel belongs to a shape when its *centre* lies inside it: rectangles half-open
([x0, x1) x [y0, y1), so abutting rectangles share no pixel, as NIH boxes are scored in
`gradcam-viewer evaluate`), polygons by the even-odd rule with the same half-open rule on their
edges, ellipses strictly inside ((d.u / a)^2 + (d.v / b)^2 < 1). The tests hold the masks equal
to scikit-image's `skimage.draw` (which puts pixel centres at integer coordinates: shifted by
half a pixel there).

A mark whose `source` is not empty was read from elsewhere (an SR of another tool, another
observer): it is read-only; `own_copy` gives an editable copy with a new id.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from gradcam_viewer.cam.result import JsonValue

Point = tuple[float, float]  # (x, y) = (column, row), see the module docstring
Bounds = tuple[float, float, float, float]  # x0, y0, x1, y1 (x0 <= x1, y0 <= y1)
NO_FINDING = "No Finding"  # NIH's name for a normal image
FORMAT_VERSION = 1  # of `ImageMarks.to_json`


class Kind(StrEnum):
    RECTANGLE = "rectangle"
    ELLIPSE = "ellipse"
    POLYGON = "polygon"
    NO_FINDING = "no finding"


_POINTS = {Kind.RECTANGLE: 2, Kind.ELLIPSE: 4, Kind.NO_FINDING: 0}


def new_id() -> str:
    """A mark's stable id: kept through moves, resizes and saves (an SR's tracking UID can be
    made from it)."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Mark:
    kind: Kind
    points: tuple[Point, ...]
    finding: str
    id: str = field(default_factory=new_id)
    source: str = ""  # "" = the viewer's own; else where it was read (then read-only)

    def __post_init__(self) -> None:
        kind = Kind(self.kind)
        points = tuple((float(x), float(y)) for x, y in self.points)
        want = _POINTS.get(kind)
        if (want is not None and len(points) != want) or (want is None and len(points) < 3):
            raise ValueError(f"a {kind} mark needs {want if want is not None else '3 or more'} "
                             f"points, not {len(points)}")
        if not all(math.isfinite(v) for p in points for v in p):
            raise ValueError("a mark's coordinates must be finite numbers")
        if kind is Kind.RECTANGLE:
            (xa, ya), (xb, yb) = points
            points = ((min(xa, xb), min(ya, yb)), (max(xa, xb), max(ya, yb)))
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "finding", str(self.finding).strip())

    # --- making marks ---------------------------------------------------------------------
    @classmethod
    def rectangle(cls, x0: float, y0: float, x1: float, y1: float, finding: str) -> Mark:
        return cls(Kind.RECTANGLE, ((x0, y0), (x1, y1)), finding)

    @classmethod
    def ellipse_in(cls, x0: float, y0: float, x1: float, y1: float, finding: str) -> Mark:
        """The axis-aligned ellipse inscribed in a box (what dragging the ellipse tool draws)."""
        return cls(Kind.ELLIPSE, _inscribed(min(x0, x1), min(y0, y1), max(x0, x1),
                                            max(y0, y1)), finding)

    @classmethod
    def polygon(cls, points: Sequence[Point], finding: str) -> Mark:
        return cls(Kind.POLYGON, tuple(points), finding)

    @classmethod
    def no_finding(cls) -> Mark:
        return cls(Kind.NO_FINDING, (), NO_FINDING)

    # --- reading --------------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        return bool(self.source)

    @property
    def is_region(self) -> bool:
        """A shape on the image (not the whole-image "no finding")."""
        return self.kind is not Kind.NO_FINDING

    def bounds(self, size: tuple[int, int] | None = None) -> Bounds:
        """The bounding box; `size` = (height, width) is needed for "no finding"."""
        if self.kind is Kind.NO_FINDING:
            if size is None:
                raise ValueError("a 'no finding' mark covers the image: its size is needed")
            return 0.0, 0.0, float(size[1]), float(size[0])
        if self.kind is Kind.ELLIPSE:
            cx, cy, a, b, ux, uy = ellipse_axes(self.points)
            hw, hh = math.hypot(a * ux, b * uy), math.hypot(a * uy, b * ux)
            return cx - hw, cy - hh, cx + hw, cy + hh
        xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
        return min(xs), min(ys), max(xs), max(ys)

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """bool [height, width]: the pixels whose centres lie inside (module docstring)."""
        h, w = shape
        if self.kind is Kind.NO_FINDING:
            return np.ones((h, w), bool)
        if self.kind is Kind.RECTANGLE:
            (x0, y0), (x1, y1) = self.points
            inside: np.ndarray = _span(y0, y1, h)[:, None] & _span(x0, x1, w)[None, :]
            return inside
        if self.kind is Kind.ELLIPSE:
            return _ellipse_mask(self.points, h, w)
        return polygon_mask(self.points, (h, w))

    # --- editing (each returns a new mark with the same id) -------------------------------
    def moved(self, dx: float, dy: float) -> Mark:
        return replace(self, points=tuple((x + dx, y + dy) for x, y in self.points))

    def fitted(self, bounds: Bounds) -> Mark:
        """Stretched so that its bounding box becomes `bounds` (resizing by a box handle)."""
        x0, y0, x1, y1 = self.bounds()
        nx0, ny0, nx1, ny1 = bounds
        if self.kind is Kind.RECTANGLE:
            return replace(self, points=((nx0, ny0), (nx1, ny1)))
        sx = (nx1 - nx0) / (x1 - x0) if x1 > x0 else 1.0
        sy = (ny1 - ny0) / (y1 - y0) if y1 > y0 else 1.0
        points = tuple((nx0 + (x - x0) * sx, ny0 + (y - y0) * sy) for x, y in self.points)
        if self.kind is Kind.ELLIPSE:
            if _axis_aligned(self.points):
                return replace(self, points=_inscribed(min(nx0, nx1), min(ny0, ny1),
                                                       max(nx0, nx1), max(ny0, ny1)))
            points = _perpendicular(points)  # a stretched rotated ellipse: axes kept at 90°
        return replace(self, points=points)

    def with_vertex(self, index: int, point: Point) -> Mark:
        """A polygon with one vertex moved."""
        points = list(self.points)
        points[index] = point
        return replace(self, points=tuple(points))

    def with_finding(self, finding: str) -> Mark:
        return replace(self, finding=finding)

    def own_copy(self) -> Mark:
        """An editable copy of a mark read from elsewhere (a new id; the original stays)."""
        return replace(self, id=new_id(), source="")

    # --- JSON ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {"id": self.id, "kind": str(self.kind),
                                     "finding": self.finding,
                                     "points": [[x, y] for x, y in self.points]}
        if self.source:
            out["source"] = self.source
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> Mark:
        points = data.get("points", [])
        if not isinstance(points, list):
            raise ValueError("a mark's points must be a list of [x, y]")
        pairs: list[Point] = []
        for p in points:
            if not (isinstance(p, list) and len(p) == 2
                    and all(isinstance(v, (int, float)) for v in p)):
                raise ValueError("a mark's points must be a list of [x, y]")
            x, y = p
            assert isinstance(x, (int, float)) and isinstance(y, (int, float))
            pairs.append((float(x), float(y)))
        return cls(Kind(str(data["kind"])), tuple(pairs), str(data.get("finding", "")),
                   str(data["id"]), str(data.get("source", "") or ""))


@dataclass(frozen=True)
class ImageKey:
    """Which image marks belong to, whatever its path: the SOP Instance UID for DICOM, the
    file's SHA-256 for anything else (a copied or renamed file keeps its marks), and the frame
    (0-based; DICOM's Referenced Frame Number is this + 1)."""

    kind: str  # "sop" or "sha256"
    value: str
    frame: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("sop", "sha256"):
            raise ValueError(f"unknown image key kind {self.kind!r}")
        if not self.value or not all(c.isalnum() or c == "." for c in self.value):
            raise ValueError("an image key is a UID or a hex digest")

    @property
    def stem(self) -> str:
        """A file name for it (UIDs and digests hold only digits, letters and dots)."""
        return f"{self.kind}-{self.value}-f{self.frame + 1}"

    def to_json(self) -> dict[str, JsonValue]:
        return {"kind": self.kind, "value": self.value, "frame": self.frame}

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> ImageKey:
        frame = data.get("frame", 0)
        return cls(str(data["kind"]), str(data["value"]),
                   int(frame) if isinstance(frame, (int, float, str)) else 0)


@dataclass(frozen=True)
class ImageMarks:
    """One image's marks, in the order they were made. `name` is the image's file name when
    last marked (the CSV's Image Index), `size` its (height, width)."""

    key: ImageKey
    marks: tuple[Mark, ...] = ()
    name: str = ""
    size: tuple[int, int] = (0, 0)

    def get(self, mark_id: str) -> Mark | None:
        return next((m for m in self.marks if m.id == mark_id), None)

    @property
    def no_finding(self) -> bool:
        return any(m.kind is Kind.NO_FINDING for m in self.marks)

    def regions(self, finding: str | None = None) -> list[Mark]:
        """The shapes (not "no finding"), of one finding if given."""
        return [m for m in self.marks if m.is_region
                and (finding is None or m.finding == finding)]

    def findings(self) -> list[str]:
        """The findings marked, in order of first mark."""
        return list(dict.fromkeys(m.finding for m in self.regions()))

    def mask_of(self, finding: str, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        """The union of the finding's shapes (None if it has none)."""
        shape = shape or self.size
        regions = self.regions(finding)
        if not regions:
            return None
        mask = np.zeros(shape, bool)
        for mark in regions:
            mask |= mark.mask(shape)
        return mask

    def with_mark(self, mark: Mark) -> ImageMarks:
        """`mark` added, or put in place of the mark with its id. A region mark of the viewer's
        takes away its "no finding"; "no finding" is refused while the viewer's own shapes are
        there. Marks read from elsewhere change neither."""
        if mark.kind is Kind.NO_FINDING and any(m.is_region and not m.read_only
                                                for m in self.marks):
            raise ValueError("this image has marks: delete them before marking it as having "
                             "no finding")
        marks = list(self.marks)
        if mark.is_region and not mark.read_only:  # another reader's marks leave yours be
            marks = [m for m in marks if m.kind is not Kind.NO_FINDING or m.read_only]
        at = next((i for i, m in enumerate(marks) if m.id == mark.id), None)
        if at is None:
            marks.append(mark)
        else:
            marks[at] = mark
        return replace(self, marks=tuple(marks))

    def without(self, mark_id: str) -> ImageMarks:
        return replace(self, marks=tuple(m for m in self.marks if m.id != mark_id))

    def to_json(self) -> dict[str, JsonValue]:
        return {"format": "gradcam-viewer marks", "version": FORMAT_VERSION,
                "image": self.key.to_json(), "name": self.name,
                "size": [self.size[0], self.size[1]],
                "marks": [m.to_json() for m in self.marks]}

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> ImageMarks:
        if data.get("format") != "gradcam-viewer marks":
            raise ValueError("not a gradcam-viewer marks file")
        version = data.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(f"marks file version {version} is newer than this viewer reads")
        image, marks, size = data.get("image"), data.get("marks", []), data.get("size", [0, 0])
        if not isinstance(image, dict) or not isinstance(marks, list) \
                or not isinstance(size, list) or len(size) != 2:
            raise ValueError("a marks file needs 'image', 'size' and a list of 'marks'")
        h, w = (int(v) if isinstance(v, (int, float)) else 0 for v in size)
        return cls(ImageKey.from_json(image),
                   tuple(Mark.from_json(m) for m in marks if isinstance(m, dict)),
                   str(data.get("name", "")), (h, w))


# --- geometry ------------------------------------------------------------------------------

def ellipse_axes(points: Sequence[Point]) -> tuple[float, float, float, float, float, float]:
    """(cx, cy, a, b, ux, uy): centre, semi-major and semi-minor lengths and the major axis's
    unit direction, from the 4 SR ELLIPSE points (major ends, then minor ends)."""
    (x1, y1), (x2, y2), (x3, y3), (x4, y4) = points
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    a = math.hypot(x2 - x1, y2 - y1) / 2
    b = math.hypot(x4 - x3, y4 - y3) / 2
    ux, uy = ((x2 - x1) / (2 * a), (y2 - y1) / (2 * a)) if a > 0 else (1.0, 0.0)
    return cx, cy, a, b, ux, uy


def _inscribed(x0: float, y0: float, x1: float, y1: float) -> tuple[Point, ...]:
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    horizontal = ((x0, cy), (x1, cy))
    vertical = ((cx, y0), (cx, y1))
    return horizontal + vertical if x1 - x0 >= y1 - y0 else vertical + horizontal


def _axis_aligned(points: Sequence[Point]) -> bool:
    (x1, y1), (x2, y2) = points[0], points[1]
    return x1 == x2 or y1 == y2


def _perpendicular(points: Sequence[Point]) -> tuple[Point, ...]:
    """The minor axis set perpendicular to the major one, through its middle, keeping the
    minor axis's extent across the major one."""
    cx, cy, a, _, ux, uy = ellipse_axes(points)
    (x3, y3), (x4, y4) = points[2], points[3]
    b = abs((x4 - x3) * -uy + (y4 - y3) * ux) / 2
    return (points[0], points[1], (cx + b * uy, cy - b * ux), (cx - b * uy, cy + b * ux))


def _span(lo: float, hi: float, n: int) -> np.ndarray:
    """Which of n pixel centres (i + 0.5) lie in [lo, hi)."""
    centres = np.arange(n) + 0.5
    return (centres >= lo) & (centres < hi)


def _ellipse_mask(points: Sequence[Point], h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    cx, cy, a, b, ux, uy = ellipse_axes(points)
    if a <= 0 or b <= 0:
        return mask
    hw, hh = math.hypot(a * ux, b * uy), math.hypot(a * uy, b * ux)
    c0, c1 = max(0, math.floor(cx - hw)), min(w, math.ceil(cx + hw) + 1)
    r0, r1 = max(0, math.floor(cy - hh)), min(h, math.ceil(cy + hh) + 1)
    if c0 >= c1 or r0 >= r1:
        return mask
    dx = (np.arange(c0, c1) + 0.5 - cx)[None, :]
    dy = (np.arange(r0, r1) + 0.5 - cy)[:, None]
    along = (dx * ux + dy * uy) / a
    across = (-dx * uy + dy * ux) / b
    mask[r0:r1, c0:c1] = along * along + across * across < 1.0
    return mask


def polygon_mask(points: Sequence[Point], shape: tuple[int, int]) -> np.ndarray:
    """Even-odd fill of a closed polygon over pixel centres: each edge crossing a row's centre
    line (half-open in y, so a vertex on the line counts once) toggles the pixels from its
    crossing to the right; a pixel is inside when toggled an odd number of times."""
    h, w = shape
    if h <= 0 or w <= 0:
        return np.zeros((max(h, 0), max(w, 0)), bool)
    pts = np.asarray(points, np.float64)
    xa, ya = pts[:, 0], pts[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    # every edge taken downwards, so that an edge drawn back and forth crosses a row at the
    # same x both times (a zero-area spike fills nothing)
    down = ya <= yb
    x0, y0 = np.where(down, xa, xb), np.where(down, ya, yb)
    x1, y1 = np.where(down, xb, xa), np.where(down, yb, ya)
    yc = np.arange(h)[:, None] + 0.5  # [h, 1] against [E] edges
    active = (y0 <= yc) & (yc < y1)
    slope = (x1 - x0) / np.where(y1 > y0, y1 - y0, 1.0)
    xs = x0 + (yc - y0) * slope
    # the first pixel whose centre is at or right of the crossing: ceil(x - 0.5)
    first = np.clip(np.ceil(np.where(active, xs, np.inf) - 0.5), 0, w)
    rows, edges = np.nonzero(active)
    toggles = np.zeros((h, w + 1), np.int32)
    np.add.at(toggles, (rows, first[rows, edges].astype(np.intp)), 1)
    return (np.cumsum(toggles[:, :w], axis=1) & 1).astype(bool)

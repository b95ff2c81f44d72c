"""The live score: each finding's heatmap against its marks, as `localise` (marks/scores.py)
computes it for `gradcam-viewer evaluate`, for the image on screen. No Qt.

Your marks and the read-only marks read from other readers' reports are scored apart: each is
one reader's truth, and a union of the two would be nobody's. `yours` equals `evaluate --marks`
for the image; `theirs` equals `evaluate --boxes` on the reports' folder.

It works at the image's full size (a 14 MP radiograph: 14 MP masks and maps), which takes a
few hundred milliseconds, so the window runs it on a thread of its own (ui/live_score.py);
`LiveScorer` keeps what does not change between the calls a window makes as the user drags the
threshold, picks a finding or edits a mark: the upsampled maps of the result on screen, the
masks of the marks and their unions, all at full size. They are bounded by bytes, not by count
(a 14 MP float32 map alone is 56 MB): `MAX_BYTES`, 256 MB by default, for all three together,
the least recently used going first; and they are dropped as a whole when another image is
scored (its maps and masks are never asked for again while it is away; coming back costs one
computation). One thread at a time may use a scorer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from gradcam_viewer.cam.heatmap import upsample_heatmap
from gradcam_viewer.marks.scores import Localisation, localise
from gradcam_viewer.marks.shapes import ImageKey, ImageMarks, Mark

MAX_BYTES = 256 << 20  # the caches' default bound: four 14 MP maps, or two and their masks


@dataclass(frozen=True)
class ScoreInput:
    """What a live score is computed from: the explanation (`result` is its cache key, used
    for `normalized`, the [L, h, w] maps), the model's labels, the image's marks, its size
    (height, width) and the Heatmap box's threshold. Equal inputs give equal scores."""

    result: Hashable
    normalized: np.ndarray = field(compare=False, repr=False)
    labels: tuple[str, ...]
    marks: ImageMarks
    shape: tuple[int, int]
    threshold: float


@dataclass(frozen=True)
class LiveScore:
    """By model output index: the heatmap against your marks of its finding, against the
    read-only marks of it, and whose those are (their sources, joined)."""

    yours: dict[int, Localisation] = field(default_factory=dict)
    theirs: dict[int, Localisation] = field(default_factory=dict)
    sources: dict[int, str] = field(default_factory=dict)


class LiveScorer:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._cache: OrderedDict[Hashable, np.ndarray | _Piece] = OrderedDict()
        self._bytes = 0
        self._image: tuple[ImageKey, tuple[int, int]] | None = None

    @property
    def cached_bytes(self) -> int:
        """What the caches hold now, counted afresh."""
        return sum(_nbytes(v) for v in self._cache.values())

    def score(self, given: ScoreInput) -> LiveScore:
        image = (given.marks.key, given.shape)
        if image != self._image:  # another image: nothing kept is of use
            self._cache.clear()
            self._bytes = 0
            self._image = image
        out = LiveScore()
        for k, label in enumerate(given.labels):
            if k >= len(given.normalized):
                break
            regions = given.marks.regions(label)
            yours = tuple(m for m in regions if not m.read_only)
            theirs = tuple(m for m in regions if m.read_only)
            if yours:
                out.yours[k] = self._localise(given, k, yours)
            if theirs:
                out.theirs[k] = self._localise(given, k, theirs)
                out.sources[k] = "; ".join(dict.fromkeys(m.source for m in theirs))
        return out

    def _localise(self, given: ScoreInput, k: int, marks: tuple[Mark, ...]) -> Localisation:
        return localise(given.normalized[k], self._mask(marks, given.shape), given.threshold,
                        self._map(given, k))

    def _map(self, given: ScoreInput, k: int) -> np.ndarray:
        key = ("map", given.result, k, given.shape)
        found = self._cache.get(key)
        if not isinstance(found, np.ndarray):
            found = upsample_heatmap(given.normalized[k], given.shape)
        self._keep(key, found)
        return found

    def _mask(self, marks: tuple[Mark, ...], shape: tuple[int, int]) -> np.ndarray:
        """The union of the marks (as `ImageMarks.mask_of` makes it). Each mark's mask is kept
        cut to where it is (small beside the image), so that an edit of one mark redraws only
        that one."""
        key = ("union", marks, shape)
        union = self._cache.get(key)
        if not isinstance(union, np.ndarray):
            union = np.zeros(shape, bool)
            for mark in marks:
                piece = self._cache.get(("mask", mark, shape))
                if not isinstance(piece, _Piece):
                    piece = _Piece.of(mark.mask(shape))
                self._keep(("mask", mark, shape), piece)
                r, c = piece.origin
                h, w = piece.mask.shape
                union[r:r + h, c:c + w] |= piece.mask
        self._keep(key, union)
        return union

    def _keep(self, key: Hashable, value: np.ndarray | _Piece) -> None:
        """`value` as the newest entry; the oldest go while the whole is above `max_bytes`
        (one larger than that is not kept at all)."""
        old = self._cache.pop(key, None)
        if old is not None:
            self._bytes -= _nbytes(old)
        size = _nbytes(value)
        if size > self.max_bytes:
            return
        self._cache[key] = value
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, dropped = self._cache.popitem(last=False)
            self._bytes -= _nbytes(dropped)


@dataclass(frozen=True)
class _Piece:
    """A mask cut to the rows and columns it has pixels in: (row, column) of its corner."""

    origin: tuple[int, int]
    mask: np.ndarray

    @classmethod
    def of(cls, mask: np.ndarray) -> _Piece:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if not rows.size:
            return cls((0, 0), np.zeros((0, 0), bool))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        return cls((r0, c0), mask[r0:r1, c0:c1].copy())


def _nbytes(value: np.ndarray | _Piece) -> int:
    return int(value.mask.nbytes if isinstance(value, _Piece) else value.nbytes)

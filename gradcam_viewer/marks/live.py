"""The live score: each finding's heatmap against its marks, as `localise` (marks/scores.py)
computes it for `gradcam-viewer evaluate`, for the image on screen. No Qt.

Your marks and the read-only marks read from other readers' reports are scored apart: each is
one reader's truth, and a union of the two would be nobody's. `yours` equals `evaluate --marks`
for the image; `theirs` equals `evaluate --boxes` on the reports' folder.

It works at the image's full size (a 14 MP radiograph: 14 MP masks and maps), which takes a
few hundred milliseconds, so the window runs it on a thread of its own (ui/live_score.py);
`LiveScorer` keeps what does not change between the calls a window makes as the user drags the
threshold, picks a finding or edits a mark: the upsampled maps of the result on screen, the
masks of the marks and their unions, all at full size and bounded (`max_maps`, `max_masks`).
One thread at a time may use a scorer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from gradcam_viewer.cam.heatmap import upsample_heatmap
from gradcam_viewer.marks.scores import Localisation, localise
from gradcam_viewer.marks.shapes import ImageMarks, Mark


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
    def __init__(self, max_maps: int = 2, max_masks: int = 32, max_unions: int = 2) -> None:
        self.max_maps, self.max_masks, self.max_unions = max_maps, max_masks, max_unions
        self._maps: OrderedDict[tuple[Hashable, int, tuple[int, int]], np.ndarray] = \
            OrderedDict()
        self._masks: OrderedDict[tuple[Mark, tuple[int, int]], _Piece] = OrderedDict()
        self._unions: OrderedDict[tuple[tuple[Mark, ...], tuple[int, int]], np.ndarray] = \
            OrderedDict()

    def score(self, given: ScoreInput) -> LiveScore:
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
        key = (given.result, k, given.shape)
        found = self._maps.get(key)
        if found is None:
            found = upsample_heatmap(given.normalized[k], given.shape)
        _keep(self._maps, key, found, self.max_maps)
        return found

    def _mask(self, marks: tuple[Mark, ...], shape: tuple[int, int]) -> np.ndarray:
        """The union of the marks (as `ImageMarks.mask_of` makes it). Each mark's mask is kept
        cut to where it is (small beside the image), so that an edit of one mark redraws only
        that one."""
        key = (marks, shape)
        union = self._unions.get(key)
        if union is None:
            union = np.zeros(shape, bool)
            for mark in marks:
                piece = self._masks.get((mark, shape))
                if piece is None:
                    piece = _Piece.of(mark.mask(shape))
                _keep(self._masks, (mark, shape), piece, self.max_masks)
                r, c = piece.origin
                h, w = piece.mask.shape
                union[r:r + h, c:c + w] |= piece.mask
        _keep(self._unions, key, union, self.max_unions)
        return union


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


K = TypeVar("K")
V = TypeVar("V")


def _keep(cache: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    """`value` as the newest entry; the oldest go beyond `limit`."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > limit:
        cache.popitem(last=False)

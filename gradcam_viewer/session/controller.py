"""The session controller: what the viewer shows and which work it has asked for, as plain
state changed only by explicit events. No Qt, no threads of its own.

Every event method returns `Effects`: the requests to send to the worker and what the window
must redraw. The window forwards user actions and worker replies here and renders the state.

Two rules keep the screen right whatever order replies come in (a third keeps reading ahead
out of the user's way):
- opening and explaining have separate staleness (`RequestTracker`): an open is made stale only
  by a newer open, never by an explanation, so a method change or a new model can never lose a
  file that is still loading;
- an explanation is shown only when its key (file, frame, method, model) is the one wanted now;
  anything else goes to the cache and may be shown later;
- once the image on screen has its explanation (nothing awaited), the neighbours in reading
  order are asked for as `PrefetchRequest`s, the worker's lowest priority (`read_ahead.py`);
  what is read ahead lands in the cache (images and explanations, within its byte budget), so
  Page Down onto it shows image and heatmap at once. A read ahead no longer wanted is withdrawn.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Flag, auto
from pathlib import Path

from gradcam_viewer.cam.methods import METHOD_TITLES
from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.render.overlay import OverlayStyle
from gradcam_viewer.session.files import FileList
from gradcam_viewer.session.read_ahead import PrefetchRequest, ReadAhead
from gradcam_viewer.session.results import ExplainResult, ModelInfo, ResultCache, ResultKey
from gradcam_viewer.session.view import ViewState, dragged, initial_view, inverted, with_preset


class RequestTracker:
    """Request ids and which are stale; written by the GUI thread, read by the worker.

    An open is stale once a newer open was asked for. An explanation (including the one that
    follows an open) is stale once a newer open or a newer explanation was asked for. A read
    ahead is stale once the controller no longer names it among those it wants.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_id = 0
        self._last_open = 0
        self._last_explain = 0
        self._prefetch: frozenset[int] = frozenset()  # the reads ahead still wanted

    def new_open(self) -> int:
        with self._lock:
            self._last_id += 1
            self._last_open = self._last_id
            return self._last_id

    def new_explain(self) -> int:
        with self._lock:
            self._last_id += 1
            self._last_explain = self._last_id
            return self._last_id

    def new_prefetch(self) -> int:
        """An id for a read ahead; it is wanted once named in `want_prefetch`."""
        with self._lock:
            self._last_id += 1
            return self._last_id

    def want_prefetch(self, request_ids: Iterable[int]) -> None:
        """The reads ahead still wanted; every other one is stale."""
        with self._lock:
            self._prefetch = frozenset(request_ids)

    def prefetch_is_stale(self, request_id: int) -> bool:
        with self._lock:
            return request_id not in self._prefetch

    def open_is_stale(self, request_id: int) -> bool:
        with self._lock:
            return request_id < self._last_open

    def explain_is_stale(self, request_id: int) -> bool:
        with self._lock:
            return request_id < max(self._last_open, self._last_explain)


@dataclass(frozen=True)
class OpenRequest:
    """Load `path` and explain it with `method` (the worker does both in one go)."""

    request_id: int
    path: Path
    frame: int
    method: str
    model_known: bool = False  # the worker had a model then: it explains right after loading


@dataclass(frozen=True)
class ExplainRequest:
    """Explain an image already loaded (another method or another model)."""

    request_id: int
    image: LoadedImage
    method: str


@dataclass(frozen=True)
class ModelRequest:
    kind: str  # "demo", "keras" or "chexnet"
    path: str
    reference_images: str = ""  # CheXNet: the folder whose mean/std normalise ("": z-score)


Request = OpenRequest | ExplainRequest | ModelRequest | PrefetchRequest


class Redraw(Flag):
    NONE = 0
    IMAGE = auto()  # a new image (or none): base pixels, metadata, presets, title
    OVERLAY = auto()  # the heatmap, the findings list and the colour bar
    MODEL = auto()  # labels, banner, model name
    STATUS = auto()  # position, busy indicator
    WINDOW = auto()  # only the windowed pixels: window/level or inversion changed


@dataclass
class Effects:
    requests: list[Request] = field(default_factory=list)
    redraw: Redraw = Redraw.NONE
    errors: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def __iadd__(self, other: Effects) -> Effects:
        self.requests += other.requests
        self.redraw |= other.redraw
        self.errors += other.errors
        self.notices += other.notices
        return self


@dataclass(frozen=True)
class _Expected:
    request_id: int
    key: ResultKey


class SessionController:
    """The viewer's state and its events. See the module docstring for the rules."""

    def __init__(self, cache: ResultCache | None = None, tracker: RequestTracker | None = None,
                 method: str = "gradcam", style: OverlayStyle | None = None,
                 read_ahead: bool = True) -> None:
        self.cache = cache if cache is not None else ResultCache()
        self.tracker = tracker or RequestTracker()
        self.files = FileList()
        self.image: LoadedImage | None = None
        self.result: ExplainResult | None = None
        self.model: ModelInfo | None = None
        self.method = method
        self.style = style or OverlayStyle()
        self.overlay_on = True
        self.view = ViewState()  # window/level and inversion of `image`
        self.opening: OpenRequest | None = None  # the open in flight, if any
        self._opening_explained = False  # its explanation came before its image
        self.explaining: _Expected | None = None  # the explanation awaited for `image`
        self.models_loading = 0
        self.asked: tuple[list[Path], Path | None] = ([], None)  # see `ask`
        self.ahead = ReadAhead(self.tracker, self.cache, read_ahead)  # the neighbours

    # ------------------------------------------------------------------ queries ----
    def wanted_key(self) -> ResultKey | None:
        """The key of the explanation that belongs on screen now."""
        if self.image is None or self.model is None:
            return None
        return (str(self.image.path), self.image.frame, self.method, self.model.model_id)

    @property
    def busy(self) -> bool:
        return self.opening is not None or self.explaining is not None or self.models_loading > 0

    def belongs(self, result: ExplainResult) -> bool:
        """Whether `result` is the explanation of the image, method and model on screen."""
        return result.key == self.wanted_key()

    # ------------------------------------------------------------------ user events ----
    def open(self, path: Path, frame: int = 0, cached: bool = False) -> Effects:
        """Show `path`, decoded anew; `cached`: at once if its image is in the cache (read
        ahead, or seen before), as when stepping through the list."""
        path = Path(path)
        self.ahead.moved()
        self.explaining, self._opening_explained = None, False
        image = self.cache.image(path, frame) if cached else None
        if image is not None:
            self.tracker.new_open()  # an open still in flight is not wanted any more
            self.opening = None
            return self._show(image)
        self.opening = OpenRequest(self.tracker.new_open(), path, frame, self.method,
                                   self.model is not None)
        effects = Effects([self.opening], Redraw.STATUS)
        effects += self._read_ahead()
        return effects

    def ask(self, paths: Sequence[Path], first: Path | None = None) -> Effects:
        """Files, folders or media asked for, to be scanned (the Studies panel does that):
        the scan starts (`scan_started`), and `listed` opens what it found: `first` if it is
        among them."""
        self.asked = ([Path(p) for p in paths], Path(first) if first is not None else None)
        return self.scan_started(first)

    def scan_started(self, first: Path | None = None) -> Effects:
        """A list of files starts to grow (a folder scan, a study being retrieved). Until it
        is complete, Page Up / Page Down move within the files known (see FileList)."""
        self.files.begin(first)
        return Effects(redraw=Redraw.STATUS)

    def scan_progress(self, files: Sequence[Path]) -> Effects:
        """The files known so far, in reading order: the first one (or the one asked for, or
        where the keys pressed meanwhile lead) opens as soon as it is known."""
        if self.files.complete:
            return Effects()  # a late report of a scan already over
        return self._follow(self.files.update(files))

    def listed(self, files: list[Path], rejected: list[Path], notes: list[str]) -> Effects:
        """The scan of what was asked for found `files` (in order) and `rejected` (named
        explicitly, not images), with `notes` (warnings, notices) for the user. The file
        shown from a partial list stays, at its place in the complete one."""
        moved = self.files.finish(files)
        if not files and rejected:
            return self.open(rejected[0])  # a file named explicitly: the loader says why
        if not files:
            names = ", ".join(p.name or str(p) for p in self.asked[0])
            return Effects(errors=["\n".join([f"No image files found in {names}.", *notes])])
        notes = notes + [f"'{p.name}' is not an image file." for p in rejected]
        effects = self._follow(moved)
        effects.notices[:0] = ["\n".join(notes[:20])] if notes else []
        return effects

    def listing(self, paths: Sequence[Path], complete: bool, first: bool = False) -> Effects:
        """A study being retrieved: the files on disk so far, in reading order (`first`: the
        first listing of this retrieve, `complete`: nothing more will arrive). Like a scan,
        it starts a growing list whose first file opens as soon as it is known; keys pressed
        meanwhile are kept (see FileList)."""
        if first:
            self.scan_started()
        paths = [Path(p) for p in paths]
        if complete:
            return self._follow(self.files.finish(paths))
        return self.scan_progress(paths)

    def open_files(self, paths: list[Path], index: int = 0) -> Effects:
        self.files.set(paths, index)
        current = self.files.current
        return self.open(current, cached=True) if current is not None else Effects()

    def open_listed(self, path: Path, frame: int = 0) -> Effects:
        """An image picked in the Studies list: Page Up / Page Down go on from there."""
        self.files.choose(path)
        return self.open(path, frame, cached=True)

    def step(self, delta: int) -> Effects:
        self.ahead.direction = 1 if delta > 0 else -1
        return self._follow(self.files.step(delta) is not None)

    def change_method(self, method: str) -> Effects:
        if method not in METHOD_TITLES:
            raise ValueError(f"unknown CAM method {method!r}")
        self.method = method
        return self._settle()

    def change_style(self, style: OverlayStyle) -> Effects:
        self.style = style
        return Effects(redraw=Redraw.OVERLAY)

    def show_overlay(self, on: bool) -> Effects:
        self.overlay_on = on
        return Effects(redraw=Redraw.OVERLAY)

    def load_model(self, kind: str, path: str, reference_images: str = "") -> Effects:
        self.models_loading += 1
        return Effects([ModelRequest(kind, path, reference_images)], Redraw.STATUS)

    def set_read_ahead(self, on: bool) -> Effects:
        """Reading ahead on or off (off: whatever is being read ahead is given up)."""
        self.ahead.on = on
        return self._read_ahead()

    # ------------------------------------------------------------------ view events ----
    def drag_window(self, dx: float, dy: float) -> Effects:
        """Right-drag over the image (screen pixels: x = width, y = level)."""
        if self.image is None:
            return Effects()
        return self._set_view(dragged(self.view, self.image, dx, dy))

    def apply_preset(self, index: int) -> Effects:
        if self.image is None:
            return Effects()
        return self._set_view(with_preset(self.view, self.image, index))

    def toggle_invert(self) -> Effects:
        if self.image is None:
            return Effects()
        return self._set_view(inverted(self.view))

    def reset_view(self) -> Effects:
        """The image's own window and inversion again (zoom is the view's business)."""
        if self.image is None:
            return Effects()
        return self._set_view(initial_view(self.image))

    def _set_view(self, view: ViewState) -> Effects:
        if view == self.view:
            return Effects()
        self.view = view
        return Effects(redraw=Redraw.WINDOW)

    # ------------------------------------------------------------------ worker replies ----
    def image_loaded(self, request_id: int, image: LoadedImage) -> Effects:
        opening = self.opening
        if opening is None or request_id != opening.request_id:
            self.ahead.image_arrived(request_id, image)  # read ahead (cached), or not wanted
            return Effects()
        self.opening = None
        if self.model is not None and opening.model_known and not self._opening_explained:
            # The worker explains right after loading, with the method of the open request.
            # Only expected when a model was known when the open was sent: the worker works in
            # order, so it had one then; a model announced later may have come after the load.
            key = (str(image.path), image.frame, opening.method, self.model.model_id)
            self.explaining = _Expected(request_id, key)
        return self._show(image)

    def explained(self, request_id: int, result: ExplainResult) -> Effects:
        self.cache.put(result)
        effects = Effects(redraw=Redraw.STATUS)
        if self.explaining is not None and self.explaining.request_id == request_id:
            self.explaining = None
        if self.opening is not None and self.opening.request_id == request_id:
            self._opening_explained = True  # nothing more to wait for once its image is in
        self.ahead.answered(request_id)
        if self.belongs(result):
            self.result = result
            effects.redraw |= Redraw.OVERLAY
        effects += self._settle()
        return effects

    def failed(self, request_id: int, message: str) -> Effects:
        if self.ahead.answered(request_id):
            return self._read_ahead()  # said when the user opens it, if ever
        if self.opening is not None and self.opening.request_id == request_id:
            self.opening = None
            self.image, self.result, self.explaining = None, None, None
            self.view = ViewState()
            self.cache.pinned = None
            return Effects(redraw=Redraw.IMAGE | Redraw.OVERLAY | Redraw.STATUS,
                           errors=[message])
        if self.explaining is not None and self.explaining.request_id == request_id:
            self.explaining = None
            effects = Effects(redraw=Redraw.STATUS, errors=[message])
            effects += self._read_ahead()
            return effects
        return Effects()  # about work nobody waits for any more

    def model_loaded(self, info: ModelInfo) -> Effects:
        self.models_loading = max(0, self.models_loading - 1)
        if self.model is not None and info.model_id <= self.model.model_id:
            return Effects(redraw=Redraw.STATUS)  # an older model announced late
        self.model, self.result = info, None
        effects = Effects(redraw=Redraw.MODEL | Redraw.OVERLAY | Redraw.STATUS,
                          notices=list(info.notices))
        effects += self._settle()
        return effects

    def model_failed(self, message: str) -> Effects:
        self.models_loading = max(0, self.models_loading - 1)
        if self.model is not None:
            message += f"\n\nThe previous model ({self.model.name}) is still in use."
        effects = Effects(redraw=Redraw.MODEL | Redraw.STATUS, errors=[message])
        effects += self._read_ahead()
        return effects

    # ------------------------------------------------------------------ the one rule ----
    def _show(self, image: LoadedImage) -> Effects:
        """`image` on screen now; its explanation from the cache or asked for."""
        self.image, self.result = image, None
        self.view = initial_view(image)
        self.cache.put_image(image, pin=True)
        effects = Effects(redraw=Redraw.IMAGE | Redraw.OVERLAY | Redraw.STATUS)
        effects += self._settle()
        return effects

    def _settle(self) -> Effects:
        """Show the wanted explanation if it is known, else ask for it once; then read ahead."""
        effects = self._settle_result()
        effects += self._read_ahead()
        return effects

    def _settle_result(self) -> Effects:
        wanted = self.wanted_key()
        if self.result is not None and wanted is not None and self.belongs(self.result):
            self.explaining = None  # nothing else is awaited for this image
            return Effects()
        had = self.result is not None
        self.result = None
        if wanted is None or self.opening is not None:
            # no model yet, or a new image is on its way: never explain the old one now
            return Effects(redraw=Redraw.OVERLAY if had else Redraw.NONE)
        cached = self.cache.get(wanted)
        if cached is not None:
            self.result, self.explaining = cached, None
            return Effects(redraw=Redraw.OVERLAY | Redraw.STATUS)
        if self.explaining is not None and self.explaining.key == wanted:
            return Effects(redraw=Redraw.OVERLAY if had else Redraw.NONE)  # already asked
        assert self.image is not None
        request = ExplainRequest(self.tracker.new_explain(), self.image, self.method)
        self.explaining = _Expected(request.request_id, wanted)
        return Effects([request], Redraw.OVERLAY | Redraw.STATUS)

    def _follow(self, moved: bool) -> Effects:
        """Open the list's current file if the position moved to it."""
        current = self.files.current
        if not moved or current is None:
            return Effects(redraw=Redraw.STATUS)
        return self.open(current, cached=True)

    def _shown_path(self) -> Path | None:
        """The file on screen or on its way there."""
        if self.opening is not None:
            return self.opening.path
        return self.image.path if self.image is not None else None

    def _read_ahead(self) -> Effects:
        """Reads ahead to ask for (once the image on screen has what it needs), and those no
        longer wanted withdrawn."""
        model_id = self.model.model_id if self.model is not None else None
        return Effects(list[Request](self.ahead.plan(
            self.files.paths, self.files.index, self._shown_path(), self.busy, self.method,
            model_id)))

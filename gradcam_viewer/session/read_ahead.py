"""Reading ahead: which neighbours of the image on screen to prepare, which reads ahead are in
flight, and which were answered. No Qt; the session controller owns one and decides when it
may plan (never while the image on screen still waits for its own work).

The neighbours are the files before and after the current one in reading order, the one in the
last step's direction first. A neighbour is asked for when its image or its explanation (for
the method and model on screen) is not in the cache; a read ahead is withdrawn (made stale in
the `RequestTracker`) once its file is no longer a neighbour, except the one of the file being
opened, which the worker takes over for the user. Each (file, method, model) is asked for at
most once between two moves, whatever its answer (a failure, no room in the cache), so nothing
is asked again and again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.session.results import ImageKey, ResultCache, image_key

if TYPE_CHECKING:
    from gradcam_viewer.session.controller import RequestTracker

Asked = tuple[ImageKey, str, int | None]  # (image, method, model id)


@dataclass(frozen=True)
class PrefetchRequest:
    """Read `path` ahead (decode it, unless `image` is given) and explain it with `method`,
    into the cache. It never delays a user request: the worker takes any user request first,
    between the stages of this one, and gives it up once it is stale (see RequestTracker)."""

    request_id: int
    path: Path
    frame: int
    method: str
    image: LoadedImage | None = None  # decoded already (in the cache): explain only


class ReadAhead:
    def __init__(self, tracker: RequestTracker, cache: ResultCache, on: bool = True) -> None:
        self.tracker, self.cache = tracker, cache
        self.on = on
        self.direction = 1  # of the last step: that neighbour is read ahead first
        # in flight, by image, with the model id they were asked under
        self.in_flight: dict[ImageKey, tuple[PrefetchRequest, int | None]] = {}
        self._answered: set[Asked] = set()  # since the position last moved

    def moved(self) -> None:
        """Another file is being shown: anything may be asked for again."""
        self._answered.clear()

    def plan(self, files: Sequence[Path], index: int, shown: Path | None, busy: bool,
             method: str, model_id: int | None) -> list[PrefetchRequest]:
        """The reads ahead to ask for now (none while `busy`: the image on screen first);
        those no longer wanted are withdrawn. `index`: the list's current file, read ahead
        around only when it is `shown` (on screen or being opened)."""
        targets = self._targets(files, index, shown) if self.on else []
        keep = {key: entry for key, entry in self.in_flight.items()
                if key in targets or (busy and shown is not None and key[0] == str(shown))}
        asked: list[PrefetchRequest] = []
        for key in targets if not busy else []:
            entry = keep.get(key)
            if (self._ready(key, method, model_id) or (key, method, model_id) in self._answered
                    or (entry is not None and entry[0].method == method
                        and entry[1] == model_id)):
                continue
            request = PrefetchRequest(self.tracker.new_prefetch(), Path(key[0]), key[1], method,
                                      self.cache.image(*key))
            keep[key] = (request, model_id)
            asked.append(request)
        self.in_flight = keep
        self.tracker.want_prefetch(request.request_id for request, _ in keep.values())
        return asked

    def image_arrived(self, request_id: int, image: LoadedImage) -> bool:
        """A decoded image the worker sent: into the cache if it is a read ahead still
        wanted. False if it is none."""
        entry = self.in_flight.get(image_key(image))
        if entry is None or entry[0].request_id != request_id:
            return False
        if not self.cache.put_image(image):  # no room beside the image on screen
            self.answered(request_id)
        return True

    def answered(self, request_id: int) -> bool:
        """A read ahead was explained, failed or has no room: not asked again before the
        position moves. False if `request_id` is no read ahead in flight."""
        for key, (request, model_id) in list(self.in_flight.items()):
            if request.request_id == request_id:
                del self.in_flight[key]
                self._answered.add((key, request.method, model_id))
                return True
        return False

    def _targets(self, files: Sequence[Path], index: int, shown: Path | None) -> list[ImageKey]:
        if not 0 <= index < len(files) or shown != files[index]:
            return []
        places = (index + self.direction, index - self.direction)
        return [(str(files[i]), 0) for i in places if 0 <= i < len(files)]

    def _ready(self, key: ImageKey, method: str, model_id: int | None) -> bool:
        """Image and explanation (if there is a model) are in the cache."""
        if self.cache.image(*key) is None:
            return False
        return model_id is None or self.cache.get((key[0], key[1], method, model_id)) is not None

"""The worker's agenda: which stage of which job runs next. No Qt, no threads of its own.

A job is one image to decode (in a reading thread, large compressed frames in a decoding
process) and explain (on the worker's thread, in two stages: model input, then explanation).
Jobs come from the session's requests: opens and explanations are the user's, reads ahead
(`PrefetchRequest`) are not. The rules:
- a user job's decode starts at once; its stages come before any read ahead's;
- a read ahead runs only while no user job waits, one stage at a time, so a user request waits
  at most for the stage in hand; one read ahead decodes at a time;
- a job is known by its image (path, frame): a request for an image that a job is decoding
  or working on takes that job over, so Page Down onto a file being read ahead waits only for
  what is left of it; an open (File > Open decodes anew) takes over only a decode, or a read
  ahead decoded moments ago (its image still on its way to the cache when Page Down came);
- a finished job is forgotten: the images and results kept are the session cache's, within its
  byte budget, and a read ahead is decoded only if its image fits in that budget beside the
  image on screen (the same size is assumed before it is decoded), else it is answered "no
  room" at once;
- a stale job is dropped between stages, and its decode is given up (`image_unwanted`, read
  by the reading thread); an open whose explanation went stale still shows its image.

Replies are what the worker sends the session: ("image", id, LoadedImage), ("result", id,
ExplainResult), ("failed", id, message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto
from pathlib import Path

import numpy as np

from gradcam_viewer.cam.result import ExplainResult
from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.session.controller import (
    ExplainRequest,
    OpenRequest,
    RequestTracker,
)
from gradcam_viewer.session.read_ahead import PrefetchRequest

OPEN, EXPLAIN, PREFETCH = "open", "explain", "prefetch"  # who a job answers
NO_ROOM = "no room in the cache beside the image on screen"  # a read ahead's answer

Reply = tuple[str, int, LoadedImage | ExplainResult | str]


class Stage(Enum):
    DECODE = auto()  # to be decoded
    DECODING = auto()  # in a reading thread
    PREPARE = auto()  # decoded: the model input is next
    EXPLAIN = auto()
    DONE = auto()


@dataclass(eq=False)
class Job:
    # (kind, request id) in one attribute: a reading thread reads it while the worker's
    # thread may hand the job to a newer request
    owner: tuple[str, int]
    path: Path
    frame: int
    method: str
    stage: Stage
    image: LoadedImage | None = None
    model_input: np.ndarray | None = None
    input_model: int = -1  # the model id `model_input` was made for
    keys: tuple[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.keys = (str(self.path), self.frame)

    @property
    def kind(self) -> str:
        return self.owner[0]

    @property
    def request_id(self) -> int:
        return self.owner[1]


class Agenda:
    def __init__(self, tracker: RequestTracker, budget: int | None = None) -> None:
        """`budget`: the session cache's byte budget (None: reads ahead of any size)."""
        self.tracker = tracker
        self.budget = budget
        self.jobs: list[Job] = []  # not finished, in the order they came
        self.model_id = 0  # the worker's model (results are stamped with it)
        self.shown_bytes = 0  # the size of the newest image a user request brought or got

    # ------------------------------------------------------------------ staleness ----
    def image_unwanted(self, job: Job) -> bool:
        """Nobody waits for the job's image (read by reading threads while they decode)."""
        kind, request_id = job.owner
        if kind == OPEN:
            return self.tracker.open_is_stale(request_id)
        if kind == PREFETCH:
            return self.tracker.prefetch_is_stale(request_id)
        return self.tracker.explain_is_stale(request_id)

    def result_unwanted(self, job: Job) -> bool:
        kind, request_id = job.owner
        if kind == PREFETCH:
            return self.tracker.prefetch_is_stale(request_id)
        return self.tracker.explain_is_stale(request_id)

    # ------------------------------------------------------------------ requests ----
    def add(self, request: OpenRequest | ExplainRequest | PrefetchRequest) -> list[Reply]:
        """A new request: a job of its own, or one taken over. Replies to send at once."""
        image = None if isinstance(request, OpenRequest) else request.image
        if isinstance(request, ExplainRequest):
            owner, path, frame = (EXPLAIN, request.request_id), request.image.path, \
                request.image.frame
        else:
            owner = (OPEN if isinstance(request, OpenRequest) else PREFETCH, request.request_id)
            path, frame = request.path, request.frame
        if image is not None and owner[0] == EXPLAIN:
            self.shown_bytes = image.nbytes
        job = self._find((str(path), frame), owner[0])
        if job is not None:
            return self._take_over(job, owner, request.method, image)
        if owner[0] == PREFETCH and image is None and not self._room_for(self.shown_bytes):
            return [("failed", owner[1], NO_ROOM)]  # neighbours are as large, as a rule
        self.jobs.append(Job(owner, Path(path), frame, request.method,
                             Stage.DECODE if image is None else Stage.PREPARE, image))
        return []

    def _find(self, key: tuple[str, int], kind: str) -> Job | None:
        """A job for this image that a new request may take over: an open, a job still decoding
        or a read ahead's (File > Open reads the file anew: never a user's image decoded before
        it, nor a finished job's, which are forgotten); an explanation, any job (the user's
        newest request replaces what was asked before); a read ahead, a job nobody waits for
        (a user job still wanted is left alone)."""
        for job in self.jobs:
            if job.keys != key:
                continue
            if (kind == OPEN and job.kind != PREFETCH
                    and job.stage not in (Stage.DECODE, Stage.DECODING)):
                continue
            if kind != PREFETCH or job.kind == PREFETCH or self.result_unwanted(job):
                return job
        return None

    def _take_over(self, job: Job, owner: tuple[str, int], method: str,
                   image: LoadedImage | None) -> list[Reply]:
        job.owner, job.method = owner, method
        if job.image is None and image is not None:
            job.image = image
            if job.stage in (Stage.DECODE, Stage.DECODING):
                job.stage = Stage.PREPARE  # a decode in flight is left to finish, unused
        if job.image is not None and owner[0] != PREFETCH:
            self.shown_bytes = job.image.nbytes
        if (job.image is not None and job.stage not in (Stage.DECODE, Stage.DECODING)
                and owner[0] != EXPLAIN):  # an explanation's asker has the image already
            return [("image", owner[1], job.image)]
        return []

    # ------------------------------------------------------------------ decoding ----
    def to_decode(self) -> list[Job]:
        """The decodes to start now (marked as decoding): every user job's; a read ahead's
        only while no user job is waiting and no other read ahead is decoding."""
        self._drop_stale()
        start = [j for j in self.jobs if j.stage is Stage.DECODE and j.kind != PREFETCH]
        if not self.user_waiting() and not any(
                j.stage is Stage.DECODING for j in self.jobs if j.kind == PREFETCH):
            ahead = next((j for j in self.jobs
                          if j.stage is Stage.DECODE and j.kind == PREFETCH), None)
            start += [ahead] if ahead is not None else []
        for job in start:
            job.stage = Stage.DECODING
        return start

    def decoded(self, job: Job, image: LoadedImage) -> list[Reply]:
        if job.stage is not Stage.DECODING:  # taken over by an explanation meanwhile
            return []
        if self.image_unwanted(job):
            self._drop(job)
            return []
        if job.kind == PREFETCH and not self._room_for(image.nbytes):
            self._drop(job)  # not sent: the cache would drop other images to try it
            return [("failed", job.request_id, NO_ROOM)]
        if job.kind != PREFETCH:
            self.shown_bytes = image.nbytes
        job.image, job.stage = image, Stage.PREPARE
        return [("image", job.request_id, image)]

    def decode_failed(self, job: Job, message: str) -> list[Reply]:
        self._drop(job)
        return [] if self.image_unwanted(job) else [("failed", job.request_id, message)]

    def decode_given_up(self, job: Job) -> None:
        """The reading thread gave the decode up (it was unwanted then): again if a newer
        request took the job over meanwhile."""
        if job.stage is Stage.DECODING:
            if self.image_unwanted(job):
                self._drop(job)
            else:
                job.stage = Stage.DECODE

    # ------------------------------------------------------------------ worker stages ----
    def next_stage(self) -> Job | None:
        """The job whose next stage (PREPARE or EXPLAIN) runs now on the worker's thread."""
        self._drop_stale()
        ready = [j for j in self.jobs if j.stage in (Stage.PREPARE, Stage.EXPLAIN)]
        user = next((j for j in ready if j.kind != PREFETCH), None)
        if user is not None:
            return user
        if self.user_waiting():
            return None  # a user decode is in flight: no read ahead may delay what follows it
        return ready[0] if ready else None

    def prepared(self, job: Job, model_input: np.ndarray | None, model_id: int) -> None:
        job.model_input, job.input_model, job.stage = model_input, model_id, Stage.EXPLAIN

    def model_input(self, job: Job) -> np.ndarray | None:
        """The job's model input if it was made for the model in use (a model installed
        between the two stages needs its own)."""
        return job.model_input if job.input_model == self.model_id else None

    def explained(self, job: Job, result: ExplainResult | None) -> list[Reply]:
        """`result` None: there is no model yet (the session asks again when it comes)."""
        self._finish(job)
        if result is None or self.result_unwanted(job):
            return []
        return [("result", job.request_id, result)]

    def failed(self, job: Job, message: str) -> list[Reply]:
        self._drop(job)
        return [] if self.result_unwanted(job) else [("failed", job.request_id, message)]

    # ------------------------------------------------------------------ bookkeeping ----
    def user_waiting(self) -> bool:
        """A user job is waiting or decoding (one being given up does not count)."""
        return any(j.kind != PREFETCH and j.stage is not Stage.DONE
                   and not (j.stage is Stage.DECODING and self.image_unwanted(j))
                   for j in self.jobs)

    def _room_for(self, nbytes: int) -> bool:
        """Whether an image of `nbytes` fits in the cache's budget beside the one on screen."""
        return self.budget is None or self.shown_bytes + nbytes <= self.budget

    def _drop_stale(self) -> None:
        for job in list(self.jobs):
            if job.stage is Stage.DECODING:
                continue  # the reading thread gives it up and says so
            if (job.stage is Stage.DECODE and self.image_unwanted(job)) or (
                    job.stage in (Stage.PREPARE, Stage.EXPLAIN) and self.result_unwanted(job)):
                self._finish(job)

    def _finish(self, job: Job) -> None:
        """Done with: its image and model input are let go (what is kept is the cache's)."""
        job.stage, job.image, job.model_input = Stage.DONE, None, None
        self._drop(job)

    def _drop(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)

"""The worker's agenda: which stage of which job runs next. No Qt, no threads of its own.

A job is one image to decode (in a reading thread, large compressed frames in a decoding
process) and explain (on the worker's thread, in two stages: model input, then explanation).
Jobs come from the session's requests: opens and explanations are the user's, reads ahead
(`PrefetchRequest`) are not. The rules:
- a user job's decode starts at once; its stages come before any read ahead's;
- a read ahead runs only while no user job waits, one stage at a time, so a user request waits
  at most for the stage in hand; one read ahead decodes at a time;
- a job is known by its image (path, frame): a request for an image that a job is already
  decoding or has decoded (or explained, among the last few finished) takes that job over, so
  Page Down onto a file being read ahead waits only for what is left of it;
- a stale job is dropped between stages, and its decode is given up (`decode_unwanted`, read
  by the reading thread); an open whose explanation went stale still shows its image.

Replies are what the worker sends the session: ("image", id, LoadedImage), ("result", id,
ExplainResult), ("failed", id, message).
"""

from __future__ import annotations

from collections import deque
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
KEEP_FINISHED = 2  # finished jobs kept for a request to take over (their images are cached too)

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
    result: ExplainResult | None = None
    announced: int = 0  # the request whose "image" reply was sent
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
    def __init__(self, tracker: RequestTracker, keep_finished: int = KEEP_FINISHED) -> None:
        self.tracker = tracker
        self.jobs: list[Job] = []  # not finished, in the order they came
        self.finished: deque[Job] = deque(maxlen=keep_finished)
        self.model_id = 0  # the worker's model (results are stamped with it)

    # ------------------------------------------------------------------ staleness ----
    def image_unwanted(self, job: Job) -> bool:
        """Nobody waits for the job's image (read by reading threads: `decode_unwanted`)."""
        kind, request_id = job.owner
        if kind == OPEN:
            return self.tracker.open_is_stale(request_id)
        if kind == PREFETCH:
            return self.tracker.prefetch_is_stale(request_id)
        return self.tracker.explain_is_stale(request_id)

    decode_unwanted = image_unwanted

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
        job = self._find((str(path), frame), for_user=owner[0] != PREFETCH)
        if job is None:
            job = Job(owner, Path(path), frame, request.method,
                      Stage.DECODE if image is None else Stage.PREPARE, image)
            self.jobs.append(job)
            return []
        return self._take_over(job, owner, request.method, image)

    def _find(self, key: tuple[str, int], for_user: bool) -> Job | None:
        """A job for this image that a new request may take over: any job for a user request
        (the user's newest request replaces what was asked before), a read ahead's only if
        nobody waits for it (a user job still wanted is left alone)."""
        for job in [*self.jobs, *reversed(self.finished)]:
            if job.keys != key:
                continue
            if for_user or job.kind == PREFETCH or self.result_unwanted(job):
                return job
        return None

    def _take_over(self, job: Job, owner: tuple[str, int], method: str,
                   image: LoadedImage | None) -> list[Reply]:
        job.owner, job.method = owner, method
        if job.image is None and image is not None:
            job.image = image
            if job.stage in (Stage.DECODE, Stage.DECODING):
                job.stage = Stage.PREPARE  # a decode in flight is left to finish, unused
        replies: list[Reply] = []
        if job.image is not None and job.stage not in (Stage.DECODE, Stage.DECODING):
            if owner[0] != EXPLAIN:  # an explanation's asker has the image already
                replies.append(("image", owner[1], job.image))
            job.announced = owner[1]
        if job.stage is Stage.DONE:
            self.finished.remove(job)
            result = job.result
            if (result is not None and result.method == method
                    and result.key[3] == self.model_id):
                replies.append(("result", owner[1], result))
                self.finished.append(job)
                return replies
            job.stage, job.result = Stage.PREPARE, None
            self.jobs.append(job)
        elif job not in self.jobs:
            self.jobs.append(job)
        return replies

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
        job.image, job.stage = image, Stage.PREPARE
        if self.image_unwanted(job):
            self._finish(job)  # kept a little, for a request that comes back to it
            return []
        job.announced = job.request_id
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

    def explained(self, job: Job, result: ExplainResult | None) -> list[Reply]:
        """`result` None: there is no model yet (the session asks again when it comes)."""
        job.result = result
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

    def _drop_stale(self) -> None:
        for job in list(self.jobs):
            if job.stage is Stage.DECODING:
                continue  # the reading thread gives it up and says so
            if job.stage is Stage.DECODE and self.image_unwanted(job):
                self._drop(job)
            elif job.stage in (Stage.PREPARE, Stage.EXPLAIN) and self.result_unwanted(job):
                self._finish(job)  # its image stays at hand a little

    def _finish(self, job: Job) -> None:
        job.stage = Stage.DONE
        job.model_input = None
        self._drop(job)
        if job.image is not None:
            self.finished.append(job)

    def _drop(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)

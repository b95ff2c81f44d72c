"""The session controller driven by a worker without Qt or TensorFlow: the worker's own agenda
(`session.agenda.Agenda`, the code the real worker schedules with) and the same staleness rules,
with decodes, worker stages and the delivery of replies as separate steps a test (or Hypothesis)
runs in any order.

Every image and result carries a fingerprint of what it is (file; file, frame, method, model),
so a test sees whether what is shown is what it claims to be. The fingerprint is not taken from
the job's name for the file: the decode writes the file into the pixels, the model input stage
stamps those pixels and the model in use into the model input, and the explanation is made
from that input alone, as the real worker's is, so an explanation of a stale model input (or of
another file's) shows as a wrong result."""

from pathlib import Path

import numpy as np

from gradcam_viewer.imaging.image import LoadedImage, Window
from gradcam_viewer.session.agenda import Agenda, Stage
from gradcam_viewer.session.controller import ModelRequest, SessionController
from gradcam_viewer.session.results import ExplainResult, ModelInfo, ResultCache

FILES = [Path(f"/data/f{i}.dcm") for i in range(4)] + [Path("/data/bad.dcm")]
METHODS = ["gradcam", "gradcam++", "hirescam", "layercam"]


def fingerprint(key) -> float:
    """A number that only this (path, frame, method, model) explanation carries."""
    path, frame, method, model_id = key
    return float(FILES.index(Path(path)) * 1000 + frame * 100 + METHODS.index(method) * 10
                 + model_id)


def make_result(key, value: float | None = None) -> ExplainResult:
    """The explanation `key` claims to be, with the heatmaps of `value` (default: the key's
    own fingerprint)."""
    value = fingerprint(key) if value is None else value
    return ExplainResult(key=key, probabilities=np.full(2, value % 1 + 0.5),
                         heatmaps=np.full((2, 3, 3), value, np.float32), layer="conv",
                         method=key[2], score="logit", seconds=0.0)


def model_input(image: LoadedImage, model_id: int) -> np.ndarray:
    """What the model input stage makes of `image` with model `model_id`: the file index the
    decode wrote into the pixels, the frame, the model."""
    return np.array([image.pixels[0, 0], image.frame, model_id], np.float64)


def explain(x: np.ndarray, method: str) -> float:
    """The heatmap value an explanation of model input `x` has: whatever the job says."""
    index, frame, model_id = (int(v) for v in x)
    return fingerprint((str(FILES[index]), frame, method, model_id))


def make_image(path: Path, frame: int = 0) -> LoadedImage:
    """An image whose pixels say which file it is (large beside a result, as real ones are)."""
    return LoadedImage(path, np.full((32, 32), FILES.index(Path(path)), np.float32), "test",
                       Window(0, 1), frame=frame)


IMAGE_BYTES = make_image(FILES[0]).nbytes
RESULT_BYTES = make_result((str(FILES[0]), 0, METHODS[0], 1)).nbytes


class FakeWorker:
    """What the Qt worker does, step by step: requests arrive in order (`receive`), decodes
    end in any order (`end_decode`), the worker's thread runs one stage at a time (`stage`).
    Replies go to an outbox from which the test delivers them in any order."""

    def __init__(self, tracker, budget: int | None = None):
        self.tracker = tracker
        self.agenda = Agenda(tracker, budget)
        self.queue: list = []  # sent, not yet received
        self.decoding: list = []  # in reading threads
        self.outbox: list[tuple] = []
        self.model_id = 0
        self.decodes: list[Path] = []  # every decode started, in order
        self.stages: list[tuple[str, str]] = []  # (kind of job, stage) run, in order

    def busy(self) -> bool:
        return bool(self.queue or self.decoding or self.agenda.next_stage() is not None)

    def receive(self) -> None:
        req = self.queue.pop(0)
        if isinstance(req, ModelRequest):
            if req.kind == "bad":
                self.outbox.append(("model_failed", "broken.keras could not be loaded"))
            else:
                self.model_id += 1
                self.agenda.model_id = self.model_id
                self.outbox.append(("model_loaded", ModelInfo(self.model_id, f"m{self.model_id}",
                                                              ["a", "b"], {}, True, [])))
        else:
            self._reply(self.agenda.add(req))
        self._start_decodes()

    def end_decode(self, index: int, give_up: bool = True) -> None:
        job = self.decoding.pop(index % len(self.decoding))
        if give_up and self.agenda.image_unwanted(job):
            self.agenda.decode_given_up(job)  # the reading thread saw it was not wanted
        elif job.path.name == "bad.dcm":
            self._reply(self.agenda.decode_failed(job, f"'{job.path.name}' is not an image"))
        else:
            self._reply(self.agenda.decoded(job, make_image(job.path, job.frame)))
        self._start_decodes()

    def stage(self) -> None:
        job = self.agenda.next_stage()
        if job is not None:
            self.stages.append((job.kind, job.stage.name))
            if job.stage is Stage.PREPARE:
                self.agenda.prepared(job, model_input(job.image, self.model_id), self.model_id)
            elif not self.model_id:
                self._reply(self.agenda.explained(job, None))
            else:  # as ui/worker.py: the input made at PREPARE, if it is the model's in use
                x = self.agenda.model_input(job)
                x = model_input(job.image, self.model_id) if x is None else x
                key = (str(job.image.path), job.image.frame, job.method, self.model_id)
                self._reply(self.agenda.explained(job, make_result(key, explain(x, job.method))))
        self._start_decodes()

    def _start_decodes(self) -> None:
        for job in self.agenda.to_decode():
            self.decoding.append(job)
            self.decodes.append(job.path)

    def _reply(self, replies) -> None:
        names = {"image": "image_loaded", "result": "explained", "failed": "failed"}
        for kind, request_id, payload in replies:
            self.outbox.append((names[kind], request_id, payload))


class Harness:
    def __init__(self, budget: int | None = None, read_ahead: bool = True):
        cache = ResultCache() if budget is None else ResultCache(budget)
        self.c = SessionController(cache=cache, read_ahead=read_ahead)
        self.w = FakeWorker(self.c.tracker, cache.budget)
        self.errors: list[str] = []
        self.errors_before = 0
        self.expected: Path | None = None  # the file the user's actions lead to
        self.checks: list = []  # called after every event

    def apply(self, effects) -> None:
        for req in effects.requests:
            self.w.queue.append(req)
        self.errors += effects.errors
        for check in self.checks:
            check(self)

    def user(self, effects, moved_to: Path | None = None) -> None:
        """A user action's effects; `moved_to`: the file the action asked for."""
        if moved_to is not None:
            self.expected, self.errors_before = moved_to, len(self.errors)
        self.apply(effects)

    def deliver(self, index: int) -> None:
        name, *args = self.w.outbox.pop(index % len(self.w.outbox))
        self.apply(getattr(self.c, name)(*args))

    def step_worker(self, rnd) -> bool:
        """One step of the worker or one delivery, at random; False when nothing is left."""
        choices = []
        if self.w.queue:
            choices.append(self.w.receive)
        if self.w.decoding:
            choices.append(lambda: self.w.end_decode(rnd.randrange(len(self.w.decoding)),
                                                     give_up=rnd.random() < 0.5))
        if self.w.agenda.next_stage() is not None:
            choices.append(self.w.stage)
        if self.w.outbox:
            choices.append(lambda: self.deliver(rnd.randrange(len(self.w.outbox))))
        if not choices:
            return False
        rnd.choice(choices)()
        return True

    def drain(self, rnd, limit: int = 10_000) -> None:
        for _ in range(limit):
            if not self.step_worker(rnd):
                return
        raise AssertionError("the worker and the session never came to rest")

    def check_final(self) -> None:
        c = self.c
        assert not c.busy
        if self.expected is None:
            return
        if self.expected.name == "bad.dcm":
            assert c.image is None and c.result is None
            assert any("bad.dcm" in e for e in self.errors[self.errors_before:])
            return
        assert c.image is not None and c.image.path == self.expected
        assert c.image.pixels[0, 0] == FILES.index(self.expected)
        if self.w.model_id == 0:
            assert c.result is None
            return
        assert c.model.model_id == self.w.model_id
        key = (str(self.expected), 0, c.method, self.w.model_id)
        assert c.result is not None and c.result.key == key
        np.testing.assert_array_equal(c.result.heatmaps, fingerprint(key))


def shown_is_consistent(h: Harness) -> None:
    """After every event: the image on screen is the file it claims to be, and a result on
    screen is that image's, with the method and model on screen."""
    c = h.c
    if c.image is not None:
        assert c.image.pixels[0, 0] == FILES.index(Path(c.image.path))
    if c.result is not None:
        assert c.result.key == (str(c.image.path), c.image.frame, c.method, c.model.model_id)
        np.testing.assert_array_equal(c.result.heatmaps, fingerprint(c.result.key))


def within_budget(h: Harness) -> None:
    """After every event: the cache within its budget (one that holds the image on screen and
    a result)."""
    cache = h.c.cache
    assert cache.nbytes <= cache.budget, (cache.nbytes, cache.budget)

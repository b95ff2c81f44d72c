"""The session controller without Qt: events in, state and effects out, and property tests
where user actions and worker replies come in random order."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gradcam_viewer.imaging.image import LoadedImage, Window
from gradcam_viewer.session.controller import (
    ExplainRequest,
    ModelRequest,
    OpenRequest,
    RequestTracker,
    SessionController,
)
from gradcam_viewer.session.results import ExplainResult, ModelInfo, ResultCache

FILES = [Path(f"/data/f{i}.dcm") for i in range(4)] + [Path("/data/bad.dcm")]
METHODS = ["gradcam", "gradcam++", "hirescam", "layercam"]


def fingerprint(key) -> float:
    """A number that only this (path, frame, method, model) explanation carries."""
    path, frame, method, model_id = key
    return float(FILES.index(Path(path)) * 1000 + frame * 100 + METHODS.index(method) * 10
                 + model_id)


def make_result(key) -> ExplainResult:
    value = fingerprint(key)
    return ExplainResult(key=key, probabilities=np.full(2, value % 1 + 0.5),
                         heatmaps=np.full((2, 3, 3), value, np.float32), layer="conv",
                         method=key[2], score="logit", seconds=0.0)


class FakeWorker:
    """Does what the Qt worker does, in order, with the same staleness rules; its replies go
    to an outbox from which the test delivers them in any order."""

    def __init__(self, tracker: RequestTracker):
        self.tracker = tracker
        self.queue: list = []
        self.outbox: list[tuple] = []
        self.model_id = 0

    def work_one(self) -> None:
        req = self.queue.pop(0)
        if isinstance(req, ModelRequest):
            if req.kind == "bad":
                self.outbox.append(("model_failed", "broken.keras could not be loaded"))
            else:
                self.model_id += 1
                self.outbox.append(("model_loaded", ModelInfo(self.model_id, f"m{self.model_id}",
                                                              ["a", "b"], {}, True, [])))
        elif isinstance(req, OpenRequest):
            if self.tracker.open_is_stale(req.request_id):
                return
            if req.path.name == "bad.dcm":
                self.outbox.append(("failed", req.request_id, "'bad.dcm' is not an image"))
                return
            image = LoadedImage(req.path, np.zeros((4, 4), np.float32), "test",
                                Window(0, 1), frame=req.frame)
            self.outbox.append(("image_loaded", req.request_id, image))
            self._explain(req.request_id, image, req.method)
        else:
            self._explain(req.request_id, req.image, req.method)

    def _explain(self, request_id, image, method) -> None:
        if self.model_id and not self.tracker.explain_is_stale(request_id):
            key = (str(image.path), image.frame, method, self.model_id)
            self.outbox.append(("explained", request_id, make_result(key)))


class Harness:
    def __init__(self):
        self.c = SessionController(cache=ResultCache())
        self.w = FakeWorker(self.c.tracker)
        self.errors: list[str] = []
        self.asked: Path | None = None

    def apply(self, effects) -> None:
        for req in effects.requests:
            if isinstance(req, OpenRequest):
                self.asked, self.errors_before = req.path, len(self.errors)
            self.w.queue.append(req)
        self.errors += effects.errors

    def deliver(self, index: int) -> None:
        name, *args = self.w.outbox.pop(index % len(self.w.outbox))
        self.apply(getattr(self.c, name)(*args))

    def drain(self, rnd) -> None:
        while self.w.queue or self.w.outbox:
            if self.w.queue and (not self.w.outbox or rnd.random() < 0.5):
                self.w.work_one()
            else:
                self.deliver(rnd.randrange(len(self.w.outbox)))

    def check_final(self) -> None:
        c = self.c
        assert not c.busy
        if self.asked is None:
            return
        if self.asked.name == "bad.dcm":
            assert c.image is None and c.result is None
            assert any("bad.dcm" in e for e in self.errors[self.errors_before:])
            return
        assert c.image is not None and c.image.path == self.asked
        if self.w.model_id == 0:
            assert c.result is None
            return
        assert c.model.model_id == self.w.model_id
        key = (str(self.asked), 0, c.method, self.w.model_id)
        assert c.result is not None and c.result.key == key
        np.testing.assert_array_equal(c.result.heatmaps, fingerprint(key))


ACTION = st.one_of(
    st.tuples(st.just("open"), st.integers(0, len(FILES) - 1)),
    st.tuples(st.just("step"), st.sampled_from([-1, 1])),
    st.tuples(st.just("method"), st.sampled_from(METHODS)),
    st.tuples(st.just("model"), st.sampled_from(["demo", "demo", "bad"])),
    st.tuples(st.just("work"), st.just(0)),
    st.tuples(st.just("deliver"), st.integers(0, 20)),
)


def run_actions(h: Harness, actions) -> None:
    for kind, arg in actions:
        if kind == "open":
            h.apply(h.c.open_files(FILES, arg))
        elif kind == "step":
            h.apply(h.c.step(arg))
        elif kind == "method":
            h.apply(h.c.change_method(arg))
        elif kind == "model":
            h.apply(h.c.load_model(arg, ""))
        elif kind == "work" and h.w.queue:
            h.w.work_one()
        elif kind == "deliver" and h.w.outbox:
            h.deliver(arg)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ACTION, max_size=40), st.randoms(use_true_random=False))
def test_any_order_ends_on_the_last_file_with_its_own_heatmaps(actions, rnd):
    h = Harness()
    run_actions(h, actions)
    h.drain(rnd)
    h.check_final()


@settings(max_examples=200, deadline=None)
@given(st.lists(ACTION, max_size=30), st.randoms(use_true_random=False))
def test_a_shown_result_always_belongs_to_the_image_method_and_model(actions, rnd):
    """Not only at the end: after every event."""
    h = Harness()
    original = h.apply

    def checked(effects):
        original(effects)
        c = h.c
        if c.result is not None:
            assert c.result.key == (str(c.image.path), c.image.frame, c.method, c.model.model_id)
    h.apply = checked
    run_actions(h, actions)
    h.drain(rnd)


def test_page_down_then_method_change_keeps_the_open():
    """The reported race, step by step: the open in flight stays valid."""
    h = Harness()
    run_actions(h, [("model", "demo"), ("work", 0), ("deliver", 0), ("open", 0)])
    h.drain(__import__("random").Random(0))
    open_effects = h.c.step(1)
    method_effects = h.c.change_method("gradcam++")
    assert method_effects.requests == []  # the old image is not explained again
    assert not h.c.tracker.open_is_stale(open_effects.requests[0].request_id)
    h.apply(open_effects)
    h.drain(__import__("random").Random(0))
    assert h.c.image.path == FILES[1] and h.c.result.key == (str(FILES[1]), 0, "gradcam++", 1)


def test_model_loaded_while_a_file_opens_does_not_make_it_stale():
    h = Harness()
    run_actions(h, [("model", "demo"), ("work", 0), ("deliver", 0), ("open", 0)])
    h.drain(__import__("random").Random(1))
    h.apply(h.c.open(FILES[2]))
    h.apply(h.c.load_model("demo", ""))
    opened = h.w.queue[0].request_id
    h.w.queue.reverse()  # the model was asked for first
    h.w.work_one()
    h.deliver(0)  # model 2 announced while the file is loading
    assert not h.c.tracker.open_is_stale(opened)
    h.drain(__import__("random").Random(1))
    assert h.c.result.key == (str(FILES[2]), 0, "gradcam", 2)


def test_explanation_for_another_file_is_never_shown():
    c = SessionController()
    c.model_loaded(ModelInfo(1, "m", ["a", "b"], {}, False, []))
    first = c.open(FILES[0]).requests[0]
    second = c.open(FILES[1]).requests[0]
    assert c.image_loaded(first.request_id, LoadedImage(FILES[0], np.zeros((2, 2)), "t",
                                                        None)).redraw.value == 0
    c.image_loaded(second.request_id, LoadedImage(FILES[1], np.zeros((2, 2)), "t", None))
    c.explained(first.request_id, make_result((str(FILES[0]), 0, "gradcam", 1)))
    assert c.result is None and c.busy
    c.explained(second.request_id, make_result((str(FILES[1]), 0, "gradcam", 1)))
    assert c.result.key[0] == str(FILES[1]) and not c.busy


def test_method_back_comes_from_the_cache():
    h = Harness()
    run_actions(h, [("model", "demo"), ("work", 0), ("deliver", 0), ("open", 0)])
    h.drain(__import__("random").Random(2))
    h.apply(h.c.change_method("layercam"))
    h.drain(__import__("random").Random(2))
    back = h.c.change_method("gradcam")
    assert back.requests == [] and h.c.result.method == "gradcam"


def test_failed_open_clears_the_image_and_says_why():
    h = Harness()
    run_actions(h, [("model", "demo"), ("work", 0), ("deliver", 0), ("open", 0)])
    h.drain(__import__("random").Random(3))
    h.apply(h.c.open_files(FILES, len(FILES) - 1))
    h.drain(__import__("random").Random(3))
    assert h.c.image is None and "bad.dcm" in h.errors[-1]


def test_model_failure_keeps_the_model_and_says_so():
    c = SessionController()
    c.model_loaded(ModelInfo(1, "first", ["a"], {}, False, []))
    c.load_model("keras", "x.keras")
    effects = c.model_failed("x.keras: CamError: no convolution layer")
    assert c.model.name == "first" and not c.busy
    assert "CamError" in effects.errors[0] and "still in use" in effects.errors[0]


def test_tracker_open_is_only_made_stale_by_an_open():
    t = RequestTracker()
    a = t.new_open()
    e = t.new_explain()
    assert not t.open_is_stale(a) and t.explain_is_stale(a) and not t.explain_is_stale(e)
    b = t.new_open()
    assert t.open_is_stale(a) and t.explain_is_stale(e) and not t.open_is_stale(b)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError):
        SessionController().change_method("nope")


def test_controller_imports_without_qt_or_tensorflow():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name.split('.')[0] in ('PySide6', 'shiboken6', 'tensorflow'):\n"
            "            raise ImportError('blocked: ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import gradcam_viewer.session.controller, gradcam_viewer.session.results\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


def test_one_list_of_cam_methods():
    from gradcam_viewer.cam.methods import METHOD_TITLES, METHODS

    assert list(METHOD_TITLES) == list(METHODS)


def test_explanation_before_its_image_with_a_newer_model_in_between():
    """Found by Hypothesis: the worker's explanation (model 3) is delivered before its image,
    and model 4 is announced in between; the window must not wait for it a second time."""
    c = SessionController()
    c.model_loaded(ModelInfo(1, "m1", ["a", "b"], {}, False, []))
    req = c.open(FILES[0]).requests[0]
    image = LoadedImage(FILES[0], np.zeros((2, 2), np.float32), "t", None)
    c.explained(req.request_id, make_result((str(FILES[0]), 0, "gradcam", 3)))
    c.model_loaded(ModelInfo(4, "m4", ["a", "b"], {}, False, []))
    effects = c.image_loaded(req.request_id, image)
    assert [type(r) for r in effects.requests] == [ExplainRequest]  # asks for model 4 now
    c.explained(effects.requests[0].request_id, make_result((str(FILES[0]), 0, "gradcam", 4)))
    assert c.result.key[3] == 4 and not c.busy

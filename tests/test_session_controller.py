"""The session controller without Qt: events in, state and effects out, and property tests
where user actions and worker replies come in random order."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.session.controller import (
    ExplainRequest,
    RequestTracker,
    SessionController,
)
from gradcam_viewer.session.read_ahead import PrefetchRequest
from gradcam_viewer.session.results import ModelInfo
from session_harness import FILES, METHODS, Harness, make_result, shown_is_consistent

ACTION = st.one_of(
    st.tuples(st.just("open"), st.integers(0, len(FILES) - 1)),
    st.tuples(st.just("step"), st.sampled_from([-1, 1])),
    st.tuples(st.just("method"), st.sampled_from(METHODS)),
    st.tuples(st.just("model"), st.sampled_from(["demo", "demo", "bad"])),
    st.tuples(st.just("work"), st.just(0)),
    st.tuples(st.just("decode"), st.integers(0, 20)),
    st.tuples(st.just("stage"), st.just(0)),
    st.tuples(st.just("deliver"), st.integers(0, 20)),
)


def run_actions(h: Harness, actions) -> None:
    for kind, arg in actions:
        if kind == "open":
            h.user(h.c.open_files(FILES, arg), FILES[arg])
        elif kind == "step":
            before = h.c.files.current
            effects = h.c.step(arg)
            h.user(effects, h.c.files.current if h.c.files.current != before else None)
        elif kind == "method":
            h.apply(h.c.change_method(arg))
        elif kind == "model":
            h.apply(h.c.load_model(arg, ""))
        elif kind == "work" and h.w.queue:
            h.w.receive()
        elif kind == "decode" and h.w.decoding:
            h.w.end_decode(arg, give_up=arg % 2 == 0)
        elif kind == "stage":
            h.w.stage()
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
    h.checks.append(shown_is_consistent)
    run_actions(h, actions)
    h.drain(rnd)


def test_page_down_then_method_change_keeps_the_open():
    """The reported race, step by step: the open in flight stays valid (nothing read ahead)."""
    h = Harness(read_ahead=False)
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
    h.w.receive()
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
    assert all(isinstance(r, PrefetchRequest) for r in back.requests)
    assert h.c.result.method == "gradcam"


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

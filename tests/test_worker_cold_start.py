"""Cold start in the worker: eager explanations until the background trace is ready,
the first image as a new model's warm-up, model switches during a trace (pytest-qt, random
orders with Hypothesis). Traces are held at a gate so that "during the trace" is not timing."""

import threading
import time
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

import models_zoo as zoo
from gradcam_viewer.cam.methods import METHODS
from gradcam_viewer.resources import samples_dir
from gui_helpers import wait_shown

SAMPLES = sorted(samples_dir().glob("*.dcm"))[:3]
ALL_SAMPLES = sorted(samples_dir().glob("*.png")) + sorted(samples_dir().glob("*.dcm"))
RTOL = 1e-4


class Spy:
    """Every explain and trace: which explainer, eager or not, all-zero input, which thread."""

    def __init__(self, monkeypatch):
        from gradcam_viewer.cam import Explainer

        self.calls: list[tuple] = []
        self.gate = threading.Event()  # traces wait here until the test opens it
        self.tracing = threading.Event()  # a trace has started (and waits at the gate)
        real_explain, real_trace = Explainer.explain, Explainer.trace
        spy = self

        def explain(self, x, method=None, eager=False):
            spy.calls.append(("explain", self, eager, not np.any(x), threading.current_thread()))
            return real_explain(self, x, method, eager=eager)

        def trace(self, method):
            spy.calls.append(("trace", self, method, None, threading.current_thread()))
            spy.tracing.set()
            assert spy.gate.wait(120)
            return real_trace(self, method)

        monkeypatch.setattr(Explainer, "explain", explain)
        monkeypatch.setattr(Explainer, "trace", trace)

    def explains_of(self, explainer):
        return [c for c in self.calls if c[0] == "explain" and c[1] is explainer]

    def assert_never_on_the_gui_thread(self, *explainers):
        """The worker's explainers (the test's own references run where the test runs)."""
        ours = [c for c in self.calls if any(c[1] is e for e in explainers)]
        assert ours and all(c[4] is not threading.main_thread() for c in ours)


def _close(a, b):
    assert float(np.abs(np.asarray(a) - np.asarray(b)).max()) <= RTOL * max(
        float(np.abs(np.asarray(b)).max()), 1e-12)


def _matches(result, run, path, method):
    ref = run(path, method)
    _close(result.heatmaps, ref.heatmaps[0])
    _close(result.probabilities, ref.probabilities[0])


def _new_model(qtbot, win, kind="demo", path=""):
    old = win.session.model.model_id if win.session.model else 0
    win.load_model(kind, path)
    qtbot.waitUntil(lambda: win.session.model is not None and win.session.model.model_id > old,
                    timeout=120_000)
    return win.worker.explainer


ACTIONS = st.lists(st.tuples(st.sampled_from(["open", "method"]), st.integers(0, 5)),
                   min_size=2, max_size=5)


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS, release_at=st.integers(0, 5))
def test_requests_during_the_trace_are_eager_and_right_then_compiled(win, qtbot, reference,
                                                                    monkeypatch, actions,
                                                                    release_at):
    _, run = reference
    methods = list(METHODS)
    with monkeypatch.context() as m:
        spy = Spy(m)
        explainer = _new_model(qtbot, win)  # untraced, warmed up on zeros (no image queued)
        win.controls.method_box.setCurrentIndex(0)
        path, method = SAMPLES[0], methods[0]
        win.open_file(path)
        wait_shown(qtbot, win, path, method)
        _matches(win.session.result, run, path, method)
        assert spy.explains_of(explainer)[-1][2], "the first image is explained eagerly"
        qtbot.waitUntil(spy.tracing.is_set, timeout=60_000)  # asked once the result was out
        for i, (what, n) in enumerate(actions):
            if i == release_at:
                spy.gate.set()
            if what == "open":
                path = SAMPLES[n % len(SAMPLES)]
                win.open_file(path)
            else:
                method = methods[n % len(methods)]
                win.controls.method_box.setCurrentIndex(n % len(methods))
            wait_shown(qtbot, win, path, method)
            _matches(win.session.result, run, path, method)
            if not spy.gate.is_set():  # the trace is held: every explanation so far was eager
                assert all(c[2] for c in spy.explains_of(explainer))
        spy.gate.set()
        qtbot.waitUntil(lambda: explainer.is_traced(method), timeout=120_000)
        before = explainer.runs["compiled"]
        unseen = next(p for p in ALL_SAMPLES  # nothing cached: the worker must explain it
                      if win.session.cache.get((str(p), 0, method, win.session.model.model_id)) is None)
        win.open_file(unseen)
        wait_shown(qtbot, win, unseen, method)
        _matches(win.session.result, run, unseen, method)
        assert explainer.runs["compiled"] > before  # the compiled function is in use now
        assert win.worker.explainer is explainer
        spy.assert_never_on_the_gui_thread(explainer)


def _keras_model(folder: Path, name: str, seed: int) -> Path:
    import keras

    keras.utils.set_random_seed(seed)
    path = folder / f"{name}.keras"
    zoo.small_cnn_gap().save(path)
    zoo.write_beside(path, zoo.manifest_for(path, ["a", "b", "c"], name=name))
    return path


def _runner(path):
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.imaging import load_image
    from gradcam_viewer.models import load_model_bundle

    bundle = load_model_bundle(str(path))
    explainer = Explainer(bundle.model, layer=bundle.target_layer, output=bundle.output)
    return lambda p, method="gradcam": explainer.explain(  # eager: no compiled function
        bundle.prepare(load_image(p)), method=method, eager=True)


def test_a_model_switch_during_a_trace_never_gets_the_old_function(win, qtbot, tmp_path,
                                                                  monkeypatch):
    a, b = _keras_model(tmp_path, "model_a", 1), _keras_model(tmp_path, "model_b", 2)
    run_a, run_b = _runner(a), _runner(b)
    assert not np.allclose(run_a(SAMPLES[0]).heatmaps, run_b(SAMPLES[0]).heatmaps)
    spy = Spy(monkeypatch)
    ex_a = _new_model(qtbot, win, "keras", str(a))
    win.open_file(SAMPLES[0])
    wait_shown(qtbot, win, SAMPLES[0], "gradcam")
    _matches(win.session.result, run_a, SAMPLES[0], "gradcam")
    qtbot.waitUntil(spy.tracing.is_set, timeout=60_000)  # A's trace is in flight, held
    ex_b = _new_model(qtbot, win, "keras", str(b))
    wait_shown(qtbot, win, SAMPLES[0], "gradcam")  # the session asks B for the image
    _matches(win.session.result, run_b, SAMPLES[0], "gradcam")
    spy.gate.set()  # A's trace ends now, on A
    qtbot.waitUntil(lambda: ex_a.is_traced("gradcam") and ex_b.is_traced("gradcam"),
                    timeout=120_000)
    before = ex_b.runs["compiled"]
    win.open_file(SAMPLES[1])
    wait_shown(qtbot, win, SAMPLES[1], "gradcam")
    assert ex_b.runs["compiled"] == before + 1 and ex_a.runs["compiled"] == 0
    _matches(win.session.result, run_b, SAMPLES[1], "gradcam")  # B's own compiled function
    assert win.worker.explainer is ex_b and win.session.model.name == "model_b"
    spy.assert_never_on_the_gui_thread(ex_a, ex_b)


def test_the_first_image_after_a_load_is_the_warm_up(win, qtbot, reference, monkeypatch):
    _, run = reference
    spy = Spy(monkeypatch)
    spy.gate.set()
    old = win.session.model.model_id
    win.load_model("demo", "")
    win.open_file(SAMPLES[1])  # queued right behind the model
    qtbot.waitUntil(lambda: win.session.model.model_id > old, timeout=120_000)
    wait_shown(qtbot, win, SAMPLES[1], "gradcam")
    new = win.worker.explainer
    first = spy.explains_of(new)[0]
    assert first[2] and not first[3], "warmed up eagerly on the image, not on zeros"
    assert not any(c[3] for c in spy.explains_of(new))
    _matches(win.session.result, run, SAMPLES[1], "gradcam")
    spy.assert_never_on_the_gui_thread(new)


def test_a_model_failing_on_the_first_image_and_zeros_stays_out(win, qtbot, reference,
                                                               monkeypatch):
    from gradcam_viewer.cam import CamError, Explainer

    _, run = reference
    expected = run(SAMPLES[2])  # before any explainer but the window's breaks
    before = (win.worker.explainer, win.worker.model_id)
    real = Explainer.explain

    def explain(self, *args, **kwargs):
        if self is not before[0]:  # any new model fails, on any input
            raise CamError("broken on purpose (injected)")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Explainer, "explain", explain)
    win.load_model("demo", "")
    win.open_file(SAMPLES[2])  # would be the new model's warm-up
    qtbot.waitUntil(lambda: "injected" in win.messages.last_error, timeout=120_000)
    wait_shown(qtbot, win, SAMPLES[2], "gradcam")
    assert (win.worker.explainer, win.worker.model_id) == before
    assert win.session.result.key[3] == before[1]  # the previous model explained the image
    _close(win.session.result.heatmaps, expected.heatmaps[0])


def test_the_tracer_skips_a_model_no_longer_wanted():
    from gradcam_viewer.cam.tracing import BackgroundTracer

    traced = []

    class Fake:
        def is_traced(self, method):
            return False

        def trace(self, method):
            traced.append((self, method))

    keep, drop = Fake(), Fake()
    tracer = BackgroundTracer(lambda e: e is keep)
    for e in (drop, keep, keep):  # the second request for `keep` is not queued again
        tracer.request(e, "gradcam")
    tracer.request(drop, "layercam")
    deadline = time.monotonic() + 30
    while tracer._jobs.unfinished_tasks and time.monotonic() < deadline:
        time.sleep(0.01)
    tracer.stop(30)
    assert traced == [(keep, "gradcam")] and tracer.traced == 1


def test_closing_during_a_trace_hides_the_window_and_waits_for_the_trace(win, qtbot, monkeypatch):
    """A trace cannot be interrupted, and a process that exits while one runs aborts in
    TensorFlow's C++ ("terminate called...", exit 134): closing must wait for it, with the
    window already gone rather than frozen on screen."""
    spy = Spy(monkeypatch)
    explainer = _new_model(qtbot, win)
    win.open_file(SAMPLES[0])
    wait_shown(qtbot, win, SAMPLES[0], "gradcam")
    qtbot.waitUntil(spy.tracing.is_set, timeout=60_000)  # the trace is in flight, held
    seen = []
    real_stop = win.worker.stop

    def stop():
        seen.append((win.isVisible(), spy.gate.is_set()))
        threading.Timer(0.5, spy.gate.set).start()  # the trace ends while close waits
        real_stop()

    monkeypatch.setattr(win.worker, "stop", stop)
    win.close()
    assert seen and seen[0] == (False, False), "the window stayed on screen while close waited"
    assert explainer.is_traced("gradcam")  # close waited for the trace to end
    assert not [t for t in threading.enumerate() if t.name == "gradcam-trace"]


def test_a_failing_background_trace_is_logged_once_and_explanations_stay_eager(
        win, qtbot, reference, monkeypatch, caplog):
    """A trace that raises is logged (with its traceback), never asked for again for that
    model and method, and the model keeps explaining, eagerly and right."""
    import logging

    from gradcam_viewer.cam import Explainer

    _, run = reference
    spy = Spy(monkeypatch)

    def failing(self, method):
        spy.calls.append(("trace", self, method, None, threading.current_thread()))
        raise RuntimeError("tracing broken on purpose (injected)")

    monkeypatch.setattr(Explainer, "trace", failing)
    explainer = _new_model(qtbot, win)
    caplog.set_level(logging.WARNING, logger="gradcam_viewer.cam.tracing")
    for path in SAMPLES:
        win.open_file(path)
        wait_shown(qtbot, win, path, "gradcam")
        _matches(win.session.result, run, path, "gradcam")
        qtbot.waitUntil(lambda: not win.worker.tracer._jobs.unfinished_tasks, timeout=60_000)
    traces = [c for c in spy.calls if c[0] == "trace" and c[1] is explainer]
    assert len(traces) == 1, "a failed trace was asked for again"
    assert not explainer.is_traced("gradcam") and explainer.runs["compiled"] == 0
    assert all(c[2] for c in spy.explains_of(explainer))  # every explanation eager
    failed = [r for r in caplog.records if "tracing gradcam failed" in r.getMessage()]
    assert len(failed) == 1 and "injected" in str(failed[0].exc_info[1])

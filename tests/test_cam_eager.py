"""The engine run eagerly (the viewer's first images, before the compiled function is traced)
gives what the compiled function gives, for every method, the closed-form head and the
Jacobian, on models built here and on the demo model."""

import threading

import numpy as np
import pytest

import models_zoo as zoo
from gradcam_viewer.cam import Explainer
from gradcam_viewer.cam.methods import METHODS

RTOL = 1e-4  # max |eager - compiled| / max |compiled|


def _close(eager, compiled, what):
    scale = max(float(np.abs(compiled).max()), 1e-12)
    worst = float(np.abs(eager - compiled).max()) / scale
    assert worst <= RTOL, f"{what}: eager differs from compiled by {worst:.2e} of the maximum"


def _agree(explainer, x, method):
    compiled = explainer.explain(x, method=method)
    eager = explainer.explain(x, method=method, eager=True)
    _close(eager.probabilities, compiled.probabilities, f"{method} probabilities")
    _close(eager.heatmaps, compiled.heatmaps, f"{method} heatmaps")
    _close(eager.features, compiled.features, f"{method} features")
    assert eager.heatmaps.max() > 0  # something to compare, not two empty maps


def _batch(model, n=2, seed=0):
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).random((n,) + shape).astype(np.float32)


@pytest.fixture(scope="module")
def nested():
    model, _ = zoo.nested_transfer()
    return model


@pytest.mark.parametrize("closed_form", [True, False], ids=["closed_form", "jacobian"])
@pytest.mark.parametrize("method", list(METHODS))
def test_eager_equals_compiled_on_a_small_model(nested, method, closed_form):
    explainer = Explainer(nested, method=method, closed_form=closed_form)
    assert explainer.closed_form == closed_form
    _agree(explainer, _batch(nested, seed=3), method)


@pytest.mark.parametrize("method", list(METHODS))
def test_eager_equals_compiled_with_a_flatten_head(method):
    model = zoo.small_cnn_flatten()  # no closed form: always the Jacobian
    explainer = Explainer(model, layer="pool")
    assert not explainer.closed_form
    _agree(explainer, _batch(model, seed=4), method)


@pytest.fixture(scope="module")
def demo():
    from gradcam_viewer.imaging import load_image
    from gradcam_viewer.models import load_model_bundle
    from gradcam_viewer.resources import samples_dir

    bundle = load_model_bundle()
    images = [bundle.prepare(load_image(p)) for p in sorted(samples_dir().glob("*.dcm"))[:2]]
    return bundle, np.concatenate(images)


@pytest.mark.parametrize("closed_form", [True, False], ids=["closed_form", "jacobian"])
@pytest.mark.parametrize("method", list(METHODS))
def test_eager_equals_compiled_on_the_demo_model(demo, method, closed_form):
    bundle, x = demo
    explainer = Explainer(bundle.model, layer=bundle.target_layer, output=bundle.output,
                          closed_form=closed_form)
    _agree(explainer, x, method)


def test_eager_runs_do_not_trace_and_trace_makes_explain_compiled(nested):
    explainer = Explainer(nested)
    x = _batch(nested, n=1)
    explainer.explain(x, eager=True)
    assert not explainer.is_traced("gradcam") and explainer.runs == {"eager": 1}
    assert "gradcam" not in explainer._fns  # no tf.function was even made
    explainer.trace("gradcam")
    assert explainer.is_traced("gradcam") and not explainer.is_traced("layercam")
    fn = explainer._fns["gradcam"]
    explainer.explain(x)
    assert fn.experimental_get_tracing_count() == 1  # explain reused the trace
    assert explainer.runs == {"eager": 1, "compiled": 1}


def test_tracing_on_another_thread_while_explaining_eagerly(demo):
    """The worker's situation: a background trace while requests are explained eagerly."""
    bundle, x = demo
    explainer = Explainer(bundle.model, layer=bundle.target_layer, output=bundle.output)
    reference = Explainer(bundle.model, layer=bundle.target_layer,
                          output=bundle.output).explain(x, method="layercam")
    tracer = threading.Thread(target=explainer.trace, args=("layercam",))
    tracer.start()
    eager = [explainer.explain(x, method="layercam", eager=True) for _ in range(3)]
    tracer.join()
    assert explainer.is_traced("layercam")
    for e in eager + [explainer.explain(x, method="layercam")]:
        _close(e.heatmaps, reference.heatmaps, "heatmaps")
        _close(e.probabilities, reference.probabilities, "probabilities")

"""The keras.applications zoo, built with weights=None at small inputs, each used
flat (the base's graph continued by GAP + Dense) and nested (the base as one layer of an outer
model with GAP + Dense(relu) + Dropout + linear Dense and list-structured inputs/outputs).
Both are saved, reopened through our loader, and checked against the in-memory model's own
output (1e-5) and, for every label, the single-label GradientTape reference at the same layer.
The flat model exercises the closed-form head, the nested one the Jacobian."""

import time

import keras
import numpy as np
import pytest

import models_zoo as zoo
from gradcam_viewer.cam import Explainer
from gradcam_viewer.models.loaders import load_keras_model
from tape_reference import assert_maps_close, flat_output, model_input, tape_gradcams

# each family's own preprocess_input (identity for those that rescale inside the model)
PREPROCESS = {
    "DenseNet121": "densenet", "ResNet50": "resnet50", "ResNet50V2": "resnet_v2",
    "MobileNetV2": "mobilenet_v2", "MobileNetV3Small": "mobilenet_v3",
    "EfficientNetB0": "efficientnet", "EfficientNetV2B0": "efficientnet_v2",
    "InceptionV3": "inception_v3", "Xception": "xception", "VGG16": "vgg16",
    "ConvNeXtTiny": "convnext",
}
TIMES: dict[str, float] = {}
ERRORS: dict[str, float] = {}


def _images(family: str, size: int, n: int = 2) -> np.ndarray:
    pixels = np.random.default_rng(sum(map(ord, family))).random((n, size, size, 3)) * 255
    module = getattr(keras.applications, PREPROCESS[family])
    return np.asarray(module.preprocess_input(pixels.astype(np.float32)), np.float32)


def _check(model, reloaded, x, what):
    exp = Explainer(reloaded)
    result = exp.explain(x)
    own = flat_output(model(model_input(model, x), training=False)).numpy()
    assert result.probabilities.shape == own.shape == (len(x), zoo.ZOO_LABELS), what
    np.testing.assert_allclose(result.probabilities, own, rtol=1e-5, atol=1e-5, err_msg=what)
    worst = 0.0
    refs = tape_gradcams(reloaded, exp.layer_name, x, range(zoo.ZOO_LABELS))
    for label, ref in refs.items():
        worst = max(worst, assert_maps_close(result.heatmaps[:, label], ref,
                                             what=f"{what} {exp.layer_name} label {label}"))
    return exp, worst


def _with_evidence(model):
    """Non-negative head kernels: every channel weight alpha_k >= 0, so each label's map is
    positive wherever the features are (random signs can leave a label with no positive pixel,
    and zeros compared with zeros prove nothing). Mixed signs: test_model_structures.py."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            layer.set_weights([np.abs(kernel), bias])
    return model


@pytest.fixture(scope="session", autouse=True)
def _report_zoo_times():
    yield
    if TIMES:
        print("\nzoo: " + ", ".join(f"{k} {v:.1f}s (max err {ERRORS[k]:.1e})"
                                    for k, v in TIMES.items())
              + f"; total {sum(TIMES.values()):.0f}s")


@pytest.mark.slow
@pytest.mark.parametrize("family", list(zoo.APPLICATIONS))
def test_zoo_family(family, tmp_path):
    started = time.perf_counter()
    keras.utils.set_random_seed(7)
    size = zoo.APPLICATIONS[family]
    base = zoo.application_base(family)
    flat = _with_evidence(zoo.application_flat(base))
    nested = _with_evidence(zoo.application_nested(base))
    x = _images(family, size)
    flat.save(tmp_path / "flat.keras")
    nested.save(tmp_path / "nested.keras")
    flat_exp, err_flat = _check(flat, load_keras_model(tmp_path / "flat.keras").model, x,
                                f"{family} flat")
    nested_exp, err_nested = _check(nested, load_keras_model(tmp_path / "nested.keras").model,
                                    x, f"{family} nested")
    assert flat_exp.closed_form and not nested_exp.closed_form
    assert nested_exp.layer_name == f"{base.name}/{flat_exp.layer_name}"  # same layer
    TIMES[family] = time.perf_counter() - started
    ERRORS[family] = max(err_flat, err_nested)

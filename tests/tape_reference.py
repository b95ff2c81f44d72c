"""An independent single-label Grad-CAM reference for any model structure, and an honest
comparison of maps.

The reference never uses the engine's graph walk: the model is called the ordinary way,
`model(x, training=False)`, with the target layer's `call` wrapped (on the instance, undone
afterwards) so that one `GradientTape` per label can watch its output. The layer is found with
`get_layer` through the nesting ("outer/inner" names), and the map is the Keras Grad-CAM
example's formula: ReLU(sum_k mean_ij(dscore/dA_k) * A_k).
"""

from __future__ import annotations

from contextlib import contextmanager

import keras
import numpy as np
import tensorflow as tf

# Measured max|diff| / max(reference) between the engine and this float32 reference: <= 4.2e-6
# over the zoo with non-negative head weights, up to 5.6e-5 with random-sign weights (ResNet50:
# terms of both signs cancel, so float32 rounding of the large terms shows against a small
# peak). 1e-4 holds with little headroom, and a wrong layer, label, output or scale errs by
# 1e-2 to 1 (seen: swapped labels 0.089, a wrong pooling divisor 0.2).
MAP_TOL = 1e-4


def layer_at(model, full_name: str):
    """'outer/inner/leaf' -> the leaf layer, by keras' own get_layer at each level."""
    layer = model
    for part in full_name.split("/"):
        layer = layer.get_layer(part)
    return layer


@contextmanager
def watched(layer, tape_box: dict):
    """While active, every call of `layer` records its output and lets the tape watch it."""
    original = layer.call

    def call(*args, **kwargs):
        y = original(*args, **kwargs)
        tape_box["tape"].watch(y)
        tape_box["acts"] = y
        return y

    layer.call = call
    try:
        yield
    finally:
        del layer.call  # back to the class's method


def model_input(model, x):
    """`x` in the structure the model was built with (a list, tuple or dict of one input, or
    the bare tensor): calling it otherwise makes Keras warn that the structures differ."""
    if isinstance(model, keras.Sequential):  # one bare input by construction (no `input`)
        return x
    return keras.tree.pack_sequence_as(model.input, [x])


def flat_output(outputs, index: int = 0):
    return tf.nest.flatten(outputs)[index]


def tape_gradcams(model, layer_name: str, x: np.ndarray, labels, output_index: int = 0,
                  score_fn=None) -> dict[int, np.ndarray]:
    """{label: [N, h, w] Grad-CAM}: one forward pass, then one `tape.gradient` of each label's
    score alone; `score_fn(output) -> logits` (default: the output is the logit)."""
    box: dict = {}
    layer = layer_at(model, layer_name)
    with watched(layer, box), tf.GradientTape(persistent=True) as tape:
        box["tape"] = tape
        out = flat_output(model(model_input(model, tf.constant(x)), training=False),
                          output_index)
        logits = score_fn(out) if score_fn else out
        scores = {label: logits[:, label] for label in labels}
    acts = box["acts"].numpy().astype(np.float64)
    maps = {}
    for label, score in scores.items():
        grads = tape.gradient(score, box["acts"])
        assert grads is not None, f"the score does not depend on {layer_name}"
        weights = grads.numpy().astype(np.float64).mean(axis=(1, 2))  # [N, C]
        maps[label] = np.maximum(np.einsum("nhwc,nc->nhw", acts, weights), 0)
    del tape
    return maps


def tape_gradcam(model, layer_name: str, x: np.ndarray, label: int, output_index: int = 0,
                 score_fn=None) -> np.ndarray:
    """[N, h, w] Grad-CAM of one label."""
    return tape_gradcams(model, layer_name, x, [label], output_index, score_fn)[label]


def map_errors(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per map (last two axes): max|ours - ref| / max(ref), inf where ref has no positive pixel."""
    diff = np.abs(np.asarray(ours, np.float64) - ref).max(axis=(-2, -1))
    peak = ref.max(axis=(-2, -1))
    return np.where(peak > 0, diff / np.where(peak > 0, peak, 1.0), np.inf)


def assert_maps_close(ours, ref, tol: float = MAP_TOL, what: str = "") -> float:
    """Maps (stacked on leading axes) against the reference. Each map with positive evidence:
    max|diff| / max(its reference) <= tol. A map whose reference is all zeros (no positive
    evidence, a legitimate Grad-CAM outcome) must be zero within tol of the stack's peak. The
    stack must hold at least one map with evidence, so zeros never only meet zeros. Returns the
    worst per-map error."""
    ref = np.asarray(ref, np.float64)
    ours = np.asarray(ours, np.float64)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != reference {ref.shape}"
    peaks = ref.max(axis=(-2, -1))
    assert (peaks > 0).any(), f"{what}: no reference map has a positive pixel; compare another"
    errors = map_errors(ours, ref)
    worst = float(errors[peaks > 0].max())
    assert worst <= tol, f"{what}: max|diff| / max(reference) = {worst:.3g} > {tol:g}"
    silent = np.abs(ours - ref)[peaks <= 0]
    if silent.size:
        leak = float(silent.max() / peaks.max())
        assert leak <= tol, (f"{what}: a map with no reference evidence differs by "
                             f"{leak:.3g} of the stack's peak > {tol:g}")
    return worst

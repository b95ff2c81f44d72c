"""The engine against independent references: the Keras example's single-label
GradientTape formula, tf-keras-vis, pytorch-grad-cam's formulas re-written in numpy, and the
classic CAM of a pooling + dense head."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import models_zoo as zoo
from gradcam_viewer.cam import CamError, Explainer, normalize_heatmaps
from tape_reference import assert_maps_close


def _batch(model, n=2, seed=0):
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).random((n,) + shape).astype(np.float32)


def _logit_model(model, layer_name):
    """The Keras example's grad_model: final activation removed (on a copy), two outputs."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    last = clone.layers[-1]
    if isinstance(last, keras.layers.Activation):
        logits = last.input
    else:
        last.activation = None
        logits = clone.outputs[0]
    # One input tensor, not the list `clone.inputs`: the model is called with a bare batch.
    return keras.Model(clone.inputs[0], [clone.get_layer(layer_name).output, logits])


def tape_grads(grad_model, x, label):
    """A [N, h, w, C] and d logit_label / dA, one GradientTape per label."""
    with tf.GradientTape() as tape:
        acts, logits = grad_model(x)
        score = logits[:, label]
    grads = tape.gradient(score, acts)
    return acts.numpy(), grads.numpy()


def keras_example_heatmap(acts, grads):
    """`make_gradcam_heatmap` from the Keras Grad-CAM example, one image, before dividing."""
    pooled = grads.mean(axis=(0, 1))
    return np.maximum(acts @ pooled, 0)


FLAT_CASES = [
    ("small_flatten", zoo.small_cnn_flatten, "pool"),
    ("small_gap", zoo.small_cnn_gap, "conv2"),
    ("sequential_softmax", zoo.small_sequential_softmax, "conv2"),
]


@pytest.fixture(scope="module")
def densenet():
    return zoo.densenet_chexnet(96)


@pytest.mark.parametrize("name,build,layer", FLAT_CASES, ids=[c[0] for c in FLAT_CASES])
def test_every_label_equals_single_label_tape(name, build, layer):
    # The same weights whatever ran before: over 15 random draws the worst map error of these
    # float32 models spread from 1e-6 to 1.3e-4 (a map with a tiny peak magnifies round-off).
    keras.utils.set_random_seed(0)
    model = build()
    x = _batch(model)
    exp = Explainer(model)
    assert exp.layer_name == layer  # the last 4-D layer with h, w > 1
    result = exp.explain(x)
    assert result.score == "logit"
    np.testing.assert_allclose(result.probabilities, model.predict(x, verbose=0), rtol=1e-5)
    grad_model = _logit_model(model, layer)
    ref = np.zeros(result.heatmaps.shape)
    for label in range(result.probabilities.shape[1]):
        acts, grads = tape_grads(grad_model, x, label)
        ref[:, label] = [keras_example_heatmap(acts[n], grads[n]) for n in range(len(x))]
    assert_maps_close(result.heatmaps, ref, what=name)


def test_densenet_course_layer_matches_tape(densenet):
    x = _batch(densenet, n=1)
    exp = Explainer(densenet, layer="conv5_block16_concat")
    assert not exp.closed_form  # BN + ReLU sit between the layer and the pooling
    result = exp.explain(x)
    grad_model = _logit_model(densenet, "conv5_block16_concat")
    ref = [keras_example_heatmap(*(a[0] for a in tape_grads(grad_model, x, label)))
           for label in range(14)]
    assert_maps_close(result.heatmaps[0], np.stack(ref), what="conv5_block16_concat")


def test_densenet_default_layer_uses_closed_form_and_matches_tape(densenet):
    x = _batch(densenet, n=1, seed=3)
    exp = Explainer(densenet)
    assert exp.layer_name == "relu" and exp.closed_form
    result = exp.explain(x)
    grad_model = _logit_model(densenet, "relu")
    ref = [keras_example_heatmap(*(a[0] for a in tape_grads(grad_model, x, label)))
           for label in range(14)]
    assert_maps_close(result.heatmaps[0], np.stack(ref), what="relu")


def _nested_reference(model, base, inner, x, label):
    """Split by hand: features from the base's own graph, then the outer head in the tape."""
    feat = keras.Model(base.inputs[0], [base.get_layer(inner).output, base.outputs[0]])
    dense = model.get_layer("scores")
    with tf.GradientTape() as tape:
        acts, base_out = feat(x)
        tape.watch(acts)
        if inner == base.layers[-1].name:
            base_out = acts
        else:  # re-run the rest of the base from the tapped activations
            y = acts
            after = False
            for layer in base.layers:
                if after:
                    y = layer(y)
                after = after or layer.name == inner
            base_out = y
        pooled = tf.reduce_mean(base_out, axis=(1, 2))
        score = (pooled @ dense.kernel + dense.bias)[:, label]
    return acts.numpy(), tape.gradient(score, acts).numpy()


@pytest.mark.parametrize("inner", ["b_conv2", "b_conv1"])
def test_nested_model_without_graph_disconnected(inner):
    model, base = zoo.nested_transfer()
    x = _batch(model)
    layer = None if inner == "b_conv2" else f"base/{inner}"
    exp = Explainer(model, layer=layer)
    assert exp.layer_name == f"base/{inner}"
    result = exp.explain(x)
    np.testing.assert_allclose(result.probabilities, model.predict(x, verbose=0), rtol=1e-5)
    refs = []
    for label in range(3):
        acts, grads = _nested_reference(model, base, inner, x, label)
        refs.append(np.stack([keras_example_heatmap(acts[n], grads[n]) for n in range(len(x))]))
    # all labels as one stack: with random weights one label may have no positive pixel
    assert_maps_close(result.heatmaps[:, :3], np.stack(refs, axis=1), what=inner)


def test_nested_densenet_by_full_name():
    model = zoo.densenet_chexnet(64, nested=True)
    exp = Explainer(model, layer="densenet121/conv5_block16_concat")
    assert exp.layer_name == "densenet121/conv5_block16_concat"
    x = _batch(model, n=1)
    result = exp.explain(x)
    assert result.heatmaps.shape == (1, 14, 2, 2)
    np.testing.assert_allclose(result.probabilities, model.predict(x, verbose=0), rtol=1e-5)
    # bare inner names are found too
    assert Explainer(model, layer="conv5_block16_concat").layer_name == exp.layer_name


@pytest.mark.parametrize("build", [zoo.small_cnn_flatten, zoo.small_cnn_gap])
def test_gradcam_equals_tf_keras_vis(build):
    """tf-keras-vis snaps `penultimate_layer` to a convolution, so compare at one."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    model, layer = build(), "conv2"
    x = _batch(model, n=1, seed=7)
    ours, _ = normalize_heatmaps(Explainer(model, layer=layer).explain(x).heatmaps)
    vis = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
    for label in range(3):
        cam = np.asarray(vis(CategoricalScore([label]), x, penultimate_layer=layer,
                             normalize_cam=False, expand_cam=False))
        theirs, _ = normalize_heatmaps(cam)
        np.testing.assert_allclose(ours[0, label], theirs[0], atol=1e-4)


def test_gradcam_equals_tf_keras_vis_on_densenet(densenet):
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    layer = "conv5_block16_2_conv"
    x = _batch(densenet, n=1, seed=11)
    ours, _ = normalize_heatmaps(Explainer(densenet, layer=layer).explain(x).heatmaps)
    vis = Gradcam(densenet, model_modifier=ReplaceToLinear(), clone=True)
    cam = np.asarray(vis(CategoricalScore(list(range(14))), np.repeat(x, 14, axis=0),
                         penultimate_layer=layer, normalize_cam=False,
                         expand_cam=False))
    theirs, _ = normalize_heatmaps(cam)
    np.testing.assert_allclose(ours[0], theirs, atol=1e-4)


# --- the other methods, against pytorch-grad-cam's formulas written in numpy ---------------

def pgc_gradcampp(acts, grads):
    """pytorch-grad-cam GradCAMPlusPlus.get_cam_weights, on [N, C, h, w] arrays."""
    grads_power_2 = grads ** 2
    grads_power_3 = grads_power_2 * grads
    sum_activations = np.sum(acts, axis=(2, 3))
    eps = 0.000001
    aij = grads_power_2 / (2 * grads_power_2 + sum_activations[:, :, None, None] * grads_power_3
                           + eps)
    aij = np.where(grads != 0, aij, 0)
    weights = np.maximum(grads, 0) * aij
    weights = np.sum(weights, axis=(2, 3))
    return np.maximum((weights[:, :, None, None] * acts).sum(axis=1), 0)


def pgc_hirescam(acts, grads):
    return np.maximum((grads * acts).sum(axis=1), 0)


def pgc_layercam(acts, grads):
    return np.maximum((np.maximum(grads, 0) * acts).sum(axis=1), 0)


REFERENCES = {"gradcam++": pgc_gradcampp, "hirescam": pgc_hirescam, "layercam": pgc_layercam}


@pytest.mark.parametrize("method", sorted(REFERENCES))
@pytest.mark.parametrize("build", [zoo.small_cnn_flatten, zoo.small_cnn_gap])
def test_methods_equal_pytorch_grad_cam_formulas(method, build):
    keras.utils.set_random_seed(11)  # the same weights whatever ran before
    model = build()
    x = _batch(model, seed=5)
    result = Explainer(model, layer="conv2", method=method).explain(x)
    assert result.method == method
    grad_model = _logit_model(model, "conv2")

    def nchw(a):
        return np.transpose(a, (0, 3, 1, 2)).astype(np.float64)

    refs = []
    for label in range(3):
        acts, grads = tape_grads(grad_model, x, label)
        refs.append(REFERENCES[method](nchw(acts), nchw(grads)))
    # all labels at once: a label whose maps have no positive pixel must come out zero, and
    # the stack as a whole must hold evidence
    assert_maps_close(result.heatmaps[:, :3], np.stack(refs, axis=1), what=method)


def test_methods_share_one_explainer():
    model = zoo.small_cnn_flatten()
    exp = Explainer(model)
    x = _batch(model)
    maps = {m: exp.explain(x, method=m).heatmaps for m in ("gradcam", "hirescam", "layercam")}
    assert not np.allclose(maps["gradcam"], maps["hirescam"])
    assert not np.allclose(maps["hirescam"], maps["layercam"])


def test_pooling_head_gradcam_is_proportional_to_classic_cam():
    model = zoo.small_cnn_gap()
    x = _batch(model, seed=2)
    result = Explainer(model).explain(x)
    kernel = model.get_layer("scores").kernel.numpy()  # [C, L]
    acts = keras.Model(model.inputs, model.get_layer("conv2").output).predict(x, verbose=0)
    cam = np.maximum(np.einsum("nhwc,cl->nlhw", acts, kernel), 0)
    hw = acts.shape[1] * acts.shape[2]
    assert_maps_close(result.heatmaps, cam / hw)
    ours, _ = normalize_heatmaps(result.heatmaps)
    theirs, _ = normalize_heatmaps(cam)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "hirescam", "layercam"])
def test_closed_form_equals_jacobian(method):
    model, _ = zoo.nested_transfer()
    x = _batch(model, seed=9)
    closed = Explainer(model, method=method)
    jac = Explainer(model, method=method, closed_form=False)
    assert closed.closed_form and not jac.closed_form
    assert_maps_close(closed.explain(x).heatmaps, jac.explain(x).heatmaps)


# --- the score, the target layer and clear errors ----------------------------------------

def test_linear_output_falls_back_to_output_score():
    model = zoo.small_cnn_gap(activation="linear")
    assert Explainer(model).explain(_batch(model)).score == "output"


def test_relu_output_is_not_peeled():
    model = zoo.small_cnn_gap(activation="relu")
    assert Explainer(model).score == "output"


def _expect_error(model, fragment, **kwargs):
    with pytest.raises(CamError) as info:
        Explainer(model, **kwargs)
    assert fragment in str(info.value)


def test_clear_errors():
    inp = keras.Input((8, 8, 1))
    tiny = keras.layers.Conv2D(4, 8)(inp)  # 1x1 output: no spatial map
    flat = keras.layers.Flatten()(tiny)
    _expect_error(keras.Model(inp, keras.layers.Dense(2)(flat)), "no layer with a 4-D output")

    vec = keras.Input((10,))
    _expect_error(keras.Model(vec, keras.layers.Dense(2)(vec)), "image input")

    img = keras.Input((16, 16, 1))
    c = keras.layers.Conv2D(4, 3)(img)
    g = keras.layers.GlobalAveragePooling2D()(c)
    two = keras.Model(img, [keras.layers.Dense(2)(g), keras.layers.Dense(3)(g)])
    _expect_error(two, "2 outputs")

    model = zoo.small_cnn_gap()
    _expect_error(model, "no layer named", layer="nope")
    _expect_error(model, "4-D feature map", layer="gap")
    _expect_error(model, "Unknown CAM method", method="magic")

    class Sub(keras.Model):
        def call(self, x):
            return x

    _expect_error(Sub(), "")


def test_no_positive_evidence_is_reported_not_nan():
    raw = np.zeros((1, 2, 4, 4), np.float32)
    raw[0, 1, 2, 2] = 3.0
    maps, has = normalize_heatmaps(raw)
    assert not np.isnan(maps).any()
    assert has.tolist() == [[False, True]]
    assert maps[0, 1].max() == 1.0 and maps[0, 0].max() == 0.0


def test_upsampling_equals_tf_image_resize():
    from gradcam_viewer.cam import upsample_heatmap

    rng = np.random.default_rng(0)
    for src, dst in [((7, 7), (224, 224)), ((10, 10), (1024, 1024)), ((5, 9), (301, 250)),
                     ((10, 10), (7, 13))]:
        a = rng.random(src).astype(np.float32)
        ref = tf.image.resize(a[..., None], dst, method="bilinear").numpy()[..., 0]
        np.testing.assert_allclose(upsample_heatmap(a, dst), ref, atol=1e-5)

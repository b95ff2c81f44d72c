"""Every model structure users bring: list/dict inputs and outputs, bases nested at
any depth, preprocessing layers inside, Dropout/BatchNormalization in inference mode, a free
input size and a chosen output among several. Each against the model's own output and the
single-label GradientTape reference of tape_reference.py."""

import json

import keras
import numpy as np
import pytest

import models_zoo as zoo
from gradcam_viewer.cam import CamError, Explainer
from gradcam_viewer.models import ModelLoadError, load_model_bundle
from tape_reference import assert_maps_close, flat_output, model_input, tape_gradcam

L = 3


def _conv_base(name: str, size=32, channels=3) -> keras.Model:
    inp = keras.Input((size, size, channels))
    x = keras.layers.Conv2D(6, 3, activation="relu", name=f"{name}_c1")(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name=f"{name}_c2")(x)
    return keras.Model(inp, x, name=name)


def _head(x, dropout=0.3):
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(12, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    return keras.layers.Dense(L, name="scores")(x)


def list_io():
    inp = keras.Input((32, 32, 3))
    return keras.Model([inp], [_head(_conv_base("base")(inp))])


def dict_io():
    inp = keras.Input((32, 32, 3), name="image")
    return keras.Model({"image": inp}, {"findings": _head(_conv_base("base")(inp))})


def tuple_io():
    inp = keras.Input((32, 32, 3))
    return keras.Model((inp,), (_head(_conv_base("base")(inp)),))


def sequential_in_functional():
    seq = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(6, 3, name="s_c1"),
                            keras.layers.BatchNormalization(name="s_bn"),
                            keras.layers.ReLU(name="s_relu")], name="seqbase")
    inp = keras.Input((32, 32, 3))
    return keras.Model(inp, _head(seq(inp)))


def functional_in_sequential():
    return keras.Sequential([keras.Input((32, 32, 3)), _conv_base("base"),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(L, name="scores")])


def three_deep():
    """functional in functional in functional, with a Sequential in the middle one too."""
    inner = _conv_base("inner")
    i2 = keras.Input((32, 32, 3))
    post = keras.Sequential([keras.Input((14, 14, 8)), keras.layers.BatchNormalization(),
                             keras.layers.Conv2D(8, 3, padding="same", name="m_conv")],
                            name="post")
    middle = keras.Model(i2, post(inner(i2)), name="middle")
    inp = keras.Input((32, 32, 3))
    return keras.Model([inp], [_head(middle(inp))])


def preprocessing_inside():
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(inp)
    norm = keras.layers.Normalization(axis=-1, name="norm")
    norm.adapt(np.random.default_rng(0).normal(0.2, 0.5, (8, 32, 32, 3)).astype(np.float32))
    x = norm(x)
    return keras.Model(inp, _head(_conv_base("base")(x)))


STRUCTURES = {
    "list_io": (list_io, "base/base_c2"),
    "dict_io": (dict_io, "base/base_c2"),
    "tuple_io": (tuple_io, "base/base_c2"),
    "sequential_in_functional": (sequential_in_functional, "seqbase/s_relu"),
    "functional_in_sequential": (functional_in_sequential, "base/base_c2"),
    "three_deep": (three_deep, "middle/post/m_conv"),
    "preprocessing_inside": (preprocessing_inside, "base/base_c2"),
}


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(10)  # the same random weights on every run


def _batch(shape, n=2, seed=0, scale=1.0):
    return (np.random.default_rng(seed).random((n,) + tuple(shape)) * scale).astype(np.float32)


def _check_against_reference(model, exp, x, output_index=0):
    result = exp.explain(x)
    own = flat_output(model(model_input(model, x), training=False), output_index).numpy()
    assert result.probabilities.shape == own.shape == (len(x), own.shape[-1])
    np.testing.assert_allclose(result.probabilities, own, rtol=1e-5, atol=1e-6)
    refs = [tape_gradcam(model, exp.layer_name, x, label, output_index)
            for label in range(own.shape[-1])]
    assert_maps_close(result.heatmaps, np.stack(refs, axis=1), what=exp.layer_name)
    return result


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_structure_matches_model_and_tape(name):
    build, layer = STRUCTURES[name]
    model = build()
    exp = Explainer(model)
    assert exp.layer_name == layer  # the last 4-D map, found through the nesting
    _check_against_reference(model, exp, _batch((32, 32, 3), scale=255.0 if "pre" in name else 1))


def test_inner_layer_of_a_three_deep_model():
    model = three_deep()
    exp = Explainer(model, layer="middle/inner/inner_c1")
    assert not exp.closed_form
    _check_against_reference(model, exp, _batch((32, 32, 3), seed=4))


def test_list_model_saved_and_reloaded(tmp_path):
    """The issue's reproduction: keras.Model([inp], [out]) gave probabilities (1, N, L)."""
    model = list_io()
    model.save(tmp_path / "list.keras")
    bundle = load_model_bundle(tmp_path / "list.keras")
    x = _batch((32, 32, 3), seed=2)
    result = Explainer(bundle.model).explain(x)
    assert result.probabilities.shape == (2, L)
    np.testing.assert_allclose(result.probabilities, flat_output(model(model_input(model, x))).numpy(),
                               rtol=1e-5)


def test_explain_cli_on_list_structured_model(tmp_path, capsys):
    """Was: TypeError: only 0-dimensional arrays can be converted to Python scalars."""
    from PIL import Image

    from gradcam_viewer.cli import main

    model = list_io()
    model.save(tmp_path / "list.keras")
    img = tmp_path / "img.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40)) * 255).astype(np.uint8)).save(img)
    code = main(["explain", str(img), "--model", str(tmp_path / "list.keras"), "--out",
                 str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "out" / "img.json").read_text())
    values = next(v for k, v in record.items() if k in ("probabilities", "scores"))
    assert len(values) == L and all(isinstance(v, float) for v in values.values())


def test_dropout_and_batchnorm_run_in_inference_mode():
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(6, 3, name="conv")(inp)
    bn = keras.layers.BatchNormalization(name="bn")
    x = keras.layers.ReLU(name="relu")(bn(x))
    x = keras.layers.SpatialDropout2D(0.5)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.5)(keras.layers.Dense(16, activation="relu")(x))
    model = keras.Model(inp, keras.layers.Dense(L)(x))
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([gamma * 1.5, beta + 0.2, mean + 0.3, var * 4.0])  # far from batch stats
    x = _batch((16, 16, 3), n=4, seed=1)
    exp = Explainer(model)
    result = _check_against_reference(model, exp, x)
    trained = model(x, training=True).numpy()
    assert not np.allclose(result.probabilities, trained, rtol=1e-3)  # the check can fail


def test_variable_input_size_takes_size_from_manifest(tmp_path):
    inp = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="c2")(x)
    dense = keras.layers.Dense(L)
    model = keras.Model(inp, dense(keras.layers.GlobalAveragePooling2D()(x)))
    kernel, bias = dense.get_weights()
    dense.set_weights([np.abs(kernel), bias])  # positive weights: every map has evidence
    path = tmp_path / "free.keras"
    model.save(path)
    zoo.write_beside(path, zoo.manifest_for(
        path, ["a", "b", "c"], name="free", output_activation="linear",
        input={"height": 48, "width": 40, "channels": 1}))
    bundle = load_model_bundle(path)
    batch = bundle.prepare((np.random.default_rng(3).random((100, 90)) * 255).astype(np.uint8))
    assert batch.shape == (1, 48, 40, 1)
    exp = Explainer(bundle.model, layer=bundle.target_layer)
    result = _check_against_reference(bundle.model, exp, batch)
    assert result.heatmaps.shape == (1, L, 22, 18)
    other = exp.explain(_batch((64, 64, 1), n=1))  # the same explainer serves any size
    assert other.heatmaps.shape == (1, L, 30, 30)
    path.with_suffix(".json").unlink()
    assert any("any image size" in n for n in load_model_bundle(path).notices)


def _two_outputs():
    inp = keras.Input((32, 32, 3))
    feats = _conv_base("base")(inp)
    pooled = keras.layers.GlobalAveragePooling2D()(feats)
    findings = keras.layers.Dense(L, activation="sigmoid", name="findings")(pooled)
    age = keras.layers.Dense(1, name="age")(keras.layers.Flatten()(feats))
    return keras.Model(inp, [age, findings])


def test_several_outputs_one_chosen_by_name():
    model = _two_outputs()
    x = _batch((32, 32, 3), seed=6)
    with pytest.raises(CamError, match=r"2 outputs \(age, findings\).*\"output\""):
        Explainer(model)
    with pytest.raises(CamError, match="no output named 'nope'; its outputs are: age, findings"):
        Explainer(model, output="nope")
    exp = Explainer(model, output="findings")
    assert exp.score == "logit"  # the sigmoid of the chosen output is peeled
    result = exp.explain(x)
    np.testing.assert_allclose(result.probabilities, model(x)[1].numpy(), rtol=1e-5)
    refs = [tape_gradcam(model, "base/base_c2", x, label, output_index=1, score_fn=_logit)
            for label in range(L)]
    assert_maps_close(result.heatmaps, np.stack(refs, axis=1), what="findings")


def _logit(prob):
    """The sigmoid's inverse: the tape differentiates the logit through it."""
    return keras.ops.log(prob) - keras.ops.log1p(-prob)


def test_bundle_reads_the_output_from_the_manifest(tmp_path):
    model = _two_outputs()
    path = tmp_path / "two.keras"
    model.save(path)
    with pytest.raises(ModelLoadError, match="2 outputs"):
        load_model_bundle(path)  # no manifest: nothing says which output
    manifest = zoo.write_beside(path, zoo.manifest_for(path, ["a", "b", "c"], name="two",
                                                       output="findings"))
    bundle = load_model_bundle(path)
    assert bundle.output == "findings" and bundle.labels == ["a", "b", "c"]
    x = _batch((32, 32, 3), n=1)
    result = Explainer(bundle.model, output=bundle.output).explain(x)
    np.testing.assert_allclose(result.probabilities, model(x)[1].numpy(), rtol=1e-5)
    manifest["output"] = "age"
    path.with_suffix(".json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="lists 3 labels but the model has 1 outputs"):
        load_model_bundle(path)

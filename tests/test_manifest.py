"""Manifests: the preprocessing presets against keras.applications' own preprocess_input (the
oracle), output semantics (never a logit called a probability), the JSON Schema with messages
that name the field, and the suggestions for a model that has none."""

import copy
import importlib
import json

import keras
import numpy as np
import pytest

import models_zoo as zoo
from gradcam_viewer.models import ModelLoadError, load_model_bundle
from gradcam_viewer.models.manifest import SCHEMA_PATH, manifest_problems, validate_manifest
from gradcam_viewer.models.outputs import resolve_output, to_values
from gradcam_viewer.models.preprocessing import prepare_pixels
from gradcam_viewer.models.suggest import (
    FAMILIES,
    family_of,
    final_activation,
    suggest,
    suggest_output,
    suggest_preset,
)
from gradcam_viewer.resources import demo_model_path, samples_dir

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (24, 20, 3), dtype=np.uint8)


def _grey_sample() -> np.ndarray:
    from PIL import Image

    with Image.open(samples_dir() / "phantom_03_nodule.png") as im:
        return np.asarray(im.convert("L").resize((40, 36)))


# --- presets against the oracle ------------------------------------------------------------

@pytest.mark.parametrize("module,preset", sorted({(m, p) for _, m, p in FAMILIES}))
def test_preset_equals_keras_preprocess_input(module, preset):
    oracle = importlib.import_module(f"keras.applications.{module}").preprocess_input
    grey = _grey_sample()
    for pixels, rgb in ((RGB, RGB), (grey, np.repeat(grey[..., None], 3, axis=-1))):
        h, w = pixels.shape[:2]
        ours = prepare_pixels(pixels, {"kind": preset}, h, w, 3)
        expected = np.asarray(oracle(rgb.astype(np.float32)[None].copy()))
        np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-5)


def test_imagenet_is_the_torch_preset():
    a = prepare_pixels(RGB, {"kind": "imagenet"}, 24, 20, 3)
    np.testing.assert_array_equal(a, prepare_pixels(RGB, {"kind": "torch"}, 24, 20, 3))


def test_fixed_per_channel_and_grey_colour():
    spec = {"kind": "fixed", "mean": [10.0, 20.0, 30.0], "std": [2.0, 4.0, 5.0]}
    out = prepare_pixels(RGB, spec, 24, 20, 3)[0]
    np.testing.assert_allclose(out[..., 2], (RGB[..., 2] - 30.0) / 5.0, rtol=1e-6)
    grey = prepare_pixels(RGB, {"kind": "none"}, 24, 20, 3, colour="grey")[0]
    luma = RGB @ np.array([0.299, 0.587, 0.114])  # ITU-R 601, Pillow's "L"
    assert np.abs(grey[..., 0] - luma).max() <= 1.0
    assert np.array_equal(grey[..., 0], grey[..., 2])


def test_per_channel_values_must_fit_the_model_channels():
    from gradcam_viewer.models.bundle import bundle_for

    x = keras.Input((8, 8, 1))
    y = keras.layers.Conv2D(2, 3, name="feat")(x)
    model = keras.Model(x, keras.layers.Dense(2, activation="sigmoid")(
        keras.layers.GlobalAveragePooling2D()(y)))
    manifest = json.loads(demo_model_path().with_suffix(".json").read_text())
    manifest.update(labels=["a", "b"], target_layer="feat", output_kind="probabilities",
                    output_activation="sigmoid",
                    input={"height": 8, "width": 8, "channels": 1})
    manifest["preprocessing"] = {"kind": "fixed", "mean": [10.0], "std": 2.0}
    bundle = bundle_for(model, manifest, None)
    assert bundle.prepare(np.zeros((8, 8), np.uint8)).shape == (1, 8, 8, 1)
    manifest["preprocessing"] = {"kind": "fixed", "mean": [10.0, 20.0, 30.0], "std": 2.0}
    with pytest.raises(ModelLoadError, match="mean has 3 values but the model's input has 1"):
        bundle_for(model, manifest, None)


# --- output semantics ----------------------------------------------------------------------

def test_resolve_output_cases():
    assert resolve_output("sigmoid", {}, False) == ("probabilities", "sigmoid")
    assert resolve_output("linear", {}, False) == ("scores", "none")
    assert resolve_output("linear", {"output_activation": "sigmoid"}, True)[0] == "scores"
    assert resolve_output("linear", {"output_kind": "logits", "output_activation": "softmax"},
                          True) == ("logits", "softmax")
    with pytest.raises(ModelLoadError, match="already ends in a softmax"):
        resolve_output("softmax", {"output_kind": "logits", "output_activation": "softmax"}, True)


def test_to_values_equals_keras_activations():
    raw = RNG.normal(0, 4, (5, 4)).astype(np.float32)
    raw[0, 0] = 80.0  # no overflow
    np.testing.assert_allclose(to_values(raw, "logits", "sigmoid"),
                               keras.ops.convert_to_numpy(keras.activations.sigmoid(raw)),
                               atol=1e-6)
    np.testing.assert_allclose(to_values(raw, "logits", "softmax"),
                               keras.ops.convert_to_numpy(keras.activations.softmax(raw)),
                               atol=1e-6)
    np.testing.assert_array_equal(to_values(raw, "scores", "none"), raw)


_write, _manifest = zoo.write_beside, zoo.manifest_for


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("lin") / "lin.keras"
    model = zoo.small_cnn_gap(activation=None)
    model.save(path)
    return model, path


def test_linear_model_without_word_shows_scores(linear_model):
    model, path = linear_model
    bundle = load_model_bundle(path)
    assert bundle.output_kind == "scores" and bundle.values_name == "scores"
    assert any("scores (not probabilities)" in n for n in bundle.notices)
    raw = RNG.normal(0, 3, (3,)).astype(np.float32)
    np.testing.assert_array_equal(bundle.values(raw), raw)


def test_linear_model_with_logits_manifest(linear_model, tmp_path):
    model, src = linear_model
    path = tmp_path / src.name
    path.write_bytes(src.read_bytes())
    _write(path, _manifest(path, ["a", "b", "c"], output_kind="logits",
                           output_activation="softmax", preprocessing={"kind": "tf"}))
    bundle = load_model_bundle(path)
    x = bundle.prepare(RGB)
    expected = keras.ops.convert_to_numpy(keras.activations.softmax(model(x)))
    np.testing.assert_allclose(bundle.values(bundle.model.predict(x, verbose=0)), expected,
                               atol=1e-6)


def test_sigmoid_model_is_probabilities(tmp_path):
    path = tmp_path / "s.keras"
    zoo.small_cnn_gap().save(path)
    bundle = load_model_bundle(path)
    assert bundle.output_kind == "probabilities"
    _write(path, _manifest(path, ["a", "b", "c"], output_kind="logits"))
    with pytest.raises(ModelLoadError, match="already ends in a sigmoid"):
        load_model_bundle(path)


# --- schema --------------------------------------------------------------------------------

def test_demo_manifest_follows_the_schema():
    demo = json.loads(demo_model_path().with_suffix(".json").read_text())
    assert manifest_problems(demo) == []
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$schema"].endswith("2020-12/schema")
    # the schema's presets and output kinds are the ones the code implements
    from gradcam_viewer.models.outputs import OUTPUT_KINDS
    from gradcam_viewer.models.preprocessing import KINDS

    props = schema["properties"]
    assert props["preprocessing"]["properties"]["kind"]["enum"] == list(KINDS)
    assert props["output_kind"]["enum"] == list(OUTPUT_KINDS)


@pytest.mark.parametrize("change,fragment", [
    (lambda m: m.pop("labels"), "lacks the field 'labels'"),
    (lambda m: m["input"].pop("width"), "lacks the field 'input.width'"),
    (lambda m: m["input"].update(height="224"), "field 'input.height'"),
    (lambda m: m["input"].update(channels=4), "field 'input.channels' is 4"),
    (lambda m: m.update(labels=["a", "a"]), "field 'labels'"),
    (lambda m: m["labels"].append(3), "field 'labels[6]'"),
    (lambda m: m.update(preprocessing={"kind": "fixed", "mean": 3}),
     "lacks the field 'preprocessing.std'"),
    (lambda m: m.update(preprocessing={"kind": "fixed", "mean": 3, "std": 0}),
     "field 'preprocessing.std'"),
    (lambda m: m.update(preprocessing={"kind": "magic"}), "unknown preprocessing 'magic'"),
    (lambda m: m.update(output_kind="logits", output_activation="linear"),
     "field 'output_activation'"),
    (lambda m: m.update(output_kind="maybe"), "field 'output_kind'"),
    (lambda m: m.update(output=""), "field 'output'"),
    (lambda m: m.update(weights_sha256="abc"), "field 'weights_sha256'"),
])
def test_schema_messages_name_the_field(change, fragment):
    demo = json.loads(demo_model_path().with_suffix(".json").read_text())
    bad = copy.deepcopy(demo)
    change(bad)
    with pytest.raises(ModelLoadError, match="not valid") as err:
        validate_manifest(bad, "x.json")
    assert fragment in str(err.value), str(err.value)


def test_schema_is_package_data():
    """The schema must ship in the wheel and the PyInstaller bundle, not only in the tree."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert "manifest.schema.json" in (root / "pyproject.toml").read_text()
    assert 'collect_data_files("gradcam_viewer")' in (
        root / "packaging" / "gradcam-viewer.spec").read_text()


# --- suggestions ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,preset", [
    ("xception", "tf"), ("inception_v3", "tf"), ("mobilenetv2_1.00_224", "tf"),
    ("MobilenetV3small", "none"), ("resnet50", "caffe"), ("resnet50v2", "tf"),
    ("densenet121", "torch"), ("efficientnetb0", "none"), ("efficientnetv2-b0", "none"),
    ("convnext_tiny", "none"), ("vgg16", "caffe"), ("my_model", None),
])
def test_family_names(name, preset):
    got = family_of(name)
    assert (got[1] if got else None) == preset


def _outer(base, size, head_activation=None):
    inp = keras.Input((size, size, 3))
    y = keras.layers.GlobalAveragePooling2D()(base(inp))
    y = keras.layers.Dense(8, activation="relu")(y)
    y = keras.layers.Dropout(0.2)(y)
    return keras.Model([inp], [keras.layers.Dense(2, activation=head_activation)(y)])


def test_suggestions_from_real_applications():
    mobilenet = keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35,
                                               input_shape=(32, 32, 3))
    outer = _outer(mobilenet, 32)
    preset, why = suggest_preset(outer)
    assert preset == "tf" and "mobilenet_v2" in why
    assert final_activation(outer) == "linear"
    assert suggest_output(outer) == ("logits", "softmax")
    s = suggest(outer, "x")
    assert s.default_layer in s.layers and s.default_layer.startswith(mobilenet.name + "/")
    assert (s.height, s.width, s.channels, s.n_outputs) == (32, 32, 3, 2)

    effnet = keras.applications.EfficientNetB0(weights=None, include_top=False,
                                               input_shape=(None, None, 3))
    preset, why = suggest_preset(_outer(effnet, None, "sigmoid"))
    assert preset == "none" and "Rescaling" in why
    s = suggest(_outer(effnet, None, "sigmoid"))
    assert s.height is None and s.output_kind == "probabilities" and s.activation == "sigmoid"


@pytest.mark.parametrize("build,preset,module", [
    (lambda: keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35,
                                            input_shape=(32, 32, 3)), "tf", "mobilenet_v2"),
    (lambda: keras.applications.VGG16(weights=None, include_top=False,
                                      input_shape=(32, 32, 3)), "caffe", "vgg16"),
    (lambda: keras.applications.DenseNet121(weights=None, include_top=False,
                                            input_shape=(32, 32, 3)), "torch", "densenet"),
], ids=["mobilenet_v2", "vgg16", "densenet121"])
def test_suggestions_for_a_flat_transfer_model(build, preset, module):
    """keras.Model(base.input, head) (the CheXNet course's way) loses the base's name: the
    family is read from its layer names instead."""
    base = build()
    y = keras.layers.GlobalAveragePooling2D()(base.output)
    flat = keras.Model(base.input, keras.layers.Dense(2)(y))
    assert not any(isinstance(layer, keras.Model) for layer in flat.layers)
    got, why = suggest_preset(flat)
    assert got == preset and f"keras.applications.{module}," in why


@pytest.mark.parametrize("op", ["sigmoid", "softmax"])
def test_a_model_ending_in_a_keras_op_outputs_probabilities(op):
    from gradcam_viewer.models.bundle import bundle_for

    inp = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, name="feat")(inp))
    model = keras.Model(inp, getattr(keras.ops, op)(keras.layers.Dense(2)(x)))
    assert final_activation(model) == op
    bundle = bundle_for(model, None, None)
    assert bundle.output_kind == "probabilities" and bundle.values_name == "probabilities"
    assert not any("scores" in n for n in bundle.notices)
    tanh = keras.Model(inp, keras.layers.Dense(2, activation="tanh")(x))
    notice = next(n for n in bundle_for(tanh, None, None).notices if "scores" in n)
    assert "ends in an unknown activation" in notice


def test_suggestions_plain_models():
    assert suggest_preset(zoo.small_cnn_gap())[0] == "unit"
    assert suggest_output(zoo.small_sequential_softmax()) == ("probabilities", "softmax")
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(3, 3)(x))
    model = keras.Model(inp, keras.layers.Dense(3)(x))
    assert suggest_preset(model)[0] == "none"
    assert suggest_output(model) == ("logits", "sigmoid")


# --- loading and authoring -----------------------------------------------------------------

def test_load_names_the_bad_field(tmp_path):
    path = tmp_path / "m.keras"
    zoo.small_cnn_gap().save(path)
    _write(path, _manifest(path, ["a", "b", "c"], input={"height": 32, "width": "32",
                                                          "channels": 3}))
    with pytest.raises(ModelLoadError, match=r"m.json' is not valid: field 'input.width'"):
        load_model_bundle(path)


def test_labels_files_and_sizes(tmp_path):
    from gradcam_viewer.models.authoring import SetupError, labels_from_file, parse_size

    cases = {"a.txt": ("\ufeffNo Finding\r\nPneumonia\r\n\r\n", ["No Finding", "Pneumonia"]),
             "b.csv": ("Image Index, Effusion ,Mass\nx.png,1,0\n", ["Image Index", "Effusion", "Mass"]),
             "c.tsv": ("Effusion\tMass\n", ["Effusion", "Mass"]),
             "d.txt": ("Effusion,Mass\n", ["Effusion", "Mass"])}
    for name, (text, labels) in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert labels_from_file(tmp_path / name) == labels, name
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(SetupError, match="empty"):
        labels_from_file(tmp_path / "empty.txt")
    with pytest.raises(SetupError, match="cannot be read"):
        labels_from_file(tmp_path / "missing.txt")
    assert parse_size("320x256") == (320, 256) and parse_size(" 64 X 64 ") == (64, 64)
    for bad in ("320", "0x5", "axb", ""):
        with pytest.raises(SetupError, match="HEIGHTxWIDTH"):
            parse_size(bad)


@pytest.mark.parametrize("activation,expected", [("sigmoid", "sigmoid"), (None, "linear")])
def test_final_activation_inside_a_nested_model(activation, expected):
    """The output is produced by a nested model: its own last layer decides."""
    inner = zoo.small_cnn_gap(activation=activation)
    inp = keras.Input(inner.inputs[0].shape[1:])
    outer = keras.Model(inp, inner(inp))
    assert final_activation(outer) == expected

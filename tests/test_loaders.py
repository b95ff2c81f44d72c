"""Every file format users save in, written here by the library that writes it in the
wild: Keras 3 `.keras` and `.h5`, tf_keras (Keras 2) `.h5` and SavedModel. Each is opened by our
loader, gives the writer's own predictions, is explained like any model, and says how it was
opened. A Lambda layer is refused in every format."""

from pathlib import Path

import keras
import numpy as np
import pytest

import models_zoo as zoo
import requirements
from gradcam_viewer.cam import Explainer
from gradcam_viewer.models import ModelLoadError, load_model_bundle
from gradcam_viewer.models.loaders import load_keras_model
from tape_reference import assert_maps_close, model_input, tape_gradcam, tape_gradcams

tf_keras = requirements.module("tf_keras", "make venv installs tf-keras")
L = 3
X = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)


def _nested(lib, lam=False):
    """The transfer-learning pattern in `lib` (keras or tf_keras): a functional base inside a
    functional model with BN, Dropout, list-structured inputs and outputs."""
    layers = lib.layers
    b_in = lib.Input((32, 32, 3))
    x = layers.Lambda(lambda t: t * 2.0)(b_in) if lam else b_in
    x = layers.Conv2D(8, 3, activation="relu", name="b_conv1")(x)
    x = layers.BatchNormalization(name="b_bn")(x)
    x = layers.Conv2D(12, 3, strides=2, activation="relu", name="b_conv2")(x)
    base = lib.Model(b_in, x, name="base")
    inp = lib.Input((32, 32, 3))
    y = layers.GlobalAveragePooling2D()(base(inp))
    y = layers.Dropout(0.3)(layers.Dense(10, activation="relu")(y))
    out = layers.Dense(L, name="scores")(y)
    return lib.Model([inp], [out], name="nested")


def _expected(model):
    out = model(model_input(model, X), training=False)
    return np.asarray(out[0] if isinstance(out, (list, tuple)) else out)


def _check_explains(model, expected):
    exp = Explainer(model)
    assert exp.layer_name == "base/b_conv2"
    result = exp.explain(X)
    np.testing.assert_allclose(result.probabilities, expected, rtol=1e-5, atol=1e-6)
    refs = [tape_gradcam(model, exp.layer_name, X, label) for label in range(L)]
    assert_maps_close(result.heatmaps, np.stack(refs, axis=1), what="all labels")


def _save(lib_model, path, lib):
    if lib is keras:
        lib_model.save(path)
    elif path.suffix == ".h5":
        lib_model.save(path, save_format="h5")
    else:
        lib_model.save(path, save_format="tf")


FORMATS = [
    ("keras3.keras", keras, "m.keras", "Keras 3", ".keras file saved by Keras 3."),
    ("keras3.h5", keras, "m.h5", "Keras 3", "legacy HDF5 saved by Keras 3."),
    ("tf_keras.h5", tf_keras, "m.h5", "Keras 3", "legacy HDF5 saved by Keras 2."),
    ("tf_keras_savedmodel", tf_keras, "saved", "tf_keras", "SavedModel, rebuilt as Keras 3"),
]


@pytest.mark.parametrize("name,lib,filename,starts,says", FORMATS, ids=[f[0] for f in FORMATS])
def test_format_opens_with_writers_predictions(tmp_path, name, lib, filename, starts, says):
    keras.utils.set_random_seed(1)
    tf_keras.utils.set_random_seed(1)
    writer = _nested(lib)
    expected = _expected(writer)
    path = tmp_path / filename
    _save(writer, path, lib)
    loaded = load_keras_model(path)
    assert isinstance(loaded.model, keras.Model)  # always Keras 3 for the engine
    assert loaded.loader.startswith(starts) and says in loaded.loader, loaded.loader
    _check_explains(loaded.model, expected)


def test_saved_model_by_its_pb_file_with_a_manifest(tmp_path):
    """The file dialog picks `saved_model.pb`; the manifest's SHA-256 covers the whole folder."""
    writer = _nested(tf_keras)
    folder = tmp_path / "chest_model"
    writer.save(folder, save_format="tf")
    zoo.write_beside(folder, zoo.manifest_for(folder, ["a", "b", "c"], name="sm",
                                              output_activation="linear"))
    bundle = load_model_bundle(folder / "saved_model.pb")
    assert bundle.path == folder and bundle.labels == ["a", "b", "c"] and bundle.has_manifest
    assert "SavedModel" in bundle.loader
    np.testing.assert_allclose(Explainer(bundle.model).explain(X).probabilities,
                               _expected(writer), rtol=1e-5, atol=1e-6)
    (folder / "variables" / "extra").write_bytes(b"x")  # any change to the folder is caught
    with pytest.raises(ModelLoadError, match="SHA-256"):
        load_model_bundle(folder)


LAMBDA_FORMATS = [("keras3.keras", keras, "l.keras"), ("keras3.h5", keras, "l.h5"),
                  ("tf_keras.h5", tf_keras, "l.h5"), ("tf_keras_savedmodel", tf_keras, "l_sm")]


@pytest.mark.parametrize("name,lib,filename", LAMBDA_FORMATS, ids=[f[0] for f in LAMBDA_FORMATS])
def test_lambda_layer_is_refused_in_every_format(tmp_path, name, lib, filename, monkeypatch):
    path = tmp_path / filename
    _save(_nested(lib, lam=True), path, lib)
    if lib is tf_keras and path.suffix != ".h5":
        # The check must come before tf_keras, which would run the Lambda's bytecode.
        monkeypatch.setattr(tf_keras.models, "load_model", _must_not_be_called)
    with pytest.raises(ModelLoadError, match="Lambda layer.*refused for safety"):
        load_model_bundle(path)


def _must_not_be_called(*args, **kwargs):
    raise AssertionError("tf_keras.models.load_model ran on a SavedModel with a Lambda layer")


def test_savedmodel_without_keras_metadata_is_clear(tmp_path):
    import tensorflow as tf

    module = tf.Module()
    module.v = tf.Variable(1.0)
    tf.saved_model.save(module, str(tmp_path / "plain"))
    with pytest.raises(ModelLoadError, match="without Keras metadata"):
        load_model_bundle(tmp_path / "plain")


def test_model_card_says_which_loader(tmp_path):
    from gradcam_viewer.ui.dialogs import model_card_html

    _nested(keras).save(tmp_path / "m.keras")
    bundle = load_model_bundle(tmp_path / "m.keras")
    assert bundle.loader.startswith(f"Keras {keras.__version__}, .keras file")
    html = model_card_html(bundle.manifest, bundle.loader)
    assert "Opened with:" in html and f"Keras {keras.__version__}" in html


def _tf_keras_structures():
    layers = tf_keras.layers
    seq = tf_keras.Sequential([tf_keras.Input((32, 32, 3)), layers.Conv2D(6, 3, name="s_c"),
                               layers.BatchNormalization(), layers.ReLU(name="s_relu")],
                              name="seqbase")
    inp = tf_keras.Input((32, 32, 3))
    x = layers.GlobalAveragePooling2D()(seq(inp))
    seq_in_func = tf_keras.Model(inp, layers.Dense(L)(x))
    b_in = tf_keras.Input((32, 32, 3))
    base = tf_keras.Model(b_in, layers.Conv2D(6, 3, activation="relu", name="b_c")(b_in),
                          name="base")
    func_in_seq = tf_keras.Sequential([tf_keras.Input((32, 32, 3)), base,
                                       layers.GlobalAveragePooling2D(), layers.Dense(L)])
    app = tf_keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35,
                                            input_shape=(32, 32, 3))
    inp = tf_keras.Input((32, 32, 3))
    x = layers.Dropout(0.2)(layers.GlobalAveragePooling2D()(app(inp)))
    app_nested = tf_keras.Model([inp], [layers.Dense(L)(x)])
    for model in (seq_in_func, func_in_seq, app_nested):
        kernel, bias = model.layers[-1].get_weights()
        model.layers[-1].set_weights([np.abs(kernel), bias])  # every label has evidence
    return {"seq_in_func": (seq_in_func, "seqbase/s_relu"),
            "func_in_seq": (func_in_seq, "base/b_c"),
            "mobilenetv2_nested": (app_nested, f"{app.name}/block_12_add")}


@pytest.mark.parametrize("fmt", ["h5", "savedmodel"])
def test_keras2_nested_structures(tmp_path, fmt):
    """Keras 3's legacy loader alone fails on these ("nodes failed to be resolved", "expects 1
    input(s), but it received 2"); loaders.repair_keras2_config fixes the config."""
    tf_keras.utils.set_random_seed(3)
    for name, (writer, layer) in _tf_keras_structures().items():
        expected = _expected(writer)
        path = tmp_path / (f"{name}.h5" if fmt == "h5" else name)
        _save(writer, path, tf_keras)
        model = load_keras_model(path).model
        exp = Explainer(model, layer=layer.split("/")[-1])  # the bare inner name is found
        assert exp.layer_name == layer
        result = exp.explain(X)
        np.testing.assert_allclose(result.probabilities, expected, rtol=1e-5, atol=1e-6)
        refs = [tape_gradcam(model, layer, X, label) for label in range(L)]
        assert_maps_close(result.heatmaps, np.stack(refs, axis=1), what=name)


KERAS33 = Path(__file__).parent / "data" / "keras33"


@pytest.mark.parametrize("filename", ["nested_list.keras", "nested_list.h5"])
def test_files_written_by_keras_3_3(filename):
    """Real files from Keras 3.3.3 (tests/data/keras33/make_files.py): a nested base with
    Rescaling, BatchNormalization and Dropout, list-structured inputs and outputs - the shape of
    a user's model, whose probabilities came out [1, N, L]."""
    expected = np.load(KERAS33 / "expected.npz")
    loaded = load_keras_model(KERAS33 / filename)
    assert "saved by Keras 3.3.3" in loaded.loader
    exp = Explainer(loaded.model)
    assert exp.layer_name == "base/b_conv2"
    result = exp.explain(expected["x"])
    assert result.probabilities.shape == (2, 2)
    np.testing.assert_allclose(result.probabilities, expected["y"], rtol=1e-5, atol=1e-6)
    refs = tape_gradcams(loaded.model, exp.layer_name, expected["x"], range(2))
    assert_maps_close(result.heatmaps, np.stack([refs[0], refs[1]], axis=1), what=filename)


def test_saved_model_without_tf_keras_is_clear(tmp_path, monkeypatch):
    import sys

    _nested(tf_keras).save(tmp_path / "sm", save_format="tf")
    monkeypatch.setitem(sys.modules, "tf_keras", None)  # as in an installer without it
    with pytest.raises(ModelLoadError, match="needs the tf_keras package"):
        load_model_bundle(tmp_path / "sm")

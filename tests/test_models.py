"""Model bundles: manifest checks with clear errors, manifest-less models, and the CheXNet
preset loading Keras 2 legacy .h5 files written by tf_keras (an independent writer)."""

import shutil

import keras
import numpy as np
import pytest

import models_zoo as zoo
from gradcam_viewer.models import ModelLoadError, load_model_bundle
from gradcam_viewer.models.preprocessing import normalise, prepare_pixels


def _manifest(model_path, names, /, **over):
    return zoo.write_beside(model_path, zoo.manifest_for(model_path, names, **over))


@pytest.fixture
def saved_model(tmp_path):
    model = zoo.small_cnn_gap()
    path = tmp_path / "m.keras"
    model.save(path)
    return model, path


def test_bundle_with_manifest(saved_model):
    model, path = saved_model
    _manifest(path, ["a", "b", "c"])
    bundle = load_model_bundle(path)
    assert bundle.labels == ["a", "b", "c"] and not bundle.notices
    pixels = (np.arange(40 * 50) % 256).astype(np.uint8).reshape(40, 50)
    batch = bundle.prepare(pixels)
    assert batch.shape == (1, 32, 32, 3) and 0 <= batch.min() and batch.max() <= 1
    np.testing.assert_allclose(bundle.model.predict(batch, verbose=0),
                               model.predict(batch, verbose=0), rtol=1e-6)


def test_no_manifest_defaults(saved_model):
    _, path = saved_model
    bundle = load_model_bundle(path)
    assert bundle.labels == ["class 0", "class 1", "class 2"]
    assert "no manifest" in bundle.notices[0]


@pytest.mark.parametrize("change,message", [
    ({"labels": ["a", "b"]}, "lists 2 labels but the model has 3 outputs"),
    ({"input": {"height": 64, "width": 64, "channels": 3}}, "input height 64"),
    ({"weights_sha256": "0" * 64}, "does not match the SHA-256"),
    ({"preprocessing": {"kind": "magic"}}, "unknown preprocessing"),
    ({"target_layer": "nope"}, "no layer named 'nope'"),
])
def test_manifest_mismatches_are_clear(saved_model, change, message):
    _, path = saved_model
    _manifest(path, ["a", "b", "c"], **change)
    with pytest.raises(ModelLoadError, match=message):
        load_model_bundle(path)


def test_changed_weights_file_fails_hash(saved_model):
    _, path = saved_model
    _manifest(path, ["a", "b", "c"])
    with open(path, "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ModelLoadError, match="SHA-256"):
        load_model_bundle(path)


def test_bad_model_files(tmp_path):
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04" + b"garbage" * 100)
    with pytest.raises(ModelLoadError, match="not a Keras model"):
        load_model_bundle(corrupt)
    weights = tmp_path / "only.weights.h5"
    zoo.small_cnn_gap().save_weights(weights)
    renamed = tmp_path / "only.h5"
    shutil.copy(weights, renamed)
    with pytest.raises(ModelLoadError, match="weights only"):
        load_model_bundle(renamed)
    with pytest.raises(ModelLoadError, match="not a Keras model file"):
        load_model_bundle(tmp_path / "x.txt") if (tmp_path / "x.txt").write_text("x") else None


def test_unexplainable_models(tmp_path):
    img = keras.Input((16, 16, 1))
    g = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(img))
    two = keras.Model(img, [keras.layers.Dense(2)(g), keras.layers.Dense(3)(g)])
    two.save(tmp_path / "two.keras")
    with pytest.raises(ModelLoadError, match="2 outputs"):
        load_model_bundle(tmp_path / "two.keras")
    vec = keras.Input((10,))
    keras.Model(vec, keras.layers.Dense(2)(vec)).save(tmp_path / "vec.keras")
    with pytest.raises(ModelLoadError, match="image input"):
        load_model_bundle(tmp_path / "vec.keras")


def test_zscore_and_imagenet_preprocessing():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    z = prepare_pixels(pixels, {"kind": "zscore"}, 20, 30, 1)[0, ..., 0]
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-4
    rgb = prepare_pixels(pixels, {"kind": "imagenet"}, 20, 30, 3)[0]
    np.testing.assert_allclose(rgb[..., 1], (pixels / 255.0 - 0.456) / 0.224, rtol=1e-5)
    fixed = normalise(np.full((1, 2, 2, 1), 100.0), {"kind": "fixed", "mean": 50, "std": 25})
    assert np.all(fixed == 2.0)


# --- CheXNet preset ----------------------------------------------------------------------

def _tf_keras_chexnet(size):
    import tf_keras

    base = tf_keras.applications.DenseNet121(weights=None, include_top=False,
                                             input_shape=(size, size, 3))
    x = tf_keras.layers.GlobalAveragePooling2D()(base.output)
    out = tf_keras.layers.Dense(14, activation="sigmoid")(x)
    model = tf_keras.Model(base.input, out)
    rng = np.random.default_rng(42)
    model.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) if "variance" not in v.name
                       else np.abs(rng.normal(1, 0.1, w.shape)).astype(np.float32)
                       for w, v in zip(model.get_weights(), model.weights, strict=True)])
    return model


@pytest.mark.slow
def test_chexnet_preset_loads_keras2_legacy_h5(tmp_path):
    """The course's pretrained_model.h5 is Keras 2 `save_weights`; also accept a full model."""
    from gradcam_viewer.models.chexnet import LABELS, load_chexnet_weights

    writer = _tf_keras_chexnet(320)
    x = np.random.default_rng(1).normal(0, 1, (2, 320, 320, 3)).astype(np.float32)
    expected = writer.predict(x, verbose=0)
    writer.save_weights(tmp_path / "pretrained_model.h5")
    bundle = load_chexnet_weights(tmp_path / "pretrained_model.h5")
    assert bundle.labels == LABELS and bundle.target_layer == "conv5_block16_concat"
    np.testing.assert_allclose(bundle.model.predict(x, verbose=0), expected, atol=1e-5)

    bundle.model.save_weights(tmp_path / "chexnet.weights.h5")  # Keras 3 format
    again = load_chexnet_weights(tmp_path / "chexnet.weights.h5")
    np.testing.assert_allclose(again.model.predict(x, verbose=0), expected, atol=1e-5)


def test_chexnet_wrong_weights_are_clear(tmp_path):
    from gradcam_viewer.models.chexnet import load_chexnet_weights

    zoo.small_cnn_gap().save_weights(tmp_path / "small.weights.h5")
    with pytest.raises(ModelLoadError, match="does not hold weights for the CheXNet"):
        load_chexnet_weights(tmp_path / "small.weights.h5")

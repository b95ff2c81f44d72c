"""Small Keras models of the shapes the engine must handle, built in-process (no downloads)."""

import json
from pathlib import Path

import keras

L = 3


def small_cnn_flatten(size: int = 32) -> keras.Model:
    """Conv stack + Flatten + two Dense: not a pooling head, so the Jacobian path is used."""
    inp = keras.Input((size, size, 1))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="tanh")(x)
    out = keras.layers.Dense(L, activation="sigmoid", name="scores")(x)
    return keras.Model(inp, out, name="small_flatten")


def small_cnn_gap(size: int = 32, activation: str = "sigmoid") -> keras.Model:
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(10, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(L, activation=activation, name="scores")(x)
    return keras.Model(inp, out, name="small_gap")


def small_sequential_softmax(size: int = 32) -> keras.Model:
    return keras.Sequential([
        keras.Input((size, size, 1)),
        keras.layers.Conv2D(6, 3, activation="relu", name="conv1"),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv2"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(L, name="logits"),
        keras.layers.Activation("softmax", name="probs"),
    ], name="small_seq")


def nested_transfer(size: int = 32) -> tuple[keras.Model, keras.Model]:
    """A base model used as one layer of an outer model (the transfer-learning pattern)."""
    b_in = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="b_conv1")(b_in)
    x = keras.layers.BatchNormalization(name="b_bn")(x)
    x = keras.layers.Conv2D(12, 3, strides=2, activation="relu", name="b_conv2")(x)
    base = keras.Model(b_in, x, name="base")
    inp = keras.Input((size, size, 3))
    y = base(inp)
    y = keras.layers.GlobalAveragePooling2D()(y)
    y = keras.layers.Dropout(0.3)(y)
    out = keras.layers.Dense(L, activation="sigmoid", name="scores")(y)
    return keras.Model(inp, out, name="transfer"), base


def densenet_chexnet(size: int = 96, nested: bool = False) -> keras.Model:
    """The AI for Medicine course's DenseNet121 head, random weights."""
    base = keras.applications.DenseNet121(weights=None, include_top=False,
                                          input_shape=(size, size, 3))
    if nested:
        inp = keras.Input((size, size, 3))
        x = base(inp)
    else:
        inp, x = base.input, base.output
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(14, activation="sigmoid")(x)
    return keras.Model(inp, out)


# --- keras.applications families (weights=None, small inputs) -----------------------------

# family -> (constructor name, smallest input with a final feature map of at least 2x2)
APPLICATIONS = {
    "DenseNet121": 64,
    "ResNet50": 64,
    "ResNet50V2": 64,
    "MobileNetV2": 64,
    "MobileNetV3Small": 64,
    "EfficientNetB0": 64,
    "EfficientNetV2B0": 64,
    "InceptionV3": 107,
    "Xception": 71,
    "VGG16": 64,
    "ConvNeXtTiny": 64,
}
ZOO_LABELS = 2


def application_base(family: str, size: int | None = None) -> keras.Model:
    size = size or APPLICATIONS[family]
    build = getattr(keras.applications, family)
    return build(weights=None, include_top=False, input_shape=(size, size, 3))


def application_flat(base: keras.Model, labels: int = ZOO_LABELS) -> keras.Model:
    """The base's own graph continued by GAP + a linear Dense: one flat functional model."""
    x = keras.layers.GlobalAveragePooling2D(name="head_gap")(base.output)
    out = keras.layers.Dense(labels, name="head_scores")(x)
    return keras.Model(base.input, out, name=f"{base.name}_flat")


def application_nested(base: keras.Model, labels: int = ZOO_LABELS) -> keras.Model:
    """The transfer-learning pattern users bring: the base as one layer, GAP + Dense(relu) +
    Dropout + linear Dense, inputs and outputs given as lists (as Keras 3.0-3.3 saved them)."""
    inp = keras.Input(tuple(base.inputs[0].shape[1:]), name="image")
    x = base(inp)
    x = keras.layers.GlobalAveragePooling2D(name="head_gap")(x)
    x = keras.layers.Dense(16, activation="relu", name="head_hidden")(x)
    x = keras.layers.Dropout(0.5, name="head_dropout")(x)
    out = keras.layers.Dense(labels, name="head_scores")(x)
    return keras.Model([inp], [out], name=f"{base.name}_nested")


def manifest_for(model_path: Path, labels: list[str], /, **over) -> dict:
    """A valid manifest for a small test model (32x32x3, unit, sigmoid), with `over` replacing
    top-level fields."""
    from gradcam_viewer.models.manifest import sha256_of

    m = {"name": "t", "version": "1", "labels": labels,
         "input": {"height": 32, "width": 32, "channels": 3},
         "preprocessing": {"kind": "unit"}, "target_layer": "auto",
         "output_activation": "sigmoid", "trained_on": "x", "metrics": {},
         "intended_use": "tests", "disclaimer": "none", "weights_file": Path(model_path).name,
         "weights_sha256": sha256_of(model_path)}
    m.update(over)
    return m


def write_beside(model_path: Path, manifest: dict) -> dict:
    """Writes `manifest` as the model's `<stem>.json`, unchecked (tests write bad ones too)."""
    Path(model_path).with_suffix(".json").write_text(json.dumps(manifest))
    return manifest

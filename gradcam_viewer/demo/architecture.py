"""The demo CNN: small, with a high-resolution last feature map so heatmaps can point at a
nodule, dilated convolutions for the whole-thorax context cardiomegaly needs, and a global
average pooling + Dense head (for which Grad-CAM is exact and needs no backward pass)."""

from __future__ import annotations

import keras

TARGET_LAYER = "cam_features"


def build_demo_model(size: int, n_labels: int, width: int = 16) -> keras.Model:
    inp = keras.Input((size, size, 1), name="image")
    x = inp

    def block(x, filters, stride=1, dilation=1, name=None):
        x = keras.layers.Conv2D(filters, 3, strides=stride, dilation_rate=dilation,
                                padding="same", use_bias=False, name=name and name + "_conv")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=name and name + "_bn")(x)
        return keras.layers.Activation("relu", name=name)(x)

    x = block(x, width, 2, name="stem")  # /2
    x = block(x, width * 2, 2, name="b1a")  # /4
    x = block(x, width * 2, name="b1b")
    x = block(x, width * 4, 2, name="b2a")  # /8
    x = block(x, width * 4, name="b2b")
    x = block(x, width * 4, dilation=2, name="ctx1")
    x = block(x, width * 6, dilation=4, name="ctx2")
    x = block(x, width * 8, dilation=8, name=TARGET_LAYER)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    out = keras.layers.Dense(n_labels, activation="sigmoid", name="findings")(x)
    return keras.Model(inp, out, name="phantom_cxr_demo")

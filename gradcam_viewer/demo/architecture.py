"""The demo CNN: small, a 28x28 last feature map whose receptive field (87 px of 224) is local,
and a global average pooling + Dense head, for which Grad-CAM is the class activation map and
needs no backward pass.

A first version with dilated convolutions seeing the whole image reached AUROC >= 0.99 but its
Grad-CAM pointed nowhere (pointing game < 0.2): when every location sees the whole chest, every
location "knows" a finding is present. Local features fix half of that; the training script's
auxiliary loss (see train.py) does the rest.
"""

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
    x = block(x, width * 4, name="ctx1")
    x = block(x, width * 8, dilation=2, name=TARGET_LAYER)  # receptive field 87 px
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    out = keras.layers.Dense(n_labels, activation="sigmoid", name="findings")(x)
    return keras.Model(inp, out, name="phantom_cxr_demo")

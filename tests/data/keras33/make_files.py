"""Writes the files in this folder with Keras 3.3.3 (the version a user's model was saved with), so
the tests read files an older Keras 3 really wrote. Not run by the tests. To regenerate:
    pip download --no-deps keras==3.3.3 -d /tmp/k && unzip /tmp/k/keras-3.3.3-*.whl -d /tmp/k33
    PYTHONPATH=/tmp/k33 .venv/bin/python tests/data/keras33/make_files.py
"""

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
import numpy as np

assert keras.__version__ == "3.3.3", keras.__version__
HERE = Path(__file__).parent
keras.utils.set_random_seed(0)
b_in = keras.Input((24, 24, 3))
x = keras.layers.Rescaling(1 / 127.5, offset=-1)(b_in)
x = keras.layers.Conv2D(8, 3, activation="relu", name="b_conv1")(x)
x = keras.layers.BatchNormalization(name="b_bn")(x)
x = keras.layers.Conv2D(12, 3, strides=2, activation="relu", name="b_conv2")(x)
base = keras.Model(b_in, x, name="base")
inp = keras.Input((24, 24, 3))
y = keras.layers.GlobalAveragePooling2D()(base(inp))
y = keras.layers.Dropout(0.3)(keras.layers.Dense(8, activation="relu")(y))
head = keras.layers.Dense(2, name="scores")
model = keras.Model([inp], [head(y)])  # list-structured, as Keras 3.0-3.3 saved them
model.save(HERE / "nested_list.keras")
model.save(HERE / "nested_list.h5")
images = np.random.default_rng(0).uniform(0, 255, (2, 24, 24, 3)).astype(np.float32)
np.savez(HERE / "expected.npz", x=images, y=np.asarray(model.predict(images, verbose=0)))

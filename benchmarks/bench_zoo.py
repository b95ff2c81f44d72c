"""Per keras.applications family at its native input size: load time, compiled forward pass,
all-label explain, and explain / forward (goal: <= 1.25 for every family).

Each model is the transfer-learning pattern users bring: the base (weights=None)
nested in an outer model with GAP + Dense(relu) + Dropout + a linear Dense of 14 labels, list-
structured inputs and outputs, saved as .keras and opened through our loader (in this process:
TensorFlow is already imported, so "load" is reading and rebuilding the model). Batch 1,
median of --repeats alternating runs after one warm-up (tracing). Prints a Markdown table.
Run: .venv/bin/python benchmarks/bench_zoo.py [--repeats N] [--families A,B]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from timing import interleaved  # benchmarks/timing.py (this script's folder)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

NATIVE = {
    "DenseNet121": 224, "ResNet50": 224, "ResNet50V2": 224, "MobileNetV2": 224,
    "MobileNetV3Small": 224, "EfficientNetB0": 224, "EfficientNetV2B0": 224,
    "InceptionV3": 299, "Xception": 299, "VGG16": 224, "ConvNeXtTiny": 224,
}
LABELS = 14


def build(family: str, size: int):
    import keras

    base = getattr(keras.applications, family)(weights=None, include_top=False,
                                               input_shape=(size, size, 3))
    inp = keras.Input((size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inp))
    x = keras.layers.Dropout(0.3)(keras.layers.Dense(128, activation="relu")(x))
    return keras.Model([inp], [keras.layers.Dense(LABELS)(x)])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--families", default=",".join(NATIVE))
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.models.loaders import load_keras_model

    print(f"{LABELS} labels, batch 1, median of {args.repeats}, {os.cpu_count()} CPU cores, "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}\n")
    print("| Family | Input | Load | Forward | All-label explain | Ratio | Target layer |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families.split(","):
            size = NATIVE[family]
            path = Path(tmp) / f"{family}.keras"
            build(family, size).save(path)
            keras.backend.clear_session()
            start = time.perf_counter()
            model = load_keras_model(path).model
            load = time.perf_counter() - start
            exp = Explainer(model)
            x = np.random.default_rng(0).random((1, size, size, 3), dtype=np.float32)
            forward, explain = interleaved([partial(exp.predict, x), partial(exp.explain, x)],
                                           args.repeats)
            ratio = explain / forward
            worst = max(worst, ratio)
            print(f"| {family} | {size} | {load:.1f} s | {forward * 1e3:.0f} ms | "
                  f"{explain * 1e3:.0f} ms | {ratio:.2f} | `{exp.layer_name}` |", flush=True)
            del exp, model
    print(f"\nworst ratio {worst:.2f} (goal <= 1.25)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

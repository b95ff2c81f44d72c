"""All 14 heatmaps vs one forward pass, a naive per-label loop, and tf-keras-vis.

DenseNet121 (weights=None) + global average pooling + Dense(14, sigmoid) at 320x320, built in
this process (nothing downloaded). Every figure comes from this one run, on this machine.
Run: .venv/bin/python benchmarks/bench_cam.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from functools import partial

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

COLD = """
import time, os
t0 = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np, keras
from gradcam_viewer.cam import Explainer
base = keras.applications.DenseNet121(weights=None, include_top=False, input_shape=(320, 320, 3))
x = keras.layers.GlobalAveragePooling2D()(base.output)
model = keras.Model(base.input, keras.layers.Dense(14, activation="sigmoid")(x))
e = Explainer(model)
e.explain(np.random.default_rng(0).random((1, 320, 320, 3), dtype=np.float32))
print(time.perf_counter() - t0)
"""


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (tracing, first allocation)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from gradcam_viewer.cam import Explainer

    base = keras.applications.DenseNet121(weights=None, include_top=False,
                                          input_shape=(320, 320, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base.output)
    model = keras.Model(base.input, keras.layers.Dense(14, activation="sigmoid")(pooled))
    x = np.random.default_rng(0).random((1, 320, 320, 3), dtype=np.float32)
    r = args.repeats
    print(f"DenseNet121 + GAP + Dense(14) at 320x320, batch 1, median of {r}, "
          f"{os.cpu_count()} CPU cores, TensorFlow {tf.__version__}")

    rows = []
    for layer in (None, "conv5_block16_concat"):
        exp = Explainer(model, layer=layer)
        forward = timed(partial(exp.predict, x), r)
        allmaps = timed(partial(exp.explain, x), r)
        rows.append((exp.layer_name, exp.closed_form, forward, allmaps))
        print(f"layer {exp.layer_name:22s} ({'closed form' if exp.closed_form else 'Jacobian'}): "
              f"forward {forward * 1e3:7.1f} ms, all 14 heatmaps {allmaps * 1e3:7.1f} ms, "
              f"ratio {allmaps / forward:.2f}x")

    # naive: the Keras example's make_gradcam_heatmap, one GradientTape per label
    layer = "relu"
    grad_model = keras.Model(model.inputs, [model.get_layer(layer).output,
                                            model.layers[-1].input])
    dense = model.layers[-1]

    def naive():
        for label in range(14):
            with tf.GradientTape() as tape:
                acts, feats = grad_model(x)
                score = (feats @ dense.kernel + dense.bias)[:, label]
            grads = tape.gradient(score, acts)
            pooled_grads = tf.reduce_mean(grads, axis=(0, 1, 2))
            tf.maximum(acts[0] @ pooled_grads[..., None], 0).numpy()

    t_naive = timed(naive, max(3, r // 2))
    print(f"naive loop (one GradientTape per label):        {t_naive * 1e3:8.1f} ms")

    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    vis = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
    batch14 = np.repeat(x, 14, axis=0)
    t_vis_batch = timed(lambda: vis(CategoricalScore(list(range(14))), batch14,
                                    penultimate_layer=layer, expand_cam=False), max(3, r // 2))
    t_vis_loop = timed(lambda: [vis(CategoricalScore([k]), x, penultimate_layer=layer,
                                    expand_cam=False) for k in range(14)], max(2, r // 3))
    print(f"tf-keras-vis, 14 labels as a batch of 14 images: {t_vis_batch * 1e3:8.1f} ms")
    print(f"tf-keras-vis, 14 calls of one label:             {t_vis_loop * 1e3:8.1f} ms")
    best_vis = min(t_vis_batch, t_vis_loop)
    ours = rows[0][3]
    print(f"speed-up vs naive loop:   {t_naive / ours:6.1f}x")
    print(f"speed-up vs tf-keras-vis: {best_vis / ours:6.1f}x (against its faster mode)")

    out = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, check=True)
    print(f"cold: process start to the first 14 heatmaps: {float(out.stdout.strip().splitlines()[-1]):.1f} s "
          "(imports, building DenseNet121, tracing, first call)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

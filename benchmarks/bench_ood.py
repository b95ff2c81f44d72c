"""Extra cost of the out-of-distribution check (goal <= 10% of explain).

Explain without the check (the engine's compiled pass returning scores and maps only) against
explain with it (the same pass also pooling the feature layer, then the k-NN score against a
1000-row float16 reference in numpy). Two models: the demo model (features at its calibrated
layer ctx1_bn, a second tap) and DenseNet121 + GAP + Dense(14) at 320x320 (weights=None, features
at the target layer). Median of --repeats runs after a warm-up, one image per call.
Run: .venv/bin/python benchmarks/bench_ood.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os

from timing import interleaved  # benchmarks/timing.py (this script's folder)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")


def measure(name, explainer, x, check, repeats):
    import numpy as np
    import tensorflow as tf

    from gradcam_viewer.cam.methods import METHODS

    def plain(inp):  # the engine's pass without the OOD check: scores and maps only
        acts, grads, probs, _ = explainer._acts_and_grads(inp)
        return probs, tf.nn.relu(METHODS["gradcam"](acts, grads))

    plain_fn = tf.function(plain, input_signature=explainer._signature, autograph=False)

    def without():
        return [t.numpy() for t in plain_fn(tf.constant(np.asarray(x, np.float32)))]

    def with_ood():
        return check.record(explainer.explain(x).features[0])

    feats = explainer.explain(x).features[0]
    base, full, knn = interleaved([without, with_ood, lambda: check.record(feats)], repeats)
    print(f"{name:34s} explain {base * 1000:7.1f} ms   with OOD {full * 1000:7.1f} ms   "
          f"extra {100 * (full / base - 1):+5.1f}%   (k-NN score alone {knn * 1000:.2f} ms)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=31)
    args = parser.parse_args()
    import keras
    import numpy as np

    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.models import load_model_bundle
    from gradcam_viewer.trust.ood import (
        OodCheck,
        calibrate_features,
        check_for,
        feature_layer_of,
    )

    rng = np.random.default_rng(0)
    bundle = load_model_bundle()
    demo = Explainer(bundle.model, layer=bundle.target_layer,
                     feature_layer=feature_layer_of(bundle.manifest))
    check = check_for(bundle, demo)
    assert check.calibrated, check.status
    measure(f"demo 224 (features at {demo.feature_layer})", demo,
            rng.random((1, 224, 224, 1), dtype=np.float32), check, args.repeats)

    base = keras.applications.DenseNet121(weights=None, include_top=False,
                                          input_shape=(320, 320, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base.output)
    model = keras.Model(base.input, keras.layers.Dense(14, activation="sigmoid")(pooled))
    dense = Explainer(model)
    fake = OodCheck(calibrate_features(rng.random((1250, 1024)), max_reference=1000), "")
    measure("DenseNet121 320 (target layer)", dense,
            rng.random((1, 320, 320, 3), dtype=np.float32), fake, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

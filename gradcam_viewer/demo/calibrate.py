"""`make demo-calibration`: the demo model's out-of-distribution reference, from fresh phantoms.

The seed is one training never used (training: seeds 1234 * 1_000_003 + k; its held-out card:
1235 * 100_003 + k; samples: 101-105). The phantoms reach the model exactly as a loaded 8-bit
PNG of the model's size would (train.phantom_batch). The feature layer is `ctx1_bn`, the
(pre-activation) block just before the target layer: the target layer's own pooled features
(trained to be finding detectors) flag only about half of the real radiographs in
../shared/data; earlier blocks (b2b) flag all of them but also the bundled 768-pixel samples,
whose noise texture changes when they are shrunk to 224 (README, "Can this output be
trusted?").
"""

from __future__ import annotations

import argparse
import time

import numpy as np

CALIBRATION_SEED = 20_261_127
FEATURE_LAYER = "ctx1_bn"


def main(argv: list[str] | None = None) -> int:
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.demo.phantoms import make_phantoms
    from gradcam_viewer.demo.train import phantom_batch
    from gradcam_viewer.models import load_model_bundle
    from gradcam_viewer.resources import demo_model_path
    from gradcam_viewer.trust.ood import calibrate_features, store_calibration

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1200, help="phantoms (default 1200)")
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=CALIBRATION_SEED)
    parser.add_argument("--layer", default=FEATURE_LAYER)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    bundle = load_model_bundle(demo_model_path())
    explainer = Explainer(bundle.model, layer=bundle.target_layer, feature_layer=args.layer)
    size = bundle.input_size[0]
    feats: list[np.ndarray] = []
    for start in range(0, args.n, 100):
        ph = make_phantoms(min(100, args.n - start), seed=args.seed + start, size=size,
                           with_masks=False)
        pooled = explainer.explain(phantom_batch(ph.images)).features
        assert pooled is not None  # the engine pools the features of every explanation
        feats.append(pooled)
        print(f"{start + len(ph.images)}/{args.n} phantoms", flush=True)
    features = np.concatenate(feats)
    reference = calibrate_features(features, holdout=args.holdout)
    sidecar = store_calibration(demo_model_path(), reference, explainer.feature_layer,
                                len(features), args.holdout)
    print(f"{sidecar.name}: k {reference.k}, threshold {reference.threshold:.4f}, "
          f"{sidecar.stat().st_size // 1024} KB, {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

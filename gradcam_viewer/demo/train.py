"""`make demo-model`: train the demo CNN on phantoms, measure it on a held-out phantom set,
write the model, its manifest and the sample images.

Seeded and reproducible (Keras and NumPy seeds, deterministic TensorFlow ops, 2 threads).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from gradcam_viewer.demo.phantoms import LABELS, make_phantoms

MODEL_FILE = "phantom_cxr_demo.keras"
PREPROCESSING = {"kind": "zscore"}


def phantom_batch(images: np.ndarray) -> np.ndarray:
    """Phantoms in [0, 1] to model input exactly as a loaded 8-bit PNG would be prepared."""
    from gradcam_viewer.models.preprocessing import normalise

    pixels = np.rint(images * 255).astype(np.uint8).astype(np.float32)[..., None]
    return normalise(pixels, PREPROCESSING).astype(np.float32)


def evaluate(model, size: int, n: int, seed: int, batch: int = 50) -> dict:
    """Per-label AUROC, pointing game and IoU on `n` held-out phantoms."""
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.demo.architecture import TARGET_LAYER
    from gradcam_viewer.demo.metrics import auroc, localisation

    explainer = Explainer(model, layer=TARGET_LAYER)
    probs, hits, ious, counts = [], np.zeros(len(LABELS)), np.zeros(len(LABELS)), np.zeros(len(LABELS))
    labels_all = []
    for start in range(0, n, batch):
        count = min(batch, n - start)
        ph = make_phantoms(count, seed=seed * 100_003 + start, size=size)
        exp = explainer.explain(phantom_batch(ph.images))
        probs.append(exp.probabilities)
        labels_all.append(ph.labels)
        h, i, c = localisation(exp.heatmaps, ph.masks, ph.labels)
        hits += h * c
        ious += i * c
        counts += c
    probs = np.concatenate(probs)
    labels = np.concatenate(labels_all)
    safe = np.maximum(counts, 1)
    return {
        "held_out_images": int(n),
        "per_label": {
            name: {
                "auroc": round(auroc(probs[:, k], labels[:, k]), 4),
                "pointing_game": round(float(hits[k] / safe[k]), 4),
                "mean_iou": round(float(ious[k] / safe[k]), 4),
                "positives": int(labels[:, k].sum()),
            }
            for k, name in enumerate(LABELS)
        },
    }


def train(out: Path, samples: Path | None, size: int, n_train: int, n_eval: int, epochs: int,
          width: int, seed: int, batch: int) -> dict:
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras
    import tensorflow as tf

    from gradcam_viewer import __version__
    from gradcam_viewer.demo.architecture import TARGET_LAYER, build_demo_model
    from gradcam_viewer.models.manifest import sha256_of, write_manifest

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    started = time.perf_counter()
    data = make_phantoms(n_train, seed=seed, size=size, with_masks=False)
    x, y = phantom_batch(data.images), data.labels.astype(np.float32)
    del data
    print(f"generated {n_train} training phantoms in {time.perf_counter() - started:.0f} s",
          flush=True)
    model = build_demo_model(size, len(LABELS), width)
    steps = epochs * int(np.ceil(n_train / batch))
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(multi_label=True, name="auc")])
    model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=True, verbose=2)
    trained = time.perf_counter() - started
    metrics = evaluate(model, size, n_eval, seed + 1)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / MODEL_FILE
    model.save(model_path)
    manifest = {
        "name": "Phantom CXR demo",
        "version": "1.0.0",
        "synthetic_demo": True,
        "labels": list(LABELS),
        "input": {"height": size, "width": size, "channels": 1},
        "preprocessing": PREPROCESSING,
        "resize": "bilinear",
        "target_layer": TARGET_LAYER,
        "output_activation": "sigmoid",
        "trained_on": (f"{n_train} synthetic chest phantoms ({size}x{size}) from "
                       f"gradcam_viewer.demo.phantoms, seed {seed}; no real patient data."),
        "metrics": metrics,
        "training": {"epochs": epochs, "batch": batch, "width": width, "seed": seed,
                     "seconds": round(trained, 1), "gradcam_viewer": __version__},
        "intended_use": ("Demonstrating and checking the viewer: its heatmaps can be compared "
                         "with the known location of each synthetic finding."),
        "disclaimer": ("SYNTHETIC DEMONSTRATION MODEL - NOT FOR DIAGNOSTIC USE. It was trained "
                       "only on computer-generated phantoms and says nothing about real "
                       "radiographs."),
        "weights_file": MODEL_FILE,
        "weights_sha256": sha256_of(model_path),
    }
    write_manifest(model_path.with_suffix(".json"), manifest)
    if samples is not None:
        from gradcam_viewer.demo.samples import write_samples

        write_samples(samples)
    print(f"done in {time.perf_counter() - started:.0f} s")
    for name, m in metrics["per_label"].items():
        print(f"  {name:14s} AUROC {m['auroc']:.3f}  pointing {m['pointing_game']:.3f}  "
              f"IoU {m['mean_iou']:.3f}  (n+={m['positives']})")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("resources/models/demo"))
    parser.add_argument("--samples", type=Path, default=None)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--width", type=int, default=12)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    train(args.out, args.samples, args.size, args.n_train, args.n_eval, args.epochs, args.width,
          args.seed, args.batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

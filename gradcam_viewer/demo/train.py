"""`make demo-model`: train the demo CNN on phantoms, measure it on a held-out phantom set,
write the model, its manifest and the sample images.

Besides the labels, training uses the findings' masks in an auxiliary loss: for each positive
finding, the softmax over positions of its class activation map (the Dense weights applied at
every location of the target layer: exactly what Grad-CAM shows for this head) should put its
mass inside the mask. It constrains *where* the evidence lies, not how much there is, so it does
not fight the average-pooled classification. The point of the demo model is a model whose
attention is known, so that the viewer's whole pipeline (layer, gradients, upsampling, overlay)
can be checked against ground truth; the manifest says the masks were used.

Seeded and reproducible (Keras and NumPy seeds, deterministic TensorFlow ops).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradcam_viewer.demo.phantoms import LABELS, make_phantoms

if TYPE_CHECKING:
    from gradcam_viewer.models.manifest import Manifest
    from gradcam_viewer.models.preprocessing import Preprocessing

MODEL_FILE = "phantom_cxr_demo.keras"
LOCALISATION_WEIGHT = 0.25
PREPROCESSING: Preprocessing = {"kind": "zscore"}


def phantom_batch(images: np.ndarray) -> np.ndarray:
    """Phantoms in [0, 1] to model input exactly as a loaded 8-bit PNG would be prepared."""
    from gradcam_viewer.models.preprocessing import normalise

    pixels = np.rint(images * 255).astype(np.uint8).astype(np.float32)[..., None]
    return normalise(pixels, PREPROCESSING).astype(np.float32)


CELL = 8  # the target layer's stride


def cell_fractions(masks: np.ndarray) -> np.ndarray:
    """[N, L, H, W] bool -> [N, H/8, W/8, L] share of each cell inside the mask."""
    n, labels, h, w = masks.shape
    frac = masks.reshape(n, labels, h // CELL, CELL, w // CELL, CELL).mean(axis=(3, 5))
    return np.transpose(frac, (0, 2, 3, 1)).astype(np.float32)


def training_data(n: int, seed: int, size: int, chunk: int = 500):
    """Model inputs, labels and mask cell fractions, generated in chunks to bound memory."""
    xs, ys, fs = [], [], []
    for start in range(0, n, chunk):
        ph = make_phantoms(min(chunk, n - start), seed=seed * 1_000_003 + start, size=size)
        xs.append(phantom_batch(ph.images))
        ys.append(ph.labels.astype(np.float32))
        assert ph.masks is not None  # made with masks (make_phantoms' default)
        fs.append(cell_fractions(ph.masks))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(fs)


def localisation_loss(y_true, cam_logits):
    """-log(share of the spatial softmax inside the mask), over positive findings only."""
    from keras import ops

    shape = ops.shape(cam_logits)
    flat = ops.reshape(cam_logits, (shape[0], -1, shape[3]))  # [N, hw, L]
    target = ops.reshape(y_true, (shape[0], -1, shape[3]))
    prob = ops.softmax(flat, axis=1)
    inside = ops.sum(prob * target, axis=1) / ops.maximum(ops.max(target, axis=1), 1e-6)
    positive = ops.cast(ops.max(target, axis=1) > 0, "float32")
    per_label = -ops.log(ops.clip(inside, 1e-6, 1.0)) * positive
    return ops.sum(per_label, axis=1) / ops.maximum(ops.sum(positive, axis=1), 1.0)


def training_model(model):
    """The demo model plus a second output: its class activation maps (logits per location)."""
    import keras

    from gradcam_viewer.demo.architecture import TARGET_LAYER

    dense = model.get_layer("findings")

    class CamLogits(keras.layers.Layer):
        def call(self, features):
            return keras.ops.einsum("nhwc,cl->nhwl", features, dense.kernel) + dense.bias

    cams = CamLogits(name="cam_logits")(model.get_layer(TARGET_LAYER).output)
    return keras.Model(model.inputs, {"findings": model.outputs[0], "cam_logits": cams})


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
        assert ph.masks is not None  # made with masks (make_phantoms' default)
        h, i, c = localisation(exp.heatmaps, ph.masks, ph.labels)
        hits += h * c
        ious += i * c
        counts += c
    scores = np.concatenate(probs)
    labels = np.concatenate(labels_all)
    safe = np.maximum(counts, 1)
    return {
        "held_out_images": int(n),
        "per_label": {
            name: {
                "auroc": round(auroc(scores[:, k], labels[:, k]), 4),
                "pointing_game": round(float(hits[k] / safe[k]), 4),
                "mean_iou": round(float(ious[k] / safe[k]), 4),
                "positives": int(labels[:, k].sum()),
            }
            for k, name in enumerate(LABELS)
        },
    }


def train(out: Path, samples: Path | None, size: int, n_train: int, n_eval: int, epochs: int,
          width: int, seed: int, batch: int) -> Manifest:
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras
    import tensorflow as tf

    from gradcam_viewer import __version__
    from gradcam_viewer.demo.architecture import TARGET_LAYER, build_demo_model
    from gradcam_viewer.models.manifest import sha256_of, write_manifest

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    started = time.perf_counter()
    x, y, fractions = training_data(n_train, seed, size)
    print(f"generated {n_train} training phantoms in {time.perf_counter() - started:.0f} s",
          flush=True)
    model = build_demo_model(size, len(LABELS), width)
    trainer = training_model(model)
    steps = epochs * int(np.ceil(n_train / batch))
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, steps, alpha=0.02)
    trainer.compile(optimizer=keras.optimizers.Adam(schedule),
                    loss={"findings": "binary_crossentropy", "cam_logits": localisation_loss},
                    loss_weights={"findings": 1.0, "cam_logits": LOCALISATION_WEIGHT},
                    metrics={"findings": [keras.metrics.AUC(multi_label=True, name="auc")]})
    trainer.fit(x, {"findings": y, "cam_logits": fractions}, batch_size=batch, epochs=epochs,
                shuffle=True, verbose=2)
    trained = time.perf_counter() - started
    metrics = evaluate(model, size, n_eval, seed + 1)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / MODEL_FILE
    model.save(model_path)
    manifest: Manifest = {
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
                       f"gradcam_viewer.demo.phantoms, seed {seed}; no real patient data. "
                       "Labels, plus the findings' masks in an auxiliary loss that puts each "
                       "positive finding's class activation map inside its mask."),
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

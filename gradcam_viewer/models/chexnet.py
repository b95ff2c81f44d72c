"""The CheXNet-style model of the AI for Medicine course (module C3M3, `load_C3M3_model`):
DenseNet121 without top, global average pooling, Dense(14, sigmoid), 320x320x3, per-image
z-score. Built here with random weights; the user brings the trained weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gradcam_viewer.models.errors import ModelLoadError

LABELS = ["Cardiomegaly", "Emphysema", "Effusion", "Hernia", "Infiltration", "Mass", "Nodule",
          "Atelectasis", "Pneumothorax", "Pleural_Thickening", "Pneumonia", "Fibrosis", "Edema",
          "Consolidation"]
SIZE = 320
TARGET_LAYER = "conv5_block16_concat"


def build_chexnet(size: int = SIZE) -> Any:
    import keras

    base = keras.applications.DenseNet121(weights=None, include_top=False,
                                          input_shape=(size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    out = keras.layers.Dense(len(LABELS), activation="sigmoid")(x)
    return keras.Model(inputs=base.input, outputs=out)


def chexnet_manifest(weights: Path, sha256: str) -> dict[str, Any]:
    return {
        "name": "CheXNet (DenseNet121, AI for Medicine C3M3)",
        "version": weights.name,
        "labels": list(LABELS),
        "input": {"height": SIZE, "width": SIZE, "channels": 3},
        "preprocessing": {"kind": "zscore"},
        "resize": "bilinear",
        "target_layer": TARGET_LAYER,
        "output_activation": "sigmoid",
        "trained_on": "As supplied by the user (the course trained on NIH ChestX-ray14).",
        "metrics": {},
        "intended_use": "Education and research on Grad-CAM explanations.",
        "disclaimer": "Research model - not for diagnostic use.",
        "weights_file": weights.name,
        "weights_sha256": sha256,
    }


def load_chexnet_weights(path: str | Path):
    """Keras 2 legacy `.h5` (model or weights, like the course's `pretrained_model.h5`) or a
    Keras 3 `.weights.h5`, into the preset architecture."""
    from gradcam_viewer.models.bundle import bundle_for
    from gradcam_viewer.models.manifest import sha256_of

    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"The weights file '{p.name}' does not exist.")
    model = build_chexnet()
    try:
        model.load_weights(p)
    except Exception as exc:
        raise ModelLoadError(f"'{p.name}' does not hold weights for the CheXNet DenseNet121 "
                             f"({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:160] if str(exc) else ''}).") from exc
    import keras

    bundle = bundle_for(model, chexnet_manifest(p, sha256_of(p)), p)
    bundle.loader = f"CheXNet preset built by Keras {keras.__version__}, weights from '{p.name}'"
    return bundle

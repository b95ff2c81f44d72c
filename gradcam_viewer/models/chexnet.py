"""The CheXNet-style model of the AI for Medicine course (module C3M3, `load_C3M3_model`):
DenseNet121 without top, global average pooling, Dense(14, sigmoid), 320x320x3. Built here with
random weights; the user brings the trained weights.

Normalisation: the course subtracts the mean and divides by the standard deviation of a sample
of its training images (`get_mean_std_per_batch`). Given a folder of reference images, their
mean/std (over every pixel of every image, loaded as the model sees them: display pixels,
320x320, three channels) go into a `fixed` preset in a manifest written beside the weights and
used on every later load. Without one, each image is z-scored on its own.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradcam_viewer.models.errors import ModelLoadError
from gradcam_viewer.models.manifest import Manifest
from gradcam_viewer.models.preprocessing import Preprocessing

if TYPE_CHECKING:
    import keras

    from gradcam_viewer.models.bundle import ModelBundle

log = logging.getLogger(__name__)
MAX_REFERENCE_IMAGES = 2000

LABELS = ["Cardiomegaly", "Emphysema", "Effusion", "Hernia", "Infiltration", "Mass", "Nodule",
          "Atelectasis", "Pneumothorax", "Pleural_Thickening", "Pneumonia", "Fibrosis", "Edema",
          "Consolidation"]
SIZE = 320
TARGET_LAYER = "conv5_block16_concat"


def build_chexnet(size: int = SIZE) -> keras.Model:
    import keras

    base = keras.applications.DenseNet121(weights=None, include_top=False,
                                          input_shape=(size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    out = keras.layers.Dense(len(LABELS), activation="sigmoid")(x)
    return keras.Model(inputs=base.input, outputs=out)


def chexnet_manifest(weights: Path, sha256: str,
                     preprocessing: Preprocessing | None = None) -> Manifest:
    return {
        "name": "CheXNet (DenseNet121, AI for Medicine C3M3)",
        "version": weights.name,
        "labels": list(LABELS),
        "input": {"height": SIZE, "width": SIZE, "channels": 3},
        "preprocessing": preprocessing or {"kind": "zscore"},
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


def reference_stats(folder: str | Path, size: int = SIZE) -> tuple[float, float, int, int]:
    """(mean, std, images used, files skipped) over the images in `folder`, each loaded as the
    model sees it (default display window, resized bilinearly, grey repeated to 3 channels)."""
    from gradcam_viewer.imaging import ImageLoadError, load_image, model_pixels
    from gradcam_viewer.models.preprocessing import resize_display, to_channels

    d = Path(folder)
    if not d.is_dir():
        raise ModelLoadError(f"The reference images folder '{d.name}' does not exist.")
    files = sorted(q for q in d.iterdir() if q.is_file() and not q.name.startswith("."))
    total = total_sq = 0.0
    count = used = skipped = 0
    for f in files[:MAX_REFERENCE_IMAGES]:
        try:
            pixels = model_pixels(load_image(f))
        except ImageLoadError:
            skipped += 1
            continue
        arr = to_channels(resize_display(pixels, size, size), 3).astype(np.float64)
        total += float(arr.sum())
        total_sq += float(np.square(arr).sum())
        count += arr.size
        used += 1
    if not used:
        raise ModelLoadError(f"The folder '{d.name}' holds no image that can be read "
                             "(PNG, JPEG, TIFF, BMP or DICOM).")
    mean = total / count
    std = float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
    if std < 1e-6:
        raise ModelLoadError(f"The images in '{d.name}' are all one flat grey: no standard "
                             "deviation to normalise with.")
    log.info("reference images: %d used, %d skipped", used, skipped)
    return mean, std, used, skipped


def _stored_preprocessing(p: Path, sha256: str) -> Preprocessing | None:
    """The `fixed` preset of a manifest written beside these weights earlier, if it still fits."""
    from gradcam_viewer.models.manifest import manifest_path_for, read_manifest

    found = manifest_path_for(p)
    if found is None:
        return None
    try:
        stored = read_manifest(found)
    except ModelLoadError:
        return None
    if stored.get("weights_file") != p.name or stored.get("weights_sha256") != sha256:
        return None
    prep = stored["preprocessing"]
    return prep if prep.get("kind") == "fixed" else None


def load_chexnet_weights(path: str | Path,
                         reference_images: str | Path | None = None) -> ModelBundle:
    """Keras 2 legacy `.h5` (model or weights, like the course's `pretrained_model.h5`) or a
    Keras 3 `.weights.h5`, into the preset architecture. `reference_images`: a folder whose
    mean/std normalise every image (stored in `<weights>.json` beside the weights)."""
    from gradcam_viewer.models.bundle import bundle_for
    from gradcam_viewer.models.loaders import exc_summary
    from gradcam_viewer.models.manifest import sha256_of, write_manifest

    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"The weights file '{p.name}' does not exist.")
    notices: list[str] = []
    sha = sha256_of(p)
    if reference_images:
        mean, std, used, skipped = reference_stats(reference_images)
        prep: Preprocessing | None = {
            "kind": "fixed", "mean": round(mean, 4), "std": round(std, 4),
            "reference": {"folder": Path(reference_images).name, "images": used}}
        notices.append(f"CheXNet normalisation: mean {mean:.2f}, std {std:.2f} of {used} "
                       f"reference image(s)" + (f" ({skipped} unreadable file(s) skipped)"
                                                 if skipped else ""))
    else:
        prep = _stored_preprocessing(p, sha)
    model = build_chexnet()
    # Keras warns once per layer it cannot match (hundreds, for another model's weights): they
    # go to the log when the weights load, and are dropped when the error below says it all.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(p)
        except Exception as exc:
            raise ModelLoadError(f"'{p.name}' does not hold weights for the CheXNet DenseNet121 "
                                 f"({exc_summary(exc)}).") from exc
    for warning in caught:
        log.warning("loading the CheXNet weights '%s': %s", p.name, warning.message)
    import keras

    manifest = chexnet_manifest(p, sha, prep)
    bundle = bundle_for(model, manifest, p)
    bundle.loader = f"CheXNet preset built by Keras {keras.__version__}, weights from '{p.name}'"
    if reference_images:  # only weights that load get a manifest
        target = p.with_suffix(".json")
        try:
            write_manifest(target, manifest, overwrite=True)
            notices[-1] += f"; saved in '{target.name}' beside the weights."
        except OSError as exc:
            notices[-1] += (f"; not saved beside the weights ({exc.strerror or type(exc).__name__})"
                            ": give the folder again next time.")
    bundle.notices.extend(notices)
    return bundle

"""A model ready to use: the Keras model, its labels and manifest, and `prepare(image)`.

Everything that can be wrong with a model file is found here, before the viewer switches to it:
a missing or corrupt file, weights without a model, a hash or manifest that does not match, a
model the engine cannot explain. Each is a `ModelLoadError` with a message for the user.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradcam_viewer.models.errors import ModelLoadError
from gradcam_viewer.models.identity import ModelIdentity
from gradcam_viewer.models.loaders import (
    MODEL_SUFFIXES,
    is_saved_model,
    load_keras_model,
    model_location,
)
from gradcam_viewer.models.manifest import (
    Manifest,
    manifest_path_for,
    read_manifest,
    sha256_of,
)
from gradcam_viewer.models.outputs import resolve_output, to_values, values_name
from gradcam_viewer.models.preprocessing import Preprocessing, prepare_pixels

if TYPE_CHECKING:
    import keras

    from gradcam_viewer.imaging import LoadedImage

log = logging.getLogger(__name__)


@dataclass
class ModelBundle:
    model: keras.Model
    labels: list[str]
    manifest: Manifest
    path: Path | None = None
    notices: list[str] = field(default_factory=list)  # things the user should be told
    loader: str = "built in this process"  # how the file was opened (shown in the model card)
    has_manifest: bool = True  # False: a derived default (the GUI offers the set-up dialog)

    @property
    def name(self) -> str:
        return str(self.manifest.get("name") or (self.path.stem if self.path else "model"))

    @property
    def is_demo(self) -> bool:
        return bool(self.manifest.get("synthetic_demo"))

    @property
    def target_layer(self) -> str | None:
        return manifest_target_layer(self.manifest)

    @property
    def output(self) -> str | None:
        """The output that holds the class scores, for a model with several."""
        return self.manifest.get("output") or None

    @property
    def input_size(self) -> tuple[int, int, int]:
        spec = self.manifest["input"]
        return int(spec["height"]), int(spec["width"]), int(spec["channels"])

    @property
    def identity(self) -> ModelIdentity:
        """What the outputs record about this model."""
        return ModelIdentity.of(self.name, self.labels, self.manifest)

    @property
    def output_kind(self) -> str:
        """probabilities, logits (the viewer applies output_activation) or scores."""
        return self.identity.output_kind

    @property
    def values_name(self) -> str:
        """What the shown numbers are called in JSON and CSV: probabilities or scores."""
        return values_name(self.output_kind)

    def values(self, raw: np.ndarray) -> np.ndarray:
        """The model's outputs as shown: probabilities (logits through the activation), or
        the raw scores when nothing says what they are."""
        identity = self.identity
        return to_values(raw, identity.output_kind, identity.output_activation)

    def prepare(self, image: LoadedImage | np.ndarray) -> np.ndarray:
        """A loaded image (its default display pixels) or 8-bit display pixels -> a batch."""
        if isinstance(image, np.ndarray):
            pixels = image
        else:
            from gradcam_viewer.imaging import model_pixels

            pixels = model_pixels(image)
        if pixels.dtype != np.uint8:
            pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
        h, w, c = self.input_size
        colour = str(self.manifest["input"].get("colour", "rgb"))
        return prepare_pixels(pixels, self.manifest["preprocessing"], h, w, c, colour)


def check_model_path(p: Path) -> None:
    """A clear message, before any loading, for a path that is no model file or folder."""
    if is_saved_model(p):
        return
    if not p.is_file():
        raise ModelLoadError(f"The model file '{p.name}' does not exist.")
    if p.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelLoadError(f"'{p.name}' is not a Keras model file (.keras or .h5) or a "
                             "SavedModel folder.")


def load_model_bundle(path: str | Path | None = None) -> ModelBundle:
    """Load a `.keras`/`.h5` model or a Keras 2 SavedModel directory, and its manifest.
    None: the bundled demo model."""
    from gradcam_viewer.resources import demo_model_path

    p = model_location(Path(path)) if path is not None else demo_model_path()
    check_model_path(p)
    manifest_file = manifest_path_for(p)
    manifest = read_manifest(manifest_file) if manifest_file else None
    if manifest is not None:
        named = manifest.get("weights_file")
        if named and named != p.name:
            manifest = None  # a manifest.json for another model file in the same folder
        elif sha256_of(p) != manifest["weights_sha256"]:
            raise ModelLoadError(f"The model file '{p.name}' does not match the SHA-256 in its "
                                 "manifest: it was changed or damaged after the manifest was "
                                 "written.")
    loaded = load_keras_model(p)
    bundle = bundle_for(loaded.model, manifest, p)
    bundle.loader = loaded.loader
    return bundle


def bundle_for(model: keras.Model, manifest: Manifest | None, path: Path | None) -> ModelBundle:
    """Check `model` against `manifest` (or derive one) and that the engine can explain it."""
    from gradcam_viewer.cam import CamError
    from gradcam_viewer.cam.graph import check_model, resolve_target
    from gradcam_viewer.models.suggest import final_activation

    try:
        index = check_model(model, (manifest.get("output") if manifest else None) or None)
    except CamError as exc:
        raise ModelLoadError(str(exc)) from exc
    in_shape = tuple(model.inputs[0].shape)
    n_out = int(model.outputs[index].shape[-1])
    notices: list[str] = []
    has_manifest = manifest is not None
    if manifest is None:
        manifest = _default_manifest(model, path, n_out)
        notices.append("This model has no manifest: its labels are shown as class 0 to "
                       f"class {n_out - 1}, and its input is scaled to [0, 1].")
        if None in in_shape[1:3]:
            spec = manifest["input"]
            notices.append("The model accepts any image size; without a manifest it is fed "
                           f"{spec['height']}\u00d7{spec['width']}.")
    manifest = manifest.copy()
    kind, activation = resolve_output(final_activation(model, index), manifest,
                                      has_manifest)
    manifest["output_kind"], manifest["output_activation"] = kind, activation
    if kind == "scores":
        ending = "a linear layer" if activation == "none" else "an unknown activation"
        notices.append(f"The model ends in {ending} and nothing says how its outputs "
                       "become probabilities: they are shown as scores (not probabilities). "
                       "Say so in its manifest (output_kind \"logits\" and output_activation "
                       "sigmoid or softmax; CLI: gradcam-viewer manifest ... --activation).")
    labels = list(manifest["labels"])
    if len(labels) != n_out:
        raise ModelLoadError(f"The manifest lists {len(labels)} labels but the model has "
                             f"{n_out} outputs.")
    spec = manifest["input"]
    expected = (spec.get("height"), spec.get("width"), spec.get("channels"))
    for got, want, what in zip(in_shape[1:], expected, ("height", "width", "channels"),
                               strict=True):
        if got is not None and want is not None and int(got) != int(want):
            raise ModelLoadError(f"The manifest says input {what} {want}, the model has {got}.")
    _check_per_channel(manifest["preprocessing"], int(in_shape[3] or spec["channels"]))
    try:
        resolve_target(model, manifest_target_layer(manifest))
    except CamError as exc:
        raise ModelLoadError(str(exc)) from exc
    return ModelBundle(model=model, labels=labels, manifest=manifest, path=path, notices=notices,
                       has_manifest=has_manifest)


def _check_per_channel(prep: Preprocessing, channels: int) -> None:
    """A per-channel mean/std must have one value or one per input channel: numpy would
    otherwise broadcast three means over a grey model's one channel into a 3-channel input."""
    for key, value in (("mean", prep.get("mean", 0)), ("std", prep.get("std", 0))):
        size = np.size(value)
        if size not in (1, channels):
            raise ModelLoadError(f"The manifest's preprocessing {key} has {size} values but the "
                                 f"model's input has {channels} channel(s).")


def _default_manifest(model: keras.Model, path: Path | None, n_out: int) -> Manifest:
    shape = tuple(model.inputs[0].shape)
    return {
        "name": path.stem if path else model.name,
        "version": "unknown",
        "labels": [f"class {i}" for i in range(n_out)],
        "input": {"height": shape[1] or 224, "width": shape[2] or 224, "channels": shape[3] or 3},
        "preprocessing": {"kind": "unit"},
        "target_layer": "auto",
        "output_activation": "unknown",
        "trained_on": "unknown (no manifest)",
        "metrics": {},
        "intended_use": "unknown (no manifest)",
        "disclaimer": "No manifest: nothing is known about this model's training or validity.",
        "weights_sha256": None,
    }


def manifest_target_layer(manifest: Manifest) -> str | None:
    """The manifest's target layer, or None for "choose automatically" ("auto", empty, absent)."""
    layer = manifest.get("target_layer", "auto")
    return None if layer in (None, "", "auto") else str(layer)

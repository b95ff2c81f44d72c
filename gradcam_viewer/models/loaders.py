"""Open a Keras model saved in any format users have, always as a Keras 3 model, safe_mode on.

- `.keras` (Keras 3, any 3.x) and `.h5`/`.hdf5` (Keras 3 or Keras 2 / tf_keras legacy HDF5):
  `keras.models.load_model`, which converts Keras 2 configs itself.
- A Keras 2 SavedModel directory (or its `saved_model.pb`): Keras 3 cannot read it, so tf_keras
  loads it, writes it to a temporary legacy HDF5 file, and Keras 3 loads that. The engine then
  sees an ordinary Keras 3 model rebuilt from the saved config and weights, and the SavedModel's
  own TensorFlow graph is never run.

safe_mode: Keras 3 refuses a `Lambda` layer in `.keras` and `.h5`. tf_keras would deserialize a
Lambda's Python bytecode from a SavedModel even with safe_mode on, so the SavedModel's Keras
metadata is read first and a Lambda anywhere in it is refused before tf_keras sees the file.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gradcam_viewer.models.errors import ModelLoadError

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
LAMBDA_REFUSED = ("'{name}' contains a Lambda layer (arbitrary Python code). Lambda layers are "
                  "refused for safety; re-save the model with the Lambda replaced by a "
                  "built-in or registered layer.")


@dataclass(frozen=True)
class LoadedModel:
    model: keras.Model
    loader: str  # shown in the model card, e.g. "Keras 3.15.1, .keras file"


def is_saved_model(path: Path) -> bool:
    """A SavedModel directory, or the `saved_model.pb` inside one."""
    return (path.is_dir() and (path / "saved_model.pb").is_file()) or \
        (path.name == "saved_model.pb" and path.is_file())


def model_location(path: Path) -> Path:
    """The SavedModel directory for its `saved_model.pb`; any other path unchanged."""
    return path.parent if path.name == "saved_model.pb" else path


def load_keras_model(path: Path) -> LoadedModel:
    """Any supported format to a Keras 3 model; a ModelLoadError with a message otherwise."""
    path = model_location(path)
    if is_saved_model(path):
        return _load_saved_model(path)
    import keras

    suffix = path.suffix.lower()
    if suffix == ".keras":
        writer = _keras_archive_version(path)
        loader = f"Keras {keras.__version__}, .keras file" + (f" saved by Keras {writer}"
                                                               if writer else "")
    else:
        writer = _h5_keras_version(path)
        loader = f"Keras {keras.__version__}, legacy HDF5" + (f" saved by Keras {writer}"
                                                              if writer else "")
    try:
        if suffix != ".keras" and writer and writer.startswith("2."):
            model = _load_keras2_h5(path)
        else:
            model = keras.models.load_model(path, compile=False, safe_mode=True)
    except ModelLoadError:
        raise
    except Exception as exc:
        log.debug("keras could not load %s", path.name, exc_info=True)
        raise _load_error(path, exc) from exc
    return LoadedModel(model, loader)


NESTED_MODEL_CLASSES = ("Functional", "Model", "Sequential")


def repair_keras2_config(config: object, top: bool = True) -> int:
    """Two things Keras 3's legacy HDF5 loader gets wrong in a Keras 2 config with a nested
    model (the usual transfer-learning base), both repaired here in place:

    - Keras 2 numbered the calls of a nested model from 1 (its node 0 was its own graph),
      Keras 3 from 0, and references in `inbound_nodes` are not shifted ("nodes failed to be
      resolved");
    - a nested model's single input/output is written as a one-element list, which Keras 3
      keeps as a list, so the next layer of a Sequential receives a list ("expects 1 input(s),
      but it received 2 input tensors").

    Also drops `groups: 1` from DepthwiseConv2D (Keras 2 wrote it, Keras 3 refuses it: every
    Keras 2 MobileNet). Returns how many changes were made (0: load the file as it is)."""
    changes = 0
    if isinstance(config, dict):
        inner = config.get("config")
        if config.get("class_name") == "DepthwiseConv2D" and isinstance(inner, dict) \
                and inner.get("groups") == 1:
            del inner["groups"]
            changes += 1
        if isinstance(inner, dict) and isinstance(inner.get("layers"), list):
            nested = {layer.get("name") or layer.get("config", {}).get("name")
                      for layer in inner["layers"]
                      if isinstance(layer, dict) and layer.get("class_name") in NESTED_MODEL_CLASSES}
            for layer in inner["layers"]:
                for node in (layer.get("inbound_nodes") or []) if isinstance(layer, dict) else []:
                    for ref in node if isinstance(node, list) else []:
                        if (isinstance(ref, list) and len(ref) >= 3 and ref[0] in nested
                                and isinstance(ref[1], int) and ref[1] >= 1):
                            ref[1] -= 1
                            changes += 1
            for key in ("input_layers", "output_layers"):
                refs = inner.get(key)
                if not top and isinstance(refs, list) and len(refs) == 1 \
                        and isinstance(refs[0], list):
                    inner[key] = refs[0]
                    changes += 1
            for layer in inner["layers"]:
                changes += repair_keras2_config(layer, top=False)
            return changes
        for value in config.values():
            changes += repair_keras2_config(value, top)
    elif isinstance(config, list):
        for value in config:
            changes += repair_keras2_config(value, top)
    return changes


def _load_keras2_h5(path: Path) -> keras.Model:
    """A Keras 2 HDF5 model; with nested models, through a temporary copy with the config
    repaired (the user's file is only read)."""
    import shutil

    import h5py
    import keras

    with h5py.File(path, "r") as f:
        raw = f.attrs.get("model_config")
    if raw is None:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    if not repair_keras2_config(config):
        return keras.models.load_model(path, compile=False, safe_mode=True)
    with tempfile.TemporaryDirectory(prefix="gradcam-viewer-") as tmp:
        copy = Path(tmp) / "keras2.h5"
        shutil.copyfile(path, copy)
        with h5py.File(copy, "r+") as f:
            f.attrs["model_config"] = json.dumps(config).encode()
        return keras.models.load_model(copy, compile=False, safe_mode=True)


def exc_summary(exc: Exception) -> str:
    """`Type: first line` of an exception (at most 160 characters), for a one-line message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0][:160] if text else ''}"


def _load_error(path: Path, exc: Exception) -> ModelLoadError:
    text = str(exc)
    if "Lambda" in text and "safe_mode" in text:
        return ModelLoadError(LAMBDA_REFUSED.format(name=path.name))
    if path.suffix.lower() in (".h5", ".hdf5") and _is_weights_only_h5(path):
        return ModelLoadError(f"'{path.name}' holds weights only, not a model. If these are "
                              "CheXNet weights, use 'Open CheXNet weights...' "
                              "(CLI: --chexnet-weights).")
    return ModelLoadError(f"'{path.name}' is not a Keras model that can be opened "
                          f"({exc_summary(exc)}).")


def _keras_archive_version(path: Path) -> str | None:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return str(json.loads(archive.read("metadata.json")).get("keras_version")) or None
    except Exception:  # noqa: BLE001 - a damaged archive, of any kind: the load says what is wrong
        return None


def _h5_keras_version(path: Path) -> str | None:
    try:
        import h5py

        with h5py.File(path, "r") as f:
            version = f.attrs.get("keras_version")
        return version.decode() if isinstance(version, bytes) else (str(version) or None)
    except Exception:  # noqa: BLE001 - h5py raises many kinds on damage: the load says what
        return None


def _is_weights_only_h5(p: Path) -> bool:
    try:
        import h5py

        with h5py.File(p, "r") as f:
            return "model_config" not in f.attrs
    except Exception:  # noqa: BLE001 - h5py raises many kinds on damage: not weights then
        return False


# --- Keras 2 SavedModel ---------------------------------------------------------------------

def saved_model_classes(directory: Path) -> set[str]:
    """Every layer class named anywhere in the SavedModel's Keras metadata (nested too)."""
    from tf_keras.protobuf import saved_metadata_pb2

    meta_file = directory / "keras_metadata.pb"
    if not meta_file.is_file():
        raise ModelLoadError(f"'{directory.name}' is a TensorFlow SavedModel without Keras "
                             "metadata (not saved by Keras), so it cannot be opened as a Keras "
                             "model.")
    meta = saved_metadata_pb2.SavedMetadata()
    meta.ParseFromString(meta_file.read_bytes())
    classes: set[str] = set()

    def walk(obj: object) -> None:
        if isinstance(obj, dict):
            if isinstance(obj.get("class_name"), str):
                classes.add(obj["class_name"])
            for value in obj.values():
                walk(value)
        elif isinstance(obj, list):
            for value in obj:
                walk(value)

    for node in meta.nodes:
        walk(json.loads(node.metadata or "{}"))
    return classes


def _load_saved_model(directory: Path) -> LoadedModel:
    try:
        import tf_keras
    except ImportError as exc:
        raise ModelLoadError(f"'{directory.name}' is a Keras 2 SavedModel; opening it needs the "
                             "tf_keras package, which is not installed.") from exc
    import keras

    if "Lambda" in saved_model_classes(directory):
        raise ModelLoadError(LAMBDA_REFUSED.format(name=directory.name))
    try:
        legacy = tf_keras.models.load_model(directory, compile=False, safe_mode=True)
    except Exception as exc:
        log.debug("tf_keras could not load %s", directory.name, exc_info=True)
        raise ModelLoadError(f"The SavedModel '{directory.name}' cannot be opened "
                             f"({exc_summary(exc)}).") from exc
    if not isinstance(legacy, tf_keras.Model) or not hasattr(legacy, "get_config"):
        raise ModelLoadError(f"The SavedModel '{directory.name}' holds no Keras model.")
    with tempfile.TemporaryDirectory(prefix="gradcam-viewer-") as tmp:
        h5 = Path(tmp) / "converted.h5"
        try:
            with warnings.catch_warnings():  # the legacy format is the point: no advice
                warnings.filterwarnings("ignore", "You are saving your model as an HDF5 file")
                legacy.save(h5, save_format="h5")
            model = _load_keras2_h5(h5)
        except Exception as exc:
            log.debug("converting %s failed", directory.name, exc_info=True)
            raise ModelLoadError(f"The SavedModel '{directory.name}' could not be rebuilt as a "
                                 f"Keras 3 model ({exc_summary(exc)}).") from exc
    return LoadedModel(model, f"tf_keras {tf_keras.__version__} SavedModel, rebuilt as Keras "
                              f"{keras.__version__} from its config and weights")

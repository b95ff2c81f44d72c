"""The questions File > Open... asks: which images, folder, model or CheXNet weights."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

IMAGES = "Images (*.dcm *.dicom *.png *.jpg *.jpeg *.tif *.tiff *.bmp);;All files (*)"
MODELS = "Keras models (*.keras *.h5 *.hdf5 saved_model.pb)"


def images(parent: QWidget, start: str) -> list[Path]:
    names, _ = QFileDialog.getOpenFileNames(parent, "Open images", start, IMAGES)
    return [Path(n) for n in names]


def folder(parent: QWidget, start: str) -> list[Path]:
    """The folder chosen, as a list like `images` (empty: cancelled)."""
    name = QFileDialog.getExistingDirectory(parent, "Open folder", start)
    return [Path(name)] if name else []


def model(parent: QWidget, start: str) -> tuple[str, ...]:
    """`MainWindow.load_model`'s arguments for the Keras model chosen (empty: cancelled)."""
    name, _ = QFileDialog.getOpenFileName(parent, "Open Keras model", start, MODELS)
    return ("keras", name) if name else ()


def chexnet(parent: QWidget, start: str) -> tuple[str, ...]:
    """`MainWindow.load_model`'s arguments: the weights, and the optional folder whose
    mean/std normalise (Cancel: "", per-image z-score). Empty: cancelled."""
    name, _ = QFileDialog.getOpenFileName(parent, "Open CheXNet weights", start,
                                          "Weights (*.h5 *.hdf5)")
    if not name:
        return ()
    reference = QFileDialog.getExistingDirectory(
        parent, "Reference images for the mean/std (Cancel: per-image z-score)",
        str(Path(name).parent))
    return "chexnet", name, reference

"""Display pixels: the VOI transform (pydicom's own functions), then optional inversion.

For whole-number pixels the window is evaluated once per possible value and applied as a lookup
table, which gives the same numbers as windowing every pixel but fast enough for live
window/level dragging on a 3000x3000 radiograph.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_voi, apply_windowing

from gradcam_viewer.imaging.image import LoadedImage, VoiLuts, Window


def _window_dataset(window: Window) -> Dataset:
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored = 8  # output range 0..255: the display values directly
    ds.PixelRepresentation = 0
    ds.WindowCenter = float(window.center)
    ds.WindowWidth = max(float(window.width), 1e-6)
    ds.VOILUTFunction = window.function
    return ds


def apply_window(values: np.ndarray, window: Window, voi_luts: VoiLuts | None) -> np.ndarray:
    """Window `values` to floats in [0, 255]."""
    if window.lut_index is not None and voi_luts is not None:
        out = apply_voi(values, voi_luts.dataset, index=window.lut_index)
        bits = voi_luts.bits[window.lut_index]
        return out.astype(np.float64) * (255.0 / float((1 << bits) - 1))
    if window.function == "LINEAR" and window.width < 1:
        window = Window(window.center, 1.0, window.explanation, window.function)
    return apply_windowing(np.asarray(values, dtype=np.float64), _window_dataset(window))


def to_display(image: LoadedImage, window: Window | None = None,
               invert: bool | None = None) -> np.ndarray:
    """8-bit pixels, [H, W] for grey or [H, W, 3] for colour. Those of the file's own window
    and inversion are kept on the image (read-only): the model and the screen both need them."""
    default = (window is None or window == image.window) and (invert in (None, image.invert))
    if default and image.default_display is not None:
        return image.default_display
    out = _display(image, window, invert)
    if default:
        out.setflags(write=False)
        image.default_display = out
    return out


def _display(image: LoadedImage, window: Window | None, invert: bool | None) -> np.ndarray:
    invert = image.invert if invert is None else invert
    if image.is_color:
        out = _color_to_8bit(image.pixels)
    else:
        window = window or image.window or full_range_window(image)
        indexed = image.indexed_pixels
        if indexed is not None:
            index, lo = indexed
            lut = apply_window(np.arange(lo, lo + int(index.max()) + 1), window, image.voi_luts)
            out = _to_uint8(lut)[index]
        else:
            out = _to_uint8(apply_window(image.pixels, window, image.voi_luts))
    return 255 - out if invert else out


def model_pixels(image: LoadedImage) -> np.ndarray:
    """What the model sees: the display pixels of the file's default window and inversion."""
    return to_display(image)


def full_range_window(image: LoadedImage) -> Window:
    return full_range(*image.value_range)


def full_range(lo: float, hi: float) -> Window:
    """The window over all values from `lo` to `hi` (the one place it is built)."""
    return Window(center=(lo + hi) / 2.0, width=max(hi - lo, 1.0), explanation="Full range",
                  function="LINEAR_EXACT")


def stored_values(top: float = 255.0) -> Window:
    """The window showing stored values 0..`top` as they are (8-bit grey)."""
    return Window(top / 2.0, top, "Stored values", "LINEAR_EXACT")


def _to_uint8(values: np.ndarray) -> np.ndarray:
    grey: np.ndarray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return grey


def _color_to_8bit(pixels: np.ndarray) -> np.ndarray:
    """Colour pixels arrive in 0..255: the loaders scale deeper colour by its Bits Stored."""
    return _to_uint8(pixels)

"""PNG, JPEG, TIFF and BMP through Pillow."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from gradcam_viewer.imaging.display import full_range, stored_values
from gradcam_viewer.imaging.errors import ImageLoadError
from gradcam_viewer.imaging.image import LoadedImage

MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"BM": "BMP",
}


def sniff_raster(head: bytes) -> str | None:
    for magic, name in MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def load_raster(path: Path, frame: int, max_pixels: int) -> LoadedImage:
    try:
        return _load_raster(path, frame, max_pixels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(path, f"{_too_big_text(exc)}") from exc


def _too_big_text(exc: Exception) -> str:
    return ("the image has more pixels than this program opens (it looks like a "
            f"decompression bomb: {exc}); the limit is set in megapixels.")


def _load_raster(path: Path, frame: int, max_pixels: int) -> LoadedImage:
    with warnings.catch_warnings():
        # Pillow's notes on damaged metadata (the pixels load) are not for the console.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as im:  # Pillow opens files read-only
            width, height = im.size
            if width * height > max_pixels:
                raise ImageLoadError(path, _too_big(width, height, max_pixels))
            n_frames = int(getattr(im, "n_frames", 1) or 1)
            if not 0 <= frame < n_frames:
                raise ImageLoadError(path, f"it has {n_frames} frame(s); frame {frame + 1} "
                                           "does not exist.")
            if frame:
                im.seek(frame)
            fmt = im.format or "image"
            pixels, bits = _pixels(ImageOps.exif_transpose(im))
    integral = pixels.dtype.kind in "iub"
    pixels = pixels.astype(np.float32)
    if pixels.ndim == 3 and _is_grey(pixels):
        pixels = np.ascontiguousarray(pixels[..., 0])
    window = None
    if pixels.ndim == 2:
        if bits <= 8:
            window = stored_values()
        else:
            window = full_range(float(pixels.min()), float(pixels.max()))
    return LoadedImage(path=path, pixels=pixels, source_format=fmt, window=window,
                       presets=[window] if window else [], n_frames=n_frames, frame=frame,
                       integral=integral)


def _pixels(im: Image.Image) -> tuple[np.ndarray, int]:
    mode = im.mode
    if mode in ("1", "L"):
        return np.asarray(im.convert("L")), 8
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im).astype(np.uint16), 16
    if mode in ("I", "F"):
        arr = np.asarray(im)
        return arr, 32
    if mode in ("LA", "La"):
        return np.asarray(im.convert("L")), 8
    if mode == "P":
        return np.asarray(im.convert("RGB")), 8
    if mode in ("RGBA", "RGBa"):
        return _flatten_alpha(np.asarray(im.convert("RGBA"))), 8
    return np.asarray(im.convert("RGB")), 8


def _flatten_alpha(rgba: np.ndarray) -> np.ndarray:
    """Composite over black (radiograph background); opaque images come through unchanged."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    if np.all(alpha == 1.0):
        return rgba[..., :3]
    flat: np.ndarray = np.rint(rgba[..., :3] * alpha).astype(np.uint8)
    return flat


def _is_grey(pixels: np.ndarray) -> bool:
    return bool(np.array_equal(pixels[..., 0], pixels[..., 1])
                and np.array_equal(pixels[..., 0], pixels[..., 2]))


def _too_big(width: int, height: int, limit: int) -> str:
    return (f"the image is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels), "
            f"more than the {limit / 1e6:.0f} megapixels this program opens.")

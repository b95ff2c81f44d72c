"""Heatmaps for display: normalise, then upsample. numpy and Pillow only (no TensorFlow), so
the GUI thread can call it.

The convention follows the AI for Medicine course's `compute_gradcam`: ReLU (already applied by
the engine), divide by the maximum, then bilinear upsampling with half-pixel centres, which is
what `tf.image.resize(method="bilinear")` does and what Pillow's BILINEAR filter does when it
enlarges (the tests hold the two equal).
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def normalize_heatmaps(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide each map (last two axes) by its maximum.

    Returns the maps in [0, 1] and a boolean array telling which maps had any positive
    evidence; a map without any is all zeros, never NaN.
    """
    raw = np.asarray(raw, dtype=np.float32)
    peak = raw.max(axis=(-2, -1), keepdims=True) if raw.size else raw
    has = peak > 0
    safe = np.where(has, peak, 1.0)
    maps = np.where(has, np.maximum(raw, 0) / safe, 0.0).astype(np.float32)
    return maps, has[..., 0, 0]


def upsample_heatmap(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear, half-pixel centres, to `size` = (height, width). float32 in, float32 out."""
    h, w = size
    src = np.ascontiguousarray(heatmap, dtype=np.float32)
    if src.shape == (h, w):
        return src.copy()
    if h < src.shape[0] or w < src.shape[1]:
        # Shrinking: Pillow would antialias, tf.image.resize does not. Use the plain formula.
        return _bilinear_numpy(src, h, w)
    img = Image.fromarray(src, mode="F")
    return np.asarray(img.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)


def _bilinear_numpy(src: np.ndarray, h: int, w: int) -> np.ndarray:
    """Half-pixel-centre bilinear sampling with edge clamping (tf.image.resize semantics)."""
    sh, sw = src.shape

    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        c = np.clip(c, 0, n_in - 1)
        lo = np.floor(c).astype(np.intp)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (c - lo).astype(np.float32)

    y0, y1, fy = axis(h, sh)
    x0, x1, fx = axis(w, sw)
    top = src[y0][:, x0] * (1 - fx) + src[y0][:, x1] * fx
    bottom = src[y1][:, x0] * (1 - fx) + src[y1][:, x1] * fx
    out: np.ndarray = (top * (1 - fy)[:, None] + bottom * fy[:, None]).astype(np.float32)
    return out

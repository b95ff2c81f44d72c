"""Heatmap over image: alpha compositing with a threshold and an optional contour-only mode.

Opacity 0 returns the display pixels unchanged, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gradcam_viewer.render.colormaps import DEFAULT_COLORMAP, colormap_lut


@dataclass(frozen=True)
class OverlayStyle:
    opacity: float = 0.45  # 0..1
    colormap: str = DEFAULT_COLORMAP
    threshold: float = 0.2  # heatmap values below it are not drawn (0..1)
    contours: bool = False  # draw iso-lines instead of a filled map
    contour_levels: tuple[float, ...] = (0.25, 0.5, 0.75)


def as_rgb(display: np.ndarray) -> np.ndarray:
    return np.repeat(display[..., None], 3, axis=-1) if display.ndim == 2 else display


def heat_rgba(heatmap: np.ndarray, style: OverlayStyle) -> np.ndarray:
    """The coloured heatmap, alpha 255 where it is drawn (above threshold, or on a contour)."""
    heat = np.clip(np.nan_to_num(heatmap, nan=0.0), 0.0, 1.0)
    index = np.rint(heat * 255).astype(np.uint8)
    rgba = np.empty(heat.shape + (4,), np.uint8)
    rgba[..., :3] = colormap_lut(style.colormap)[index]
    drawn = heat >= style.threshold
    if style.contours:
        drawn &= contour_mask(heat, style.contour_levels)
    rgba[..., 3] = drawn * np.uint8(255)
    return rgba


def effective_opacity(style: OverlayStyle) -> float:
    """Contour lines need more ink than filled areas."""
    return min(1.0, style.opacity * 2.0) if style.contours else float(style.opacity)


def composite(display: np.ndarray, heatmap: np.ndarray, style: OverlayStyle) -> np.ndarray:
    """display: uint8 [H, W] or [H, W, 3]; heatmap: float [H, W] in [0, 1]. -> uint8 RGB."""
    if style.opacity <= 0:
        return as_rgb(display).copy()
    if display.ndim == 2 and display.dtype == np.uint8:
        return _composite_grey(display, heatmap, style)
    base = as_rgb(display)
    rgba = heat_rgba(heatmap, style)
    a = (rgba[..., 3:4].astype(np.float32) / 255.0) * effective_opacity(style)
    out = base.astype(np.float32) * (1 - a) + rgba[..., :3].astype(np.float32) * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _composite_grey(display: np.ndarray, heatmap: np.ndarray, style: OverlayStyle) -> np.ndarray:
    """The blend above for a grey image as one table lookup per pixel (batch export spends
    most of its time here): every output pixel depends only on its grey value and colour index,
    so the formula is evaluated once for all 256 x 256 pairs, with the same float32 arithmetic,
    plus a column for pixels that are not drawn. Same bytes as the general path."""
    heat = np.fmax(heatmap, np.float32(0.0))  # fmax: NaN -> 0, as nan_to_num then clip
    np.fmin(heat, np.float32(1.0), out=heat)
    drawn = heat >= style.threshold
    if style.contours:
        drawn &= contour_mask(heat, style.contour_levels)
    np.multiply(heat, np.float32(255), out=heat)  # in place: heat is ours (fmax made it)
    flat = np.rint(heat, out=heat).astype(np.int32)
    np.copyto(flat, np.int32(256), where=~drawn)
    flat += display.astype(np.int32) * 257
    flat = np.ascontiguousarray(flat)  # (views of transposed images come in F order)
    packed = np.take(_blend_table(style.colormap, effective_opacity(style)), flat)  # RGBX
    h, w = display.shape
    rgbx = packed.view(np.uint8).reshape(h, w, 4)
    rgb = np.empty((h, w, 3), np.uint8)
    for c in range(3):  # a plane at a time: ~5x faster than one copy of the [..., :3] view
        rgb[..., c] = rgbx[..., c]
    return rgb


@lru_cache(maxsize=8)
def _blend_table(colormap: str, opacity: float) -> np.ndarray:
    """Entry g * 257 + i: grey g under colour i (i = 256: not drawn), as RGBX in a uint32."""
    grey = np.repeat(np.arange(256, dtype=np.uint8), 257)[:, None]
    index = np.tile(np.arange(257), 256)
    rgba = np.zeros((256 * 257, 4), np.uint8)
    rgba[:, :3] = colormap_lut(colormap)[np.minimum(index, 255)]
    rgba[:, 3] = np.where(index < 256, 255, 0)
    a = (rgba[:, 3:4].astype(np.float32) / 255.0) * opacity
    out = (np.repeat(grey, 3, axis=1).astype(np.float32) * (1 - a)
           + rgba[:, :3].astype(np.float32) * a)
    rgbx = np.zeros((256 * 257, 4), np.uint8)
    rgbx[:, :3] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return rgbx.view(np.uint32).ravel()  # one 4-byte gather per pixel instead of three


def contour_mask(heat: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    """Pixels where the map crosses a level between a pixel and its right or lower neighbour."""
    mask = np.zeros(heat.shape, bool)
    for level in levels:
        above = heat >= level
        edge = np.zeros_like(above)
        edge[:, :-1] |= above[:, :-1] != above[:, 1:]
        edge[:-1, :] |= above[:-1, :] != above[1:, :]
        mask |= edge
    # thicken to two pixels so the line survives zooming out
    thick = mask.copy()
    thick[1:, :] |= mask[:-1, :]
    thick[:, 1:] |= mask[:, :-1]
    return thick


def colorbar(height: int, width: int, colormap: str) -> np.ndarray:
    """A vertical colour bar, 1 at the top: uint8 [height, width, 3]."""
    lut = colormap_lut(colormap)
    ramp = np.rint(np.linspace(255, 0, height)).astype(np.uint8)
    return np.repeat(lut[ramp][:, None, :], width, axis=1)

"""256-entry RGB lookup tables from the `cmap` library (BSD; no matplotlib needed)."""

from __future__ import annotations

from functools import cache

import numpy as np

DEFAULT_COLORMAP = "inferno"  # perceptually uniform, dark at zero: good over a grey image
# name shown -> cmap catalogue name
COLORMAPS = {
    "inferno": "inferno",
    "viridis": "viridis",
    "magma": "magma",
    "turbo": "turbo",
    "jet": "jet",
}


@cache
def colormap_lut(name: str) -> np.ndarray:
    """uint8 [256, 3]."""
    from cmap import Colormap

    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap '{name}'")
    rgba = Colormap(COLORMAPS[name]).lut(256)
    return np.clip(np.rint(np.asarray(rgba)[:, :3] * 255), 0, 255).astype(np.uint8)

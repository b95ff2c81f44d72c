"""Colormaps and compositing of heatmaps over display pixels. numpy only (no Qt, no TF)."""

from gradcam_viewer.render.colormaps import COLORMAPS, DEFAULT_COLORMAP, colormap_lut
from gradcam_viewer.render.overlay import (
                                           OverlayStyle,
                                           colorbar,
                                           composite,
                                           effective_opacity,
                                           heat_rgba,
)

__all__ = ["COLORMAPS", "DEFAULT_COLORMAP", "OverlayStyle", "colorbar", "colormap_lut",
           "composite", "effective_opacity", "heat_rgba"]

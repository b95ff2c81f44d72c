"""Grad-CAM engine. No Qt here.

`Explainer` imports TensorFlow, so it is loaded lazily: the GUI imports `cam.heatmap` (numpy
only) on its own thread without pulling TensorFlow in.
"""

from typing import TYPE_CHECKING

from gradcam_viewer.cam.errors import CamError
from gradcam_viewer.cam.heatmap import normalize_heatmaps, upsample_heatmap
from gradcam_viewer.cam.methods import METHODS

if TYPE_CHECKING:
    from gradcam_viewer.cam.explainer import Explainer, Explanation

__all__ = ["CamError", "Explainer", "Explanation", "METHODS", "normalize_heatmaps",
           "upsample_heatmap"]


def __getattr__(name: str) -> object:
    if name in ("Explainer", "Explanation"):
        from gradcam_viewer.cam import explainer

        return getattr(explainer, name)
    raise AttributeError(name)

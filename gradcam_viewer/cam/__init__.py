"""Grad-CAM engine. No Qt here.

`Explainer` imports TensorFlow, so it is loaded lazily: the GUI imports `cam.heatmap` and
`cam.result` (numpy only) on its own thread without pulling TensorFlow in.
"""

from typing import TYPE_CHECKING

from gradcam_viewer.cam.errors import CamError
from gradcam_viewer.cam.heatmap import normalize_heatmaps, upsample_heatmap
from gradcam_viewer.cam.methods import METHODS
from gradcam_viewer.cam.result import ExplainResult, Explanation

if TYPE_CHECKING:
    from gradcam_viewer.cam.explainer import Explainer

__all__ = ["CamError", "ExplainResult", "Explainer", "Explanation", "METHODS",
           "normalize_heatmaps", "upsample_heatmap"]


def __getattr__(name: str) -> object:
    if name == "Explainer":
        from gradcam_viewer.cam import explainer

        return getattr(explainer, name)
    raise AttributeError(name)

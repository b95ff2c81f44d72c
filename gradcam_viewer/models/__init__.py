"""Models: a Keras file plus its manifest, presets, and the preprocessing. No Qt.

`load_model_bundle(path=None)` (None: the bundled demo model) returns a `ModelBundle` with
`model`, `labels`, `manifest` and `prepare(image)`.
"""

from gradcam_viewer.models.bundle import ModelBundle, load_model_bundle
from gradcam_viewer.models.errors import ModelLoadError

__all__ = ["ModelBundle", "ModelLoadError", "load_model_bundle"]

"""Kept for imports from before the session package: the plain-data classes live in
`gradcam_viewer.session`."""

from gradcam_viewer.session.files import FileList
from gradcam_viewer.session.results import ExplainResult, ModelInfo, ResultCache

__all__ = ["ExplainResult", "FileList", "ModelInfo", "ResultCache"]

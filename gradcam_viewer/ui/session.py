"""Kept for imports from before the session package: the plain-data classes live in
`gradcam_viewer.session`."""

from gradcam_viewer.session.files import IMAGE_SUFFIXES, FileList, expand_paths
from gradcam_viewer.session.results import ExplainResult, ModelInfo, ResultCache

__all__ = ["ExplainResult", "FileList", "IMAGE_SUFFIXES", "ModelInfo", "ResultCache",
           "expand_paths"]

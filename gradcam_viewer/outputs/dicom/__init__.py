"""DICOM results for a PACS: Secondary Capture, Parametric Map and TID 1500 structured report,
built with highdicom from an explained image. No Qt here; the window and the command share it."""

from gradcam_viewer.outputs.dicom.burnin import burn_in, burn_in_lines
from gradcam_viewer.outputs.dicom.objects import (DicomExportError, Explained, build_objects,
                                              explained_image, first_object_name,
                                              write_objects)

__all__ = ["DicomExportError", "Explained", "build_objects", "burn_in", "burn_in_lines",
           "explained_image", "first_object_name", "write_objects"]

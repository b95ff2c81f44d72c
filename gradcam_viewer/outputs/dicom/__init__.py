"""DICOM results for a PACS: Secondary Capture, Parametric Map and TID 1500 structured report,
built with highdicom from an explained image (objects.py), and the DICOM part of an `explain`
run (run.py). No Qt here; the window and the command share it."""

from gradcam_viewer.outputs.dicom.burnin import burn_in, burn_in_lines
from gradcam_viewer.outputs.dicom.objects import (
                                                  DicomExport,
                                                  DicomExportError,
                                                  build_objects,
                                                  first_object_name,
                                                  write_objects,
)

__all__ = ["DicomExport", "DicomExportError", "build_objects", "burn_in", "burn_in_lines",
           "first_object_name", "write_objects"]

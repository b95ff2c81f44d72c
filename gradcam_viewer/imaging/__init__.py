"""Files to pixels and metadata. No Qt, no TensorFlow.

`load_image(path, frame=0)` tells the format by content, never by extension, and returns a
`LoadedImage`; every failure is an `ImageLoadError` whose message names the file and the reason.
`scan(paths)` finds the images in files, folders and DICOMDIR media, in reading order.
`to_display` turns an image into the 8-bit pixels both the screen and the model see.
"""

from gradcam_viewer.imaging.display import model_pixels, to_display
from gradcam_viewer.imaging.errors import ImageLoadError
from gradcam_viewer.imaging.image import LoadedImage, MetaField, Window
from gradcam_viewer.imaging.loader import MAX_PIXELS, load_image
from gradcam_viewer.imaging.scanner import ScanResult, scan, scan_media

__all__ = ["ImageLoadError", "LoadedImage", "MAX_PIXELS", "MetaField", "ScanResult", "Window",
           "load_image", "model_pixels", "scan", "scan_media", "to_display"]

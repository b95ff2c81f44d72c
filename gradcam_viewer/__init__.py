"""gradcam-viewer: chest radiographs with the Grad-CAM heatmaps of a Keras classifier."""

__version__ = "0.1.0"

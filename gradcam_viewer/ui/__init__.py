"""The Qt layer: widgets, the main window and the background worker. Only this package imports
Qt; TensorFlow is imported by the worker thread alone."""

"""The Qt layer: widgets, the main window and the background worker. Only this package imports
Qt; TensorFlow is imported off the GUI thread (ui/preload.py, the worker)."""

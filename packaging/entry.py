"""PyInstaller entry point: the same main() as the console script."""

import multiprocessing
import os
import sys

# A windowed Windows program (gradcam-viewer.exe, started from the Start menu, Explorer or a
# file association) has no standard streams: sys.stdout and sys.stderr are None, and the
# headless commands' messages would raise AttributeError. They go nowhere instead; the log file
# keeps the details, and gradcam-viewer-cli.exe is the console program for the commands.
if sys.stdout is None:
    sys.stdout = open(os.devnull, "w", encoding="utf-8")
if sys.stderr is None:
    sys.stderr = open(os.devnull, "w", encoding="utf-8")

from gradcam_viewer.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())

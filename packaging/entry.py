"""PyInstaller entry point: the same main() as the console script."""

import multiprocessing
import sys

from gradcam_viewer.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())

"""Where the bundled resources (demo model, samples, icons) live: the source tree, an installed
bundle (PyInstaller sets sys._MEIPASS), or a folder named by GRADCAM_VIEWER_RESOURCES."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    env = os.environ.get("GRADCAM_VIEWER_RESOURCES")
    if env:
        return Path(env)
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def demo_model_path() -> Path:
    return resources_dir() / "models" / "demo" / "phantom_cxr_demo.keras"


def samples_dir() -> Path:
    return resources_dir() / "samples"


def icon_path() -> Path:
    return resources_dir() / "icons" / "gradcam-viewer.png"

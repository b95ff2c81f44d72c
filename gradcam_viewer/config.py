"""The user's configuration folder: PACS nodes, and the lock of the running viewer.
`GRADCAM_VIEWER_CONFIG_DIR` moves it (tests, or a portable install)."""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    env = os.environ.get("GRADCAM_VIEWER_CONFIG_DIR")
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("gradcam-viewer", appauthor=False))

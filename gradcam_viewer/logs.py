"""A rotating log file in the user's log folder. Callers log file names and reasons, never DICOM
header values, so no patient data reaches the log."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

_configured: Path | None = None


def log_dir() -> Path:
    env = os.environ.get("GRADCAM_VIEWER_LOG_DIR")
    if env:
        return Path(env)
    from platformdirs import user_log_dir

    return Path(user_log_dir("gradcam-viewer", appauthor=False))


def setup_logging(level: int = logging.INFO) -> Path:
    """Idempotent. Returns the log file's path."""
    global _configured
    folder = log_dir()
    path = folder / "gradcam-viewer.log"
    if _configured == path:
        return path
    root = logging.getLogger("gradcam_viewer")
    root.setLevel(logging.DEBUG)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for old in list(root.handlers):
        if getattr(old, "_gradcam_viewer", False):
            root.removeHandler(old)
            old.close()
    handler._gradcam_viewer = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    _configured = path
    return path

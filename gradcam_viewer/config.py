"""The user's configuration folder: PACS nodes, the operator name, and the lock of the running
viewer. `GRADCAM_VIEWER_CONFIG_DIR` moves it (tests, or a portable install).

What the window and the command line both use lives here as plain files, not in the window's
QSettings, so that the command line reads it without Qt: the PACS nodes (pacs/nodes.py) and the
operator name (Settings > Operator name, the observer of the marks' reports; `marks export`'s
default `--observer`)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def config_dir() -> Path:
    env = os.environ.get("GRADCAM_VIEWER_CONFIG_DIR")
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("gradcam-viewer", appauthor=False))


def operator_file() -> Path:
    return config_dir() / "operator.json"


def load_operator(path: Path | None = None) -> str | None:
    """The operator name as last set (None: never set, or the file is unreadable: the
    reports then name "unknown")."""
    path = path or operator_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        name = data["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return name.strip() if isinstance(name, str) else None


def save_operator(name: str, path: Path | None = None) -> Path:
    from gradcam_viewer.outputs.safe_write import write_bytes_atomic

    path = path or operator_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"name": name.strip()}, ensure_ascii=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite=True)

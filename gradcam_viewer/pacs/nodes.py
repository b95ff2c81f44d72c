"""PACS node settings: plain data, kept as JSON in the user's configuration folder."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from gradcam_viewer.outputs.safe_write import write_bytes_atomic

DEFAULT_CALLING_AET = "GRADCAM_VIEWER"
_AET = re.compile(r"^[\x20-\x7e]{1,16}$")  # PS3.5: up to 16 characters of the default set


class NodeError(ValueError):
    """A node setting that cannot work, in words for the user."""


@dataclass(frozen=True)
class PacsNode:
    ae_title: str  # the PACS's (called) AE title
    host: str
    port: int
    calling_ae_title: str = DEFAULT_CALLING_AET  # ours
    name: str = ""  # what the user calls it

    def __post_init__(self) -> None:
        for what, aet in (("AE title", self.ae_title), ("our AE title", self.calling_ae_title)):
            if not _AET.match(aet) or aet.strip() == "" or "\\" in aet:
                raise NodeError(f"the {what} '{aet}' must be 1 to 16 printable characters "
                                "(no backslash)")
        if not self.host.strip():
            raise NodeError("the host is empty")
        if not 1 <= int(self.port) <= 65535:
            raise NodeError(f"the port {self.port} is not between 1 and 65535")

    @property
    def label(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"

    @property
    def folder_name(self) -> str:
        """A name for this node's outbox folder."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{self.ae_title}@{self.host}_{self.port}")


def parse_node(text: str, calling_ae_title: str = DEFAULT_CALLING_AET) -> PacsNode:
    """`AET@HOST:PORT`, as `--send` takes it (an IPv6 host goes in brackets)."""
    match = re.fullmatch(r"([^@]+)@(\[[^\]]+\]|[^:@]+):(\d+)", text.strip())
    if not match:
        raise NodeError(f"'{text}' is not AET@HOST:PORT (for example ORTHANC@pacs.local:4242)")
    aet, host, port = match.groups()
    return PacsNode(aet, host.strip("[]"), int(port), calling_ae_title)


def nodes_file() -> Path:
    env = os.environ.get("GRADCAM_VIEWER_CONFIG_DIR")
    if env:
        return Path(env) / "pacs_nodes.json"
    from platformdirs import user_config_dir

    return Path(user_config_dir("gradcam-viewer", appauthor=False)) / "pacs_nodes.json"


def load_nodes(path: Path | None = None) -> list[PacsNode]:
    """The configured nodes; none when the file is absent. A damaged file is an error."""
    path = path or nodes_file()
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [PacsNode(str(d["ae_title"]), str(d["host"]), int(d["port"]),
                         str(d.get("calling_ae_title") or DEFAULT_CALLING_AET),
                         str(d.get("name", ""))) for d in data["nodes"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NodeError(f"the PACS node settings in '{path}' cannot be read ({exc})") from exc


def save_nodes(nodes: list[PacsNode], path: Path | None = None) -> Path:
    path = path or nodes_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"nodes": [asdict(n) for n in nodes]}, indent=2) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite=True)

"""PACS node settings: plain data, kept as JSON in the user's configuration folder.

One file holds every node, whatever it is used for: sending results (C-STORE), query/retrieve
(C-FIND with C-GET or C-MOVE), or both; a node of kind "dicomweb" speaks QIDO-RS / WADO-RS over
HTTP instead of DIMSE. A DICOMweb bearer token is never stored here: the node names the file
that holds it, read when it is used."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

from gradcam_viewer.config import config_dir
from gradcam_viewer.outputs.safe_write import write_bytes_atomic

DEFAULT_CALLING_AET = "GRADCAM_VIEWER"
DEFAULT_MOVE_PORT = 11112
KINDS = ("dimse", "dicomweb")
RETRIEVE_METHODS = ("auto", "get", "move")  # auto: C-GET, then C-MOVE if C-GET gets nothing
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
    send: bool = True  # File > Send to PACS and --send may use it
    query_retrieve: bool = False  # File > Open from PACS may use it
    retrieve_method: str = "auto"
    move_port: int = DEFAULT_MOVE_PORT  # where our temporary Storage SCP listens for C-MOVE
    kind: str = "dimse"
    url: str = ""  # dicomweb: the service's base URL (QIDO-RS and WADO-RS below it)
    token_file: str = ""  # dicomweb: a file holding a bearer token ("" for none)
    connect_timeout: float = 5.0  # seconds: TCP connection
    acse_timeout: float = 10.0  # association request and release
    dimse_timeout: float = 30.0  # each DIMSE message (or HTTP read for DICOMweb)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise NodeError(f"the node kind '{self.kind}' is not one of {', '.join(KINDS)}")
        if self.retrieve_method not in RETRIEVE_METHODS:
            raise NodeError(f"the retrieve method '{self.retrieve_method}' is not one of "
                            f"{', '.join(RETRIEVE_METHODS)}")
        for what, seconds in (("connection", self.connect_timeout),
                              ("association", self.acse_timeout),
                              ("message", self.dimse_timeout)):
            if not 0 < float(seconds) <= 3600:
                raise NodeError(f"the {what} timeout {seconds} s is not between 0 and 3600 s")
        if self.kind == "dicomweb":
            _check_url(self.url)
            if self.send:
                raise NodeError("sending is by DIMSE (C-STORE) only; a DICOMweb node is for "
                                "query/retrieve")
            return
        for what, aet in (("AE title", self.ae_title), ("our AE title", self.calling_ae_title)):
            if not _AET.match(aet) or aet.strip() == "" or "\\" in aet:
                raise NodeError(f"the {what} '{aet}' must be 1 to 16 printable characters "
                                "(no backslash)")
        if not self.host.strip():
            raise NodeError("the host is empty")
        for what, port in (("port", self.port), ("C-MOVE port", self.move_port)):
            if not 1 <= int(port) <= 65535:
                raise NodeError(f"the {what} {port} is not between 1 and 65535")

    @property
    def label(self) -> str:
        if self.kind == "dicomweb":
            return self.url
        return f"{self.ae_title}@{self.host}:{self.port}"

    @property
    def title(self) -> str:
        """What lists show: the user's name for it, or its address."""
        return self.name or self.label

    @property
    def folder_name(self) -> str:
        """A name for this node's outbox folder."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{self.ae_title}@{self.host}_{self.port}")


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NodeError(f"the DICOMweb URL '{url}' must start with http:// or https:// and "
                        "name a host")
    if parts.username or parts.password:
        raise NodeError("the DICOMweb URL must not hold a user name or password (they would be "
                        "stored in clear); put a bearer token in a file and name that file")
    if parts.query or parts.fragment:
        raise NodeError(f"the DICOMweb URL '{url}' must be a base URL, without ? or #")


def parse_node(text: str, calling_ae_title: str = DEFAULT_CALLING_AET) -> PacsNode:
    """`AET@HOST:PORT`, as `--send` takes it (an IPv6 host goes in brackets)."""
    match = re.fullmatch(r"([^@]+)@(\[[^\]]+\]|[^:@]+):(\d+)", text.strip())
    if not match:
        raise NodeError(f"'{text}' is not AET@HOST:PORT (for example ORTHANC@pacs.local:4242)")
    aet, host, port = match.groups()
    return PacsNode(aet, host.strip("[]"), int(port), calling_ae_title)


def find_node(name: str, nodes: list[PacsNode]) -> PacsNode:
    """The configured node called `name` (its name, else its address)."""
    for node in nodes:
        if node.name == name:
            return node
    for node in nodes:
        if node.label == name:
            return node
    known = ", ".join(f"'{n.title}'" for n in nodes) or "none is configured"
    raise NodeError(f"no PACS node is called '{name}' ({known})")


def retrieve_node(name: str, nodes: list[PacsNode]) -> PacsNode:
    """The configured node called `name`, if it may be queried and retrieved from (File > Open
    from PACS, a worklist's launch); NodeError in words otherwise."""
    node = find_node(name, nodes)
    if not node.query_retrieve:
        raise NodeError(f"the PACS node '{node.title}' is not set up for query/retrieve "
                        "(Settings > PACS nodes)")
    return node


def nodes_file() -> Path:
    return config_dir() / "pacs_nodes.json"


_TYPES = {f.name: f.type for f in fields(PacsNode)}


def _node(d: dict[str, object]) -> PacsNode:
    """A node from its JSON; keys a newer version wrote are ignored, missing ones default."""
    known = {k: v for k, v in d.items() if k in _TYPES}
    for key in ("port", "move_port"):
        if key in known:
            known[key] = int(str(known[key]))
    for key in ("connect_timeout", "acse_timeout", "dimse_timeout"):
        if key in known:
            known[key] = float(str(known[key]))
    for key in ("send", "query_retrieve"):
        if key in known and not isinstance(known[key], bool):
            raise TypeError(f"'{key}' must be true or false")
    if not known.get("calling_ae_title"):
        known["calling_ae_title"] = DEFAULT_CALLING_AET
    return PacsNode(**known)  # type: ignore[arg-type]


def load_nodes(path: Path | None = None) -> list[PacsNode]:
    """The configured nodes; none when the file is absent. A damaged file is an error."""
    path = path or nodes_file()
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [_node(d) for d in data["nodes"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NodeError(f"the PACS node settings in '{path}' cannot be read ({exc})") from exc


def save_nodes(nodes: list[PacsNode], path: Path | None = None) -> Path:
    path = path or nodes_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"nodes": [asdict(n) for n in nodes]}, indent=2) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite=True)

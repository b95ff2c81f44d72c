"""Objects waiting for a PACS: copied here before sending, deleted only once the node has
accepted them, so that a refusal, a timeout or a crash loses nothing."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from gradcam_viewer.pacs.network import SendReport, send_files
from gradcam_viewer.pacs.nodes import PacsNode

log = logging.getLogger(__name__)


def default_outbox() -> Path:
    env = os.environ.get("GRADCAM_VIEWER_OUTBOX")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("gradcam-viewer", appauthor=False)) / "outbox"


class Outbox:
    """One sub-folder per node; file names are unique so nothing is ever overwritten."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder else default_outbox()

    def node_folder(self, node: PacsNode) -> Path:
        return self.folder / node.folder_name

    def add(self, node: PacsNode, files: list[Path]) -> list[Path]:
        """Copies of `files` in the node's folder; all or none (OSError: none is left, so a
        repeated send cannot queue the same object twice)."""
        target = self.node_folder(node)
        target.mkdir(parents=True, exist_ok=True)
        queued: list[Path] = []
        try:
            for f in files:
                dest = target / f"{uuid.uuid4().hex[:12]}_{Path(f).name}"
                tmp = dest.with_name("." + dest.name + ".part")
                try:
                    shutil.copyfile(f, tmp)
                    os.replace(tmp, dest)
                finally:
                    tmp.unlink(missing_ok=True)
                queued.append(dest)
        except OSError:
            self.remove(queued)
            raise
        return queued

    def pending(self, node: PacsNode) -> list[Path]:
        folder = self.node_folder(node)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir()
                      if p.is_file() and p.suffix == ".dcm" and not p.name.startswith("."))

    def remove(self, files: list[Path]) -> None:
        """Forget sent files. One that cannot be deleted is only logged: it was accepted, so
        at worst the node receives it again with the next send."""
        left = 0
        for f in files:
            try:
                Path(f).unlink(missing_ok=True)
            except OSError:
                left += 1
        if left:
            log.warning("outbox: %d sent object(s) could not be deleted", left)

    def send(self, node: PacsNode, files: list[Path],
             announce: Callable[[list[Path], list[Path]], None] | None = None) -> SendReport:
        """Queue `files` for `node`, then C-STORE all that waits for it (what earlier sends
        left, first); the accepted leave the outbox, the others stay for the next send.
        `announce(queued, earlier)` runs before the network is touched. OSError: the files
        could not be queued, and nothing was sent."""
        earlier = self.pending(node)
        queued = self.add(node, files)
        if announce is not None:
            announce(queued, earlier)
        report = send_files(node, earlier + queued)
        self.remove(report.sent)
        return report

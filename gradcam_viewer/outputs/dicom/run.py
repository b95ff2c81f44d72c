"""The DICOM part of an `explain` run (`--dicom-out DIR`, `--send AET@HOST:PORT`): the objects
of each explained image, written beside where its PNGs mirror it and, if asked, sent to a PACS
node (C-STORE). The command calls in through `start`, `complete`, `after_image` and `finish`."""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gradcam_viewer.outputs.dicom.objects import DicomExport
    from gradcam_viewer.outputs.layout import Planned
    from gradcam_viewer.pacs.nodes import PacsNode

log = logging.getLogger(__name__)


class DicomRun:
    """The DICOM part of one `explain` run: objects into `folder` (None: made in a staging
    folder, for sending only), sent to the node `send_to` names (None: not sent); `out` is
    the run's output folder, whose layout the objects' folders mirror."""

    def __init__(self, folder: Path | None, send_to: str | None, out: Path):
        self.folder = folder
        self.send_to = send_to
        self.out = out
        self.node: PacsNode | None = None
        self.files: list[Path] = []
        self.patients: set[str] = set()
        self.studies: set[str] = set()
        self._staging: tempfile.TemporaryDirectory[str] | None = None
        self.notes: list[str] = []
        self._lock = threading.Lock()  # after_image runs in the batch pipeline's write threads

    @property
    def active(self) -> bool:
        return bool(self.folder or self.send_to)

    def start(self, no_ids: bool) -> str:
        """An error message when the options cannot work together, else ''."""
        if not self.active:
            return ""
        if no_ids:
            return ("--no-ids cannot go with --dicom-out or --send: DICOM objects are filed by "
                    "their UIDs and keep the patient module")
        if self.send_to:
            from gradcam_viewer.pacs import NodeError, parse_node

            try:
                self.node = parse_node(self.send_to)
            except NodeError as exc:
                return f"--send: {exc}"
        if self.folder is None:  # sending only: the objects are made in a staging folder
            self._staging = tempfile.TemporaryDirectory(prefix="gradcam-dicom-")
            self.folder = Path(self._staging.name)
        return ""

    @property
    def keeps_files(self) -> bool:
        """Whether the objects stay in a folder (--dicom-out), where a later --resume sees
        them; sending only, they are made in a staging folder that goes at the end."""
        return self.folder is not None and self._staging is None

    def _folder_of(self, item: Planned) -> Path:
        """Where an image's objects go: its place in the --out mirror, under --dicom-out."""
        assert self.folder is not None, "start() sets the folder"
        return self.folder / item.folder.relative_to(self.out)

    def complete(self, item: Planned, labels: list[str], record: dict[str, Any]) -> bool:
        """Whether an earlier run decided an image's objects in --dicom-out: the file written
        last for it is there (its first object, or the note saying why none could be made);
        True when no objects are asked for or none can be seen."""
        from gradcam_viewer.outputs.dicom import first_object_name
        from gradcam_viewer.outputs.layout import dicom_file_name, no_dicom_file_name

        if not self.keeps_files:
            return True
        name = first_object_name(labels, str(record.get("format", "")).startswith("DICOM"))
        folder = self._folder_of(item)
        return (name is None or (folder / dicom_file_name(item.base, name)).is_file()
                or (folder / no_dicom_file_name(item.base)).is_file())

    def _none_made(self, item: Planned, why: list[str], overwrite: bool) -> None:
        """Say in --dicom-out why an image has no objects (the file --resume reads)."""
        from gradcam_viewer.outputs.layout import no_dicom_file_name
        from gradcam_viewer.outputs.safe_write import write_atomic

        folder = self._folder_of(item)
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"source": item.rel, "dicom_objects": [], "why": why}, indent=2)
        write_atomic(folder / no_dicom_file_name(item.base),
                     lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"), overwrite)

    def after_image(self, item: Planned, ex: DicomExport, overwrite: bool) -> list[Path]:
        """The objects of one explained image, written next to where its PNGs mirror it."""
        if not self.active:
            return []
        from gradcam_viewer.outputs.dicom import build_objects, write_objects
        from gradcam_viewer.outputs.layout import no_dicom_file_name

        notes: list[str] = []
        objects = build_objects(ex, notes)
        written = write_objects(objects, self._folder_of(item), item.base, overwrite)
        outcome = "its other DICOM objects are written"
        if objects:  # a note from an earlier run that could make none is no longer true
            (self._folder_of(item) / no_dicom_file_name(item.base)).unlink(missing_ok=True)
        elif ex.is_dicom:  # none makeable (--overlays none, no report): decided all the same
            notes = notes or [("no overlay was asked for and the source has no DICOM "
                               "identity a report could reference")]
            self._none_made(item, notes, overwrite)
            outcome = (f"no DICOM object is written for it (why: in "
                       f"{no_dicom_file_name(item.base)})")
        with self._lock:
            self.notes.extend(f"note: {item.rel}: {text}; {outcome}" for text in notes)
            for _, ds in objects:
                self.patients.add(str(ds.get("PatientID", "")))
                self.studies.add(str(ds.StudyInstanceUID))
            self.files.extend(written)
        return written

    def finish(self, say: Callable[[str], None]) -> int:
        """Send what was made (and what earlier runs left in the outbox); the number of
        failures."""
        try:
            if not self.active:
                return 0
            for line in self.notes:
                say(line)
            if self._staging is None:
                say(f"{len(self.files)} DICOM object(s) written into {self.folder}")
            if self.node is None:
                return 0
            return self._send(self.node, say)
        finally:
            if self._staging is not None:
                self._staging.cleanup()

    def _send(self, node: PacsNode, say: Callable[[str], None]) -> int:
        return send_objects(node, self.files, say, len(self.studies), len(self.patients))


def send_objects(node: PacsNode, files: list[Path], say: Callable[[str], None], studies: int,
                 patients: int) -> int:
    """A command's DICOM objects through the outbox to `node` (with what earlier runs left
    there), saying so; the number of failures."""
    from gradcam_viewer.pacs import Outbox

    outbox = Outbox()

    def announce(queued: list[Path], earlier: list[Path]) -> None:
        say(f"sending {len(queued)} object(s) of {studies} study(ies) and {patients} "
            f"patient(s) to {node.label}"
            + (f", and {len(earlier)} left in the outbox by earlier runs" if earlier else ""))

    try:
        report = outbox.send(node, files, announce)
    except OSError as exc:
        say(f"error: the DICOM objects could not be put in the outbox "
            f"{outbox.node_folder(node)} ({exc.strerror or exc}); nothing was sent")
        return len(files)
    say(report.summary(node))
    if report.failed:
        say(f"error: {len(report.failed)} object(s) not accepted; they stay in "
            f"{outbox.node_folder(node)} and go with the next --send to this node")
    return len(report.failed)

"""`explain --dicom-out DIR --send AET@HOST:PORT`: DICOM objects for each explained image and,
if asked, their C-STORE to a PACS node. Kept apart from explain_cmd so that the command only
calls in: `add_arguments`, `DicomRun.start`, `DicomRun.after_image`, `DicomRun.finish`."""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)


def add_arguments(parser: Any) -> None:
    parser.add_argument("--dicom-out", type=Path, default=None, metavar="DIR",
                        help="also write DICOM objects (Secondary Capture, Parametric Map, "
                             "structured report) into DIR; they keep the patient module")
    parser.add_argument("--send", default=None, metavar="AET@HOST:PORT",
                        help="send the DICOM objects to this PACS node (C-STORE); objects "
                             "not accepted stay in the outbox folder until a later send")


class DicomRun:
    """The DICOM part of one `explain` run."""

    def __init__(self, args: Any):
        self.folder: Path | None = args.dicom_out
        self.send_to: str | None = args.send
        self.out: Path = args.out
        self.node = None
        self.files: list[Path] = []
        self.patients: set[str] = set()
        self.studies: set[str] = set()
        self._staging: tempfile.TemporaryDirectory | None = None
        self.notes: list[str] = []
        self._lock = threading.Lock()  # after_image runs in the batch pipeline's write threads

    @property
    def active(self) -> bool:
        return bool(self.folder or self.send_to)

    def start(self, args: Any) -> str:
        """An error message when the options cannot work together, else ''."""
        if not self.active:
            return ""
        if args.no_ids:
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

    def _folder_of(self, item: Any) -> Path:
        """Where an image's objects go: its place in the --out mirror, under --dicom-out."""
        return self.folder / item.folder.relative_to(self.out)

    def complete(self, item: Any, labels: list[str], record: dict) -> bool:
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

    def _none_made(self, item: Any, why: list[str], overwrite: bool) -> None:
        """Say in --dicom-out why an image has no objects (the file --resume reads)."""
        from gradcam_viewer.outputs.layout import no_dicom_file_name
        from gradcam_viewer.outputs.safe_write import write_atomic

        folder = self._folder_of(item)
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"source": item.rel, "dicom_objects": [], "why": why}, indent=2)
        write_atomic(folder / no_dicom_file_name(item.base),
                     lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"), overwrite)

    def after_image(self, item: Any, image: Any, display: Any, result: Any, values: Any,
                    bundle: Any, wanted: list[int], style: Any, overwrite: bool,
                    ood: dict | None = None) -> list[Path]:
        """The objects of one explained image, written next to where its PNGs mirror it.
        `ood`: the out-of-distribution record; its flag goes into the report when calibrated."""
        if not self.active:
            return []
        from gradcam_viewer.outputs.dicom import build_objects, explained_image, write_objects
        from gradcam_viewer.outputs.layout import no_dicom_file_name

        heatmaps = {bundle.labels[k]: result.display_heatmap(0, k, image.size) for k in wanted}
        ex = explained_image(image, display, bundle, values, heatmaps, result.method,
                             result.layer_name, style, ood)
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
            return self._send(say)
        finally:
            if self._staging is not None:
                self._staging.cleanup()

    def _send(self, say: Callable[[str], None]) -> int:
        from gradcam_viewer.pacs import Outbox

        outbox = Outbox()

        def announce(queued: list[Path], earlier: list[Path]) -> None:
            say(f"sending {len(queued)} object(s) of {len(self.studies)} study(ies) and "
                f"{len(self.patients)} patient(s) to {self.node.label}"
                + (f", and {len(earlier)} left in the outbox by earlier runs" if earlier else ""))

        try:
            report = outbox.send(self.node, self.files, announce)
        except OSError as exc:
            say(f"error: the DICOM objects could not be put in the outbox "
                f"{outbox.node_folder(self.node)} ({exc.strerror or exc}); nothing was sent")
            return len(self.files)
        say(report.summary(self.node))
        if report.failed:
            say(f"error: {len(report.failed)} object(s) not accepted; they stay in "
                f"{outbox.node_folder(self.node)} and go with the next --send to this node")
        return len(report.failed)

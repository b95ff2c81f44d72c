"""`gradcam-viewer marks export IMAGES... (--sr DIR | --send AET@HOST:PORT)`: the marks you made
in the viewer on DICOM images, as one TID 1500 report (DICOM SR, outputs/dicom/marks_sr.py) per
marked image frame: written into DIR, mirroring the inputs' folders as `explain` does, and/or
sent to a PACS node through the outbox. A week of marks handed on in one go, to the PACS or to a
colleague whose viewer reads the reports from a folder.

Only your own marks go in (marks read from other readers' reports stay in theirs), as File >
Export marks as DICOM SR writes them for the image on screen."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gradcam_viewer.cli.common import (
    Command,
    CommandError,
    ExitCode,
    Progress,
    add_send_argument,
    expand_inputs,
)

if TYPE_CHECKING:
    from gradcam_viewer.marks.shapes import ImageMarks
    from gradcam_viewer.marks.store import MarkStore
    from gradcam_viewer.outputs.layout import Planned

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["export"],
                        help="export: your marks on these images as DICOM SR")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IMAGES",
                        help="the DICOM images you marked: files, folders, DICOMDIR media")
    parser.add_argument("--sr", type=Path, default=None, metavar="DIR",
                        help="write one report per marked image into DIR (the inputs' folders "
                             "mirrored, <image>_MARKS.dcm)")
    add_send_argument(parser, "the reports")
    parser.add_argument("--observer", default=None, metavar="NAME",
                        help="the reports' observer, Family^Given (default: the operator name "
                             "set in the viewer, Settings > Operator name; else unknown)")
    parser.add_argument("--marks", type=Path, default=None, metavar="FOLDER",
                        help="the marks store to read (default: the viewer's, in your data "
                             "folder)")
    parser.add_argument("--force", action="store_true", help="replace reports already in DIR")


def run(args: argparse.Namespace) -> ExitCode:
    from gradcam_viewer.config import load_operator
    from gradcam_viewer.marks.store import MarkStore
    from gradcam_viewer.outputs.layout import common_root, plan_outputs
    from gradcam_viewer.pacs import NodeError, parse_node

    if args.sr is None and args.send is None:
        raise CommandError("say where the reports go: --sr DIR, --send AET@HOST:PORT, or both")
    node = None
    if args.send:
        try:
            node = parse_node(args.send)
        except NodeError as exc:
            raise CommandError(f"--send: {exc}") from exc

    def say(line: str) -> None:
        sys.stderr.write(line + "\n")

    found = expand_inputs(args.inputs)
    for line in [*found.errors, *found.notes]:
        say(line)
    with tempfile.TemporaryDirectory(prefix="gradcam-marks-") as staging:
        out = args.sr if args.sr is not None else Path(staging)
        observer = args.observer if args.observer is not None else load_operator()
        export = Export(MarkStore(args.marks), observer or "", args.force)
        with Progress(len(found.paths)) as bar:
            for item in plan_outputs(found.paths, common_root(args.inputs), out, []):
                bar.step(item.source.name)
                export.image(item, bar.say)
        where = f" written into {args.sr}" if args.sr is not None else ""
        say(f"{export.marked} of {export.dicom} DICOM image(s) have marks of yours: "
            f"{len(export.files)} report(s){where}")
        if export.not_dicom:
            say(f"note: {export.not_dicom} input(s) are not DICOM images with a SOP Instance "
                "UID: the window exports their marks as CSV and JSON")
        failed = len(found.errors) + export.failed
        if node is not None and export.files:
            from gradcam_viewer.outputs.dicom.run import send_objects

            failed += send_objects(node, export.files, say, len(export.studies),
                                   len(export.patients))
    log.info("marks export: %d report(s), %d failure(s)", len(export.files), failed)
    return ExitCode.INPUTS_FAILED if failed else ExitCode.OK


class Export:
    """The reports of the images given, one image after the other."""

    def __init__(self, store: MarkStore, observer: str, overwrite: bool) -> None:
        self.store, self.observer, self.overwrite = store, observer, overwrite
        self.files: list[Path] = []
        self.studies: set[str] = set()
        self.patients: set[str] = set()
        self.dicom = self.marked = self.not_dicom = self.failed = 0

    def image(self, item: Planned, say: Callable[[str], None]) -> None:
        """The reports of one input's marked frames (an error line for each that fails)."""
        import pydicom
        from pydicom.errors import InvalidDicomError

        from gradcam_viewer.launch.requests import is_uid
        from gradcam_viewer.marks.shapes import ImageKey
        from gradcam_viewer.outputs.dicom import DicomExportError

        try:
            header = pydicom.dcmread(item.source, stop_before_pixels=True, force=True,
                                     specific_tags=["SOPInstanceUID", "NumberOfFrames"])
            uid = str(header.get("SOPInstanceUID", "") or "").strip()
            frames = int(header.get("NumberOfFrames", 1) or 1)
        except (InvalidDicomError, OSError, ValueError, TypeError, EOFError):
            uid, frames = "", 1
        if not is_uid(uid):  # as the window keys marks (marks/store.image_key)
            self.not_dicom += 1
            return
        self.dicom += 1
        marked = False
        for frame in range(frames):
            marks = self.store.load(ImageKey("sop", uid, frame), item.source.name)
            if not any(not m.read_only for m in marks.marks):
                continue
            marked = True
            try:
                self._report(item, marks)
            except (DicomExportError, OSError) as exc:  # named for the user; the rest goes on
                self.failed += 1
                say(f"error: {item.rel}: {_why(exc)}")
        self.marked += marked

    def _report(self, item: Planned, marks: ImageMarks) -> None:
        from gradcam_viewer.outputs.dicom import write_objects
        from gradcam_viewer.outputs.dicom.marks_sr import marks_objects

        objects = marks_objects(item.source, marks, self.observer)  # named per frame there
        self.files += write_objects(objects, item.folder, item.base, self.overwrite)
        for _, ds in objects:
            self.studies.add(str(ds.StudyInstanceUID))
            self.patients.add(str(ds.get("PatientID", "")))


def _why(exc: Exception) -> str:
    """DicomExportError's own words; a file problem in words."""
    from gradcam_viewer.outputs.safe_write import OutputExistsError

    if isinstance(exc, OutputExistsError):
        return f"{exc} (use --force to replace it)"
    if isinstance(exc, OSError):
        return f"the report could not be written ({exc.strerror or exc})"
    return str(exc) or type(exc).__name__


COMMAND = Command("marks", "Export your marks on DICOM images as DICOM SR (a folder, a PACS).",
                  add_arguments, run)

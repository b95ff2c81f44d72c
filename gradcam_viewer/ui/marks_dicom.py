"""Marks and DICOM in the window: File > Export marks as DICOM SR, File > Send marks to PACS,
Settings > Operator name (the report's observer; kept in the configuration folder, where
`marks export` reads it too), and the marks of structured reports found beside the images,
shown read-only.

The report is made by `outputs/dicom/marks_sr.py` and travels the way the Grad-CAM objects do
(`Pacs`: confirmation, then a folder or the outbox). Reports found by a scan (the Studies
panel's catalogue: an opened folder, DICOMDIR or retrieved study) are read off the GUI thread
into a `ReportIndex` (marks/sr_read.py); each image shown gets its marks from it through
`Marking.add_read_only`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QInputDialog, QLineEdit, QWidget

from gradcam_viewer.config import load_operator, operator_file, save_operator
from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.imaging.studies import Catalogue
from gradcam_viewer.marks.sr_read import ReportIndex
from gradcam_viewer.ui.marking import Marking
from gradcam_viewer.ui.menus import Handler
from gradcam_viewer.ui.network_jobs import NetworkJobs
from gradcam_viewer.ui.pacs_dialogs import Pacs, Prepared
from gradcam_viewer.ui.status import Messages

log = logging.getLogger(__name__)
OPERATOR_KEY = "marks/operator"  # where the window kept the name before `config` did


def migrate_operator(settings: QSettings) -> None:
    """The operator name the window kept in its QSettings, moved once into the configuration
    folder, where `marks export` reads it too (a name already there wins)."""
    if not settings.contains(OPERATOR_KEY):
        return
    old = str(settings.value(OPERATOR_KEY, "") or "").strip()
    try:
        if old and not operator_file().exists():
            save_operator(old)
    except OSError as exc:  # kept in the settings; tried again at the next start
        log.warning("the operator name could not be moved (%s)", exc.strerror or exc)
        return
    settings.remove(OPERATOR_KEY)


class MarksDicom:
    def __init__(self, parent: QWidget, marking: Marking, pacs: Pacs, messages: Messages,
                 settings: QSettings) -> None:
        self.parent, self.marking, self.pacs = parent, marking, pacs
        self.messages, self.settings = messages, settings
        self.jobs = NetworkJobs(parent, messages)
        self.index = ReportIndex()
        self.reading = 0  # the catalogue whose reports are read (a newer one wins)
        self.image: LoadedImage | None = None
        migrate_operator(settings)

    def handlers(self) -> dict[str, Handler]:
        return {"export_marks_sr": lambda: self.pacs.export_dicom(objects=self.objects),
                "send_marks": lambda: self.pacs.send(objects=self.objects),
                "operator": self.ask_operator}

    # --- the report of the image's marks --------------------------------------------------
    @property
    def operator(self) -> str:
        return load_operator() or ""

    def ask_operator(self) -> None:
        name, ok = QInputDialog.getText(
            self.parent, "Operator name",
            "Your name as the observer of the marks' DICOM reports\n"
            "(Family^Given, as DICOM writes names; empty: \"unknown\"):",
            QLineEdit.EchoMode.Normal, self.operator)
        if ok:
            try:
                save_operator(name)
            except OSError as exc:
                self.messages.error(f"The operator name could not be saved: "
                                    f"{exc.strerror or exc}")

    def objects(self) -> Callable[[], Prepared]:
        """The build of the report of the marks on screen (DicomExportError: nothing to
        report, said at once); the build itself reads the source's header."""
        from gradcam_viewer.outputs.dicom import DicomExportError

        marks, image = self.marking.editor.marks, self.image
        if marks is None or image is None:
            raise DicomExportError("open an image and mark it first")
        if marks.key.kind != "sop":
            raise DicomExportError("the image is not a DICOM image; its marks are exported as "
                                   "CSV and JSON (File > Export marks as CSV and JSON)")
        if not any(not m.read_only for m in marks.marks):
            raise DicomExportError("this image has no marks of yours")
        observer, path = self.operator, image.path

        def build() -> Prepared:
            from gradcam_viewer.outputs.dicom.marks_sr import marks_objects
            from gradcam_viewer.outputs.layout import output_stem

            return Prepared(marks_objects(path, marks, observer), output_stem(path), True)

        return build

    # --- marks of reports found beside the images -----------------------------------------
    def catalogue(self, catalogue: Catalogue) -> None:
        """A scan listed these images and reports: the reports are read, then the image on
        screen gets its marks."""
        self.reading += 1
        reading, reports = self.reading, list(catalogue.reports)
        self.index = ReportIndex()
        if not reports:
            return

        def then(index: ReportIndex) -> None:
            if reading != self.reading:
                return  # a newer scan
            self.index = index
            shown = self.show_image(self.image)
            if index.problems:
                log.info("%d report(s) could not be read", len(index.problems))
            self.messages.status(f"Marks read from {len(index.reports)} report(s)"
                                 + (f"; {shown} on this image" if shown else ""))

        self.jobs.run(lambda: ReportIndex.read(reports), then)

    def show_image(self, image: LoadedImage | None) -> int:
        """After `Marking.show_image`: the marks reports hold for this image, added read-only.
        Returns how many."""
        self.image = image
        marks = self.marking.editor.marks
        uid = image.metadata.get("SOPInstanceUID") if image is not None else None
        if image is None or uid is None or marks is None or not self.index.reports:
            return 0
        found = self.index.marks_for(str(uid.value), image.frame, marks.marks)
        self.marking.add_read_only(found, self.index.sources())  # a report now without
        return len(found)  # marks for this image takes back what it gave

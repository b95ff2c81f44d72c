"""File > Export as DICOM and File > Send to PACS.

The objects come from gradcam_viewer.outputs.dicom and travel with gradcam_viewer.pacs; this module
only asks and tells. Building the objects and network calls run on a Python thread and report
back through a Qt signal (`ui/network_jobs.py`), so the window never freezes on a big image or a
slow PACS. `Pacs` is handed what is shown (a `Snapshot`) and where to tell the user things.
"""

from __future__ import annotations

import html
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from gradcam_viewer.session.snapshot import Snapshot
from gradcam_viewer.ui.network_jobs import NetworkJobs
from gradcam_viewer.ui.pacs_nodes import NodesDialog
from gradcam_viewer.ui.status import Messages

if TYPE_CHECKING:
    from pydicom import Dataset

    from gradcam_viewer.pacs import PacsNode, SendReport
    from gradcam_viewer.ui.pacs_open import RetrieveSettings

log = logging.getLogger(__name__)

KEEPS_PATIENT = ("These DICOM objects keep the patient module of the source image (patient "
                 "name, ID, birth date, sex) and its study, so that a PACS files them under the "
                 "patient's study. PNG, CSV and JSON exports stay de-identified.")
NOT_DICOM = ("The source is not a DICOM image, so it has no patient or study: only a Secondary "
             "Capture is made, in a new study, with the patient fields empty.")


# --- what is exported -------------------------------------------------------------------------

@dataclass
class Prepared:
    objects: list[tuple[str, Dataset]]
    stem: str
    is_dicom: bool

    def summary_html(self) -> str:
        """Patient, study and objects, as the confirmation shows them."""
        first = self.objects[0][1]
        rows = []
        if self.is_dicom:
            for key, title in (("PatientName", "Patient"), ("PatientID", "Patient ID"),
                               ("PatientBirthDate", "Birth date"),
                               ("StudyDescription", "Study"), ("StudyDate", "Study date"),
                               ("AccessionNumber", "Accession number")):
                rows.append((title, str(first.get(key, "") or "")))
        rows.append(("Study Instance UID", str(first.StudyInstanceUID)))
        table = "".join(f"<tr><td>{html.escape(t)}</td><td><b>{html.escape(v)}</b></td></tr>"
                        for t, v in rows)
        items = "".join(f"<li>{html.escape(_kind(ds))}: {html.escape(name)}</li>"
                        for name, ds in self.objects)
        note = KEEPS_PATIENT if self.is_dicom else NOT_DICOM
        return (f"<p>{html.escape(note)}</p><table cellpadding=2>{table}</table>"
                f"<p>{len(self.objects)} object(s):</p><ul>{items}</ul>")


def _kind(ds: Dataset) -> str:
    from pydicom.uid import UID

    return str(UID(str(ds.SOPClassUID)).name)


def objects_of(shown: Snapshot) -> Callable[[], Prepared]:
    """The build of the objects for what is shown (cheap to call: DicomExportError when there
    is nothing to export); the build itself takes seconds on a full-size radiograph and so
    runs on another thread (`Pacs._prepare_then`)."""
    from gradcam_viewer.outputs.dicom import DicomExportError

    image, result, model, label = shown.image, shown.result, shown.model, shown.label
    if image is None or result is None or model is None or label is None:
        raise DicomExportError("there is no explained image to export yet")

    def build() -> Prepared:
        from gradcam_viewer.imaging import to_display
        from gradcam_viewer.outputs.dicom import DicomExport, build_objects
        from gradcam_viewer.outputs.layout import output_stem

        ex = DicomExport(image, to_display(image), result, model.identity,
                         (model.labels[label],), shown.style)
        notes: list[str] = []
        objects = build_objects(ex, notes)
        for text in notes:
            log.info("DICOM export: %s", text)
        filed_with_source = "SourceImageSequence" in objects[0][1]  # else a new study
        return Prepared(objects, output_stem(image.path), filed_with_source)

    return build


class ConfirmDialog(QDialog):
    """What goes where, before anything is written or sent; `on_ok` runs on OK."""

    def __init__(self, parent: QWidget, title: str, prepared: Prepared, destination: str,
                 on_ok: Callable[[], None], nodes: list[PacsNode] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(560, 460)
        self.nodes = nodes or []
        self.text = QLabel(f"<p>To: <b>{html.escape(destination)}</b></p>"
                           + prepared.summary_html())
        self.text.setWordWrap(True)
        lay = QVBoxLayout(self)
        self.node_box = QComboBox()
        if self.nodes:
            self.node_box.addItems([n.name or n.label for n in self.nodes])
            row = QHBoxLayout()
            row.addWidget(QLabel("PACS node:"))
            row.addWidget(self.node_box, 1)
            lay.addLayout(row)
        lay.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel, parent=self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.accepted.connect(on_ok)
        self.setModal(False)
        # closed, it goes (with the objects it holds: the Secondary Capture alone is tens of MB)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def chosen_node(self) -> PacsNode | None:
        return self.nodes[self.node_box.currentIndex()] if self.nodes else None


class Pacs:
    """File > Export as DICOM, File > Send to PACS and Settings > PACS nodes. The newest
    confirmation is `dialog` (once its objects are built); `last_send_report` what the node
    answered last."""

    def __init__(self, parent: QWidget, shown: Callable[[], Snapshot], messages: Messages,
                 last_dir: Callable[[], str]) -> None:
        self._parent, self._shown, self._messages, self._last_dir = (parent, shown, messages,
                                                                     last_dir)
        self.network = NetworkJobs(parent, messages)
        self.preparing = False  # objects are being built for a confirmation
        self.dialog: ConfirmDialog | None = None
        self.nodes_dialog: NodesDialog | None = None
        self.last_send_report: SendReport | None = None

    def show_nodes(self, cache: RetrieveSettings | None = None) -> None:
        """Settings > PACS nodes (with the retrieved-studies cache's settings when given)."""
        self.nodes_dialog = NodesDialog(self._parent, self.network, self._messages, cache)
        self.nodes_dialog.show()

    def export_dicom(self, folder: Path | None = None,
                     objects: Callable[[], Callable[[], Prepared]] | None = None) -> None:
        """Asks for a folder (unless given), shows what is written, writes on OK. `objects`
        gives the build of other objects than the Grad-CAM ones (the marks' report)."""
        from gradcam_viewer.outputs.dicom import DicomExportError

        try:
            build = objects() if objects is not None else objects_of(self._shown())
        except DicomExportError as exc:
            self._messages.error(f"No DICOM export: {exc}.")
            return
        if folder is None:
            name = QFileDialog.getExistingDirectory(self._parent, "Export as DICOM into",
                                                    self._last_dir())
            if not name:
                return
            folder = Path(name)
        into = folder

        def show(prepared: Prepared) -> None:
            def write() -> None:
                from gradcam_viewer.outputs.dicom import write_objects

                try:
                    paths = write_objects(prepared.objects, into, prepared.stem, overwrite=True)
                except OSError as exc:
                    self._messages.error(f"The DICOM export failed: {exc.strerror or exc}.")
                    return
                self._messages.status(f"Exported {len(paths)} DICOM object(s) into {into.name}")

            self._confirm(ConfirmDialog(self._parent, "Export as DICOM", prepared, str(into),
                                        write))

        self._prepare_then(build, show, "No DICOM export")

    def send(self, objects: Callable[[], Callable[[], Prepared]] | None = None) -> None:
        """Confirm (patient, study, objects, node), then queue in the outbox and C-STORE
        (`objects` as in `export_dicom`)."""
        from gradcam_viewer.outputs.dicom import DicomExportError
        from gradcam_viewer.pacs import NodeError, load_nodes

        try:
            nodes = [n for n in load_nodes() if n.send]
        except NodeError as exc:
            self._messages.error(str(exc))
            return
        if not nodes:
            self._messages.error("No PACS node is configured for sending. Add one in Settings > "
                                 "PACS nodes.")
            return
        try:
            build = objects() if objects is not None else objects_of(self._shown())
        except DicomExportError as exc:
            self._messages.error(f"Nothing to send: {exc}.")
            return

        def show(prepared: Prepared) -> None:
            dialog: ConfirmDialog

            def send() -> None:
                node = dialog.chosen_node()
                if node is not None:
                    self.send_prepared(prepared, node)

            dialog = ConfirmDialog(self._parent, "Send to PACS", prepared,
                                   "the PACS node chosen above", send, nodes)
            self._confirm(dialog)

        self._prepare_then(build, show, "Nothing to send")

    def send_prepared(self, prepared: Prepared, node: PacsNode) -> None:
        """Writes the objects into the outbox and C-STOREs what is pending there, all off the
        GUI thread (the Secondary Capture of a full-size radiograph alone is tens of MB)."""
        from gradcam_viewer.outputs.dicom import write_objects
        from gradcam_viewer.pacs import Outbox

        outbox = Outbox()
        self._messages.status(f"Sending {len(prepared.objects)} object(s) to {node.label}...")

        def work() -> SendReport | str:
            try:
                with tempfile.TemporaryDirectory(prefix="gradcam-dicom-") as tmp:
                    files = write_objects(prepared.objects, Path(tmp), prepared.stem)
                    return outbox.send(node, files, lambda queued, _earlier: log.info(
                        "queued %d object(s) for a PACS node", len(queued)))
            except OSError as exc:
                return (f"The objects could not be put in the outbox: {exc.strerror or exc}. "
                        "Nothing was sent.")

        def then(report: SendReport | str) -> None:
            if isinstance(report, str):
                self._messages.error(report)
                return
            self.last_send_report = report
            text = report.summary(node)
            if report.ok:
                self._messages.notice(text + ".")
            else:
                self._messages.error(f"{text}.\n\nThe objects not accepted stay in "
                                     f"{outbox.node_folder(node)} and are sent again with the "
                                     "next Send to PACS to this node.")

        self.network.run(work, then)

    def _confirm(self, dialog: ConfirmDialog) -> None:
        dialog.show()
        self.dialog = dialog

    def _prepare_then(self, build: Callable[[], Prepared], show: Callable[[Prepared], None],
                      failure: str) -> None:
        """`build` off the GUI thread, then `show` on it; a second press while one is being
        built is ignored (it would open a second confirmation of the same objects)."""
        if self.preparing:
            return
        self.preparing = True
        self._messages.status("Preparing the DICOM objects...")

        def work() -> Prepared | Exception:
            try:
                return build()
            except Exception as exc:  # noqa: BLE001 - DicomExportError and the unforeseen alike
                return exc

        def then(out: Prepared | Exception) -> None:
            self.preparing = False
            if isinstance(out, Exception):
                self._messages.error(f"{failure}: {out}.")
            else:
                show(out)

        self.network.run(work, then)

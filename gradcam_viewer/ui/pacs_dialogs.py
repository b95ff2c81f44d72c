"""File > Export as DICOM, File > Send to PACS and Settings > PACS nodes.

The objects come from gradcam_viewer.outputs.dicom and travel with gradcam_viewer.pacs; this module
only asks and tells. Building the objects and network calls run on a Python thread and report back through a Qt signal,
so the window never freezes on a big image or a slow PACS. `install(win, file_menu)` is the only hook into the
main window."""

from __future__ import annotations

import html
import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QListWidget, QMessageBox,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)


log = logging.getLogger(__name__)

KEEPS_PATIENT = ("These DICOM objects keep the patient module of the source image (patient "
                 "name, ID, birth date, sex) and its study, so that a PACS files them under the "
                 "patient's study. PNG, CSV and JSON exports stay de-identified.")
NOT_DICOM = ("The source is not a DICOM image, so it has no patient or study: only a Secondary "
             "Capture is made, in a new study, with the patient fields empty.")


def install(win: Any, file_menu: Any) -> None:
    """Adds the actions to the File menu (before Quit) and a Settings menu before Help."""
    win.act_export_dicom = QAction("Export as &DICOM...", win)
    win.act_export_dicom.triggered.connect(lambda: export_dicom_dialog(win))
    win.act_send_pacs = QAction("Send to &PACS...", win)
    win.act_send_pacs.triggered.connect(lambda: send_dialog(win))
    quit_action = getattr(win, "act_quit", None)
    for act in (win.act_export_dicom, win.act_send_pacs):
        file_menu.insertAction(quit_action, act) if quit_action else file_menu.addAction(act)
    if quit_action:
        file_menu.insertSeparator(quit_action)
    win.act_pacs_nodes = QAction("&PACS nodes...", win)
    win.act_pacs_nodes.triggered.connect(lambda: NodesDialog(win).show())
    bar = win.menuBar()
    settings = bar.addMenu("&Settings")
    menus = [a for a in bar.actions() if a.menu() is not None]
    help_menu = next((a for a in menus if a.text().replace("&", "") == "Help"), None)
    if help_menu is not None:
        bar.insertMenu(help_menu, settings)
    settings.addAction(win.act_pacs_nodes)


# --- what is exported -------------------------------------------------------------------------

@dataclass
class Prepared:
    objects: list  # (name, pydicom Dataset)
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


def _kind(ds: Any) -> str:
    from pydicom.uid import UID

    return UID(str(ds.SOPClassUID)).name


def snapshot(win: Any) -> Callable[[], Prepared]:
    """What is shown now, read on the GUI thread (cheap; DicomExportError when there is nothing
    to export); returns the build of the objects, which takes seconds on a full-size radiograph
    and so runs on a worker thread (`prepare_then`)."""
    from gradcam_viewer.outputs.dicom import DicomExportError

    image, result, model, style = win.image, win.result, win.model, win.style
    label = win.labels.current_label()
    if image is None or result is None or model is None or label is None:
        raise DicomExportError("there is no explained image to export yet")

    def build() -> Prepared:
        from gradcam_viewer.imaging import to_display
        from gradcam_viewer.outputs.dicom import DicomExport, build_objects
        from gradcam_viewer.outputs.layout import output_stem

        ex = DicomExport(image, to_display(image), result, model.identity,
                         (model.labels[label],), style)
        notes: list[str] = []
        objects = build_objects(ex, notes)
        for text in notes:
            log.info("DICOM export: %s", text)
        filed_with_source = "SourceImageSequence" in objects[0][1]  # else a new study
        return Prepared(objects, output_stem(image.path), filed_with_source)

    return build


def prepare_then(win: Any, build: Callable[[], Prepared], show: Callable[[Prepared], None],
                 failure: str) -> None:
    """`build` off the GUI thread, then `show` on it; a second press while one is being built
    is ignored (it would open a second confirmation of the same objects)."""
    if getattr(win, "_pacs_preparing", False):
        return
    win._pacs_preparing = True
    win.status_worker.setText("Preparing the DICOM objects...")

    def work() -> Any:
        try:
            return build()
        except Exception as exc:  # noqa: BLE001 - DicomExportError and the unforeseen alike
            return exc

    def then(out: Any) -> None:
        win._pacs_preparing = False
        if isinstance(out, Exception):
            win._error(f"{failure}: {out}.")
        else:
            show(out)

    run_in_thread(win, work, then)


# --- export -----------------------------------------------------------------------------------

class ConfirmDialog(QDialog):
    """What goes where, before anything is written or sent; `done_with(True)` on OK."""

    def __init__(self, parent: QWidget, title: str, prepared: Prepared, destination: str,
                 on_ok: Callable[[], None], nodes: list | None = None):
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

    def chosen_node(self) -> Any:
        return self.nodes[self.node_box.currentIndex()] if self.nodes else None


def export_dicom_dialog(win: Any, folder: Path | None = None) -> None:
    """Asks for a folder (unless given), shows what is written (in `win._pacs_dialog`, once the
    objects are built), writes on OK."""
    from gradcam_viewer.outputs.dicom import DicomExportError

    try:
        build = snapshot(win)
    except DicomExportError as exc:
        win._error(f"No DICOM export: {exc}.")
        return
    if folder is None:
        name = QFileDialog.getExistingDirectory(win, "Export as DICOM into", win._last_dir())
        if not name:
            return
        folder = Path(name)

    def show(prepared: Prepared) -> None:
        def write() -> None:
            from gradcam_viewer.outputs.dicom import write_objects

            try:
                paths = write_objects(prepared.objects, folder, prepared.stem, overwrite=True)
            except OSError as exc:
                win._error(f"The DICOM export failed: {exc.strerror or exc}.")
                return
            win.status_worker.setText(
                f"Exported {len(paths)} DICOM object(s) into {folder.name}")

        dialog = ConfirmDialog(win, "Export as DICOM", prepared, str(folder), write)
        dialog.show()
        win._pacs_dialog = dialog

    prepare_then(win, build, show, "No DICOM export")


# --- send -------------------------------------------------------------------------------------

class _Relay(QObject):
    """Carries a result from a network thread to the GUI thread."""

    done = Signal(object)


def run_in_thread(win: Any, work: Callable[[], Any], then: Callable[[Any], None]) -> None:
    """`work` on a network thread, `then(result)` on the GUI thread; a failure becomes a message
    (without this the window would wait on "Sending..." forever)."""
    relay = _Relay(win)
    relays = getattr(win, "_pacs_relays", None)
    if relays is None:
        relays = win._pacs_relays = set()
    relays.add(relay)  # kept alive until it has delivered, then let go

    def deliver(outcome: tuple[bool, Any]) -> None:
        relays.discard(relay)
        relay.deleteLater()
        ok, value = outcome
        if ok:
            then(value)
        else:
            win._error(f"The PACS operation failed: {value}.")

    def run() -> None:
        try:
            outcome = (True, work())
        except Exception as exc:  # noqa: BLE001 - shown to the user, not a traceback
            log.warning("PACS operation failed: %s", type(exc).__name__)
            outcome = (False, str(exc) or type(exc).__name__)
        relay.done.emit(outcome)

    relay.done.connect(deliver)
    threading.Thread(target=run, daemon=True, name="gradcam-pacs").start()


def send_dialog(win: Any) -> None:
    """Confirm (patient, study, objects, node; in `win._pacs_dialog` once the objects are
    built), then queue in the outbox and C-STORE."""
    from gradcam_viewer.outputs.dicom import DicomExportError
    from gradcam_viewer.pacs import NodeError, load_nodes

    try:
        nodes = load_nodes()
    except NodeError as exc:
        win._error(str(exc))
        return None
    if not nodes:
        win._error("No PACS node is configured. Add one in Settings > PACS nodes.")
        return None
    try:
        build = snapshot(win)
    except DicomExportError as exc:
        win._error(f"Nothing to send: {exc}.")
        return

    def show(prepared: Prepared) -> None:
        dialog: ConfirmDialog

        def send() -> None:
            send_prepared(win, prepared, dialog.chosen_node())

        dialog = ConfirmDialog(win, "Send to PACS", prepared, "the PACS node chosen above",
                               send, nodes)
        dialog.show()
        win._pacs_dialog = dialog

    prepare_then(win, build, show, "Nothing to send")


def send_prepared(win: Any, prepared: Prepared, node: Any) -> None:
    """Writes the objects into the outbox and C-STOREs what is pending there, all off the GUI
    thread (the Secondary Capture of a full-size radiograph alone is tens of MB)."""
    from gradcam_viewer.outputs.dicom import write_objects
    from gradcam_viewer.pacs import Outbox

    outbox = Outbox()
    win.status_worker.setText(f"Sending {len(prepared.objects)} object(s) to {node.label}...")

    def work() -> Any:
        try:
            with tempfile.TemporaryDirectory(prefix="gradcam-dicom-") as tmp:
                files = write_objects(prepared.objects, Path(tmp), prepared.stem)
                return outbox.send(node, files, lambda queued, _earlier: log.info(
                    "queued %d object(s) for a PACS node", len(queued)))
        except OSError as exc:
            return (f"The objects could not be put in the outbox: {exc.strerror or exc}. "
                    "Nothing was sent.")

    def then(report: Any) -> None:
        if isinstance(report, str):
            win._error(report)
            return
        win.last_send_report = report
        text = report.summary(node)
        if report.ok:
            win._notice(text + ".")
        else:
            win._error(f"{text}.\n\nThe objects not accepted stay in {outbox.node_folder(node)} "
                       "and are sent again with the next Send to PACS to this node.")

    run_in_thread(win, work, then)


# --- settings ---------------------------------------------------------------------------------

class NodesDialog(QDialog):
    """Settings > PACS nodes: the list, one node's fields, Test connection (C-ECHO), Save."""

    def __init__(self, parent: Any):
        from gradcam_viewer.pacs import NodeError, load_nodes

        super().__init__(parent)
        self.win = parent
        self.setWindowTitle("PACS nodes")
        self.resize(520, 380)
        try:
            self.nodes = load_nodes()
        except NodeError as exc:
            self.nodes = []
            parent._error(f"{exc}; starting from an empty list.")
        self.list = QListWidget()
        self.name, self.aet, self.host = QLineEdit(), QLineEdit(), QLineEdit()
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(104)
        self.calling = QLineEdit("GRADCAM_VIEWER")
        for field, limit in ((self.aet, 16), (self.calling, 16)):
            field.setMaxLength(limit)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("PACS AE title", self.aet)
        form.addRow("Host", self.host)
        form.addRow("Port", self.port)
        form.addRow("Our AE title", self.calling)
        self.status = QLabel("Nothing is sent until you choose File > Send to PACS.")
        self.status.setWordWrap(True)
        self.btn_add = QPushButton("Add / update")
        self.btn_remove = QPushButton("Remove")
        self.btn_test = QPushButton("Test connection")
        row = QHBoxLayout()
        for b in (self.btn_add, self.btn_remove, self.btn_test):
            row.addWidget(b)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel, parent=self)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.list)
        lay.addLayout(form)
        lay.addLayout(row)
        lay.addWidget(self.status)
        lay.addWidget(buttons)
        self.btn_add.clicked.connect(self.add_current)
        self.btn_remove.clicked.connect(self.remove_current)
        self.btn_test.clicked.connect(self.test_connection)
        self.list.currentRowChanged.connect(self._show)
        self._refill()
        self.setModal(False)
        parent._pacs_nodes_dialog = self

    def _refill(self) -> None:
        self.list.clear()
        self.list.addItems([f"{n.name}  ({n.label})" if n.name else n.label for n in self.nodes])

    def _show(self, row: int) -> None:
        if 0 <= row < len(self.nodes):
            n = self.nodes[row]
            self.name.setText(n.name)
            self.aet.setText(n.ae_title)
            self.host.setText(n.host)
            self.port.setValue(n.port)
            self.calling.setText(n.calling_ae_title)

    def current_node(self) -> Any:
        """The node in the fields, or None with the reason shown."""
        from gradcam_viewer.pacs import NodeError, PacsNode

        try:
            return PacsNode(self.aet.text().strip(), self.host.text().strip(),
                            self.port.value(), self.calling.text().strip(),
                            self.name.text().strip())
        except NodeError as exc:
            self.status.setText(f"Cannot use this node: {exc}.")
            return None

    def add_current(self) -> None:
        node = self.current_node()
        if node is None:
            return
        same = [i for i, n in enumerate(self.nodes) if n.label == node.label]
        if same:
            self.nodes[same[0]] = node
        else:
            self.nodes.append(node)
        self._refill()
        self.status.setText(f"{node.label} is in the list; Save keeps it.")

    def remove_current(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.nodes):
            del self.nodes[row]
            self._refill()

    def test_connection(self) -> None:
        from gradcam_viewer.pacs import echo

        node = self.current_node()
        if node is None:
            return
        self.btn_test.setEnabled(False)
        self.status.setText(f"Asking {node.label} for an echo...")

        def then(result) -> None:
            self.last_echo = result
            self.btn_test.setEnabled(True)
            self.status.setText(("Connection works: " if result.ok else "Connection failed: ")
                                + result.message + ".")

        run_in_thread(self.win, lambda: echo(node, timeout=10), then)

    def save(self) -> None:
        from gradcam_viewer.pacs import save_nodes

        try:
            path = save_nodes(self.nodes)
        except OSError as exc:
            QMessageBox.warning(self, "PACS nodes", f"Cannot save: {exc.strerror or exc}")
            return
        self.status.setText(f"Saved in {path}")
        self.accept()

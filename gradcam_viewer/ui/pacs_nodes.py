"""Settings > PACS nodes: the list, one node's fields (what it is used for: send and/or
query/retrieve; DIMSE or DICOMweb; the retrieve method and C-MOVE port; timeouts), Test
connection (C-ECHO, or a QIDO-RS search for DICOMweb), Save; and the retrieved-studies cache
(keep at exit, size limit, empty now)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gradcam_viewer.ui.network_jobs import NetworkJobs
from gradcam_viewer.ui.status import Messages

if TYPE_CHECKING:
    from gradcam_viewer.pacs import EchoResult, PacsNode
    from gradcam_viewer.ui.pacs_open import RetrieveSettings

KIND_TITLES = {"dimse": "DICOM (C-FIND, C-GET / C-MOVE, C-STORE)",
               "dicomweb": "DICOMweb (QIDO-RS, WADO-RS)"}
METHOD_TITLES = {"auto": "Auto (C-GET, then C-MOVE)", "get": "C-GET", "move": "C-MOVE"}


class NodesDialog(QDialog):
    last_echo: EchoResult  # the answer to the last Test connection, once there is one

    def __init__(self, parent: QWidget, network: NetworkJobs, messages: Messages,
                 cache: RetrieveSettings | None = None) -> None:
        from gradcam_viewer.pacs import NodeError, load_nodes

        super().__init__(parent)
        self._network = network
        self._cache = cache
        self.setWindowTitle("PACS nodes")
        self.resize(620, 640)
        try:
            self.nodes = load_nodes()
        except NodeError as exc:
            self.nodes = []
            messages.error(f"{exc}; starting from an empty list.")
        self.list = QListWidget()
        self.status = QLabel("Nothing is sent or asked until you choose File > Send to PACS or "
                             "File > Open from PACS.")
        self.status.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.list, 1)
        lay.addLayout(self._fields())
        lay.addLayout(self._node_buttons())
        lay.addWidget(self.status)
        if cache is not None:
            lay.addWidget(self._cache_box(cache))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel, parent=self)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.list.currentRowChanged.connect(self._show)
        self._refill()
        self._kind_changed()
        self.setModal(False)

    # ------------------------------------------------------------------ building ----
    def _fields(self) -> QFormLayout:
        from gradcam_viewer.pacs.nodes import DEFAULT_CALLING_AET, DEFAULT_MOVE_PORT

        self.name, self.aet, self.host = QLineEdit(), QLineEdit(), QLineEdit()
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(104)
        self.calling = QLineEdit(DEFAULT_CALLING_AET)
        for field, limit in ((self.aet, 16), (self.calling, 16)):
            field.setMaxLength(limit)
        self.kind = QComboBox()
        self.kind.addItems(list(KIND_TITLES.values()))
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.use_send, self.use_qr = QCheckBox("send results"), QCheckBox("query/retrieve")
        self.use_send.setChecked(True)
        self.use_qr.setChecked(True)
        uses = QHBoxLayout()
        uses.addWidget(self.use_send)
        uses.addWidget(self.use_qr)
        uses.addStretch(1)
        self.method = QComboBox()
        self.method.addItems(list(METHOD_TITLES.values()))
        self.move_port = QSpinBox()
        self.move_port.setRange(1, 65535)
        self.move_port.setValue(DEFAULT_MOVE_PORT)
        self.move_port.setToolTip("The port this viewer listens on while a C-MOVE runs; the PACS "
                                  "must have this viewer's AE title, host and this port")
        self.url = QLineEdit()
        self.url.setPlaceholderText("https://pacs.example/dicom-web")
        self.token_file = QLineEdit()
        self.token_file.setPlaceholderText("a file holding a bearer token (optional)")
        browse = QPushButton("Choose...")
        browse.clicked.connect(self._choose_token_file)
        token_row = self._token_row = QHBoxLayout()
        token_row.addWidget(self.token_file, 1)
        token_row.addWidget(browse)
        self.timeouts = [QDoubleSpinBox() for _ in range(3)]
        timeout_row = QHBoxLayout()
        for box, (label, value) in zip(self.timeouts, (("connect", 5.0), ("association", 10.0),
                                                       ("each message", 30.0)), strict=True):
            box.setRange(0.5, 3600.0)
            box.setDecimals(1)
            box.setSuffix(" s")
            box.setValue(value)
            timeout_row.addWidget(QLabel(label))
            timeout_row.addWidget(box)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Kind", self.kind)
        form.addRow("Use for", uses)
        form.addRow("PACS AE title", self.aet)
        form.addRow("Host", self.host)
        form.addRow("Port", self.port)
        form.addRow("Our AE title", self.calling)
        form.addRow("Retrieve with", self.method)
        form.addRow("C-MOVE port (ours)", self.move_port)
        form.addRow("DICOMweb URL", self.url)
        form.addRow("Token file", token_row)
        form.addRow("Timeouts", timeout_row)
        self.form = form
        return form

    def _cache_box(self, cache: RetrieveSettings) -> QGroupBox:
        box = QGroupBox("Retrieved studies (this computer's cache)")
        self.keep = QCheckBox("Keep retrieved studies when the viewer closes")
        self.keep.setChecked(cache.keep)
        self.cache_mb = QSpinBox()
        self.cache_mb.setRange(100, 1_000_000)
        self.cache_mb.setSingleStep(512)
        self.cache_mb.setSuffix(" MB")
        self.cache_mb.setValue(max(100, cache.cache_mb))
        self.cache_size = QLabel("")
        empty = QPushButton("Empty now")
        empty.clicked.connect(self.empty_cache)
        row = QHBoxLayout()
        row.addWidget(QLabel("At most"))
        row.addWidget(self.cache_mb)
        row.addWidget(QLabel("(the oldest studies go first)"))
        row.addStretch(1)
        row.addWidget(self.cache_size)
        row.addWidget(empty)
        lay = QVBoxLayout(box)
        lay.addWidget(self.keep)
        lay.addLayout(row)
        self._show_cache_size()
        return box

    def _node_buttons(self) -> QHBoxLayout:
        self.btn_add = QPushButton("Add / update")
        self.btn_remove = QPushButton("Remove")
        self.btn_test = QPushButton("Test connection")
        self.btn_add.clicked.connect(self.add_current)
        self.btn_remove.clicked.connect(self.remove_current)
        self.btn_test.clicked.connect(self.test_connection)
        row = QHBoxLayout()
        for b in (self.btn_add, self.btn_remove, self.btn_test):
            row.addWidget(b)
        return row

    # ------------------------------------------------------------------ the fields ----
    def _kind(self) -> str:
        return list(KIND_TITLES)[self.kind.currentIndex()]

    def _kind_changed(self) -> None:
        web = self._kind() == "dicomweb"
        for w in (self.aet, self.host, self.port, self.calling, self.method, self.move_port):
            self.form.setRowVisible(w, not web)
        self.form.setRowVisible(self.url, web)
        self.form.setRowVisible(self._token_row, web)
        self.use_send.setEnabled(not web)
        if web:
            self.use_send.setChecked(False)

    def _choose_token_file(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "The file holding the bearer token")
        if name:
            self.token_file.setText(name)

    def _refill(self) -> None:
        self.list.clear()
        for n in self.nodes:
            uses = "/".join(u for u, on in (("send", n.send), ("Q/R", n.query_retrieve)) if on)
            self.list.addItem(f"{n.title}  ({n.label}; {uses or 'unused'})")

    def _show(self, row: int) -> None:
        if not 0 <= row < len(self.nodes):
            return
        n = self.nodes[row]
        self.name.setText(n.name)
        self.kind.setCurrentIndex(list(KIND_TITLES).index(n.kind))
        self.use_send.setChecked(n.send)
        self.use_qr.setChecked(n.query_retrieve)
        self.aet.setText(n.ae_title)
        self.host.setText(n.host)
        self.port.setValue(max(1, n.port))
        self.calling.setText(n.calling_ae_title)
        self.method.setCurrentIndex(list(METHOD_TITLES).index(n.retrieve_method))
        self.move_port.setValue(n.move_port)
        self.url.setText(n.url)
        self.token_file.setText(n.token_file)
        for box, value in zip(self.timeouts, (n.connect_timeout, n.acse_timeout,
                                              n.dimse_timeout), strict=True):
            box.setValue(value)
        self._kind_changed()

    def current_node(self) -> PacsNode | None:
        """The node in the fields, or None with the reason shown."""
        from gradcam_viewer.pacs import NodeError, PacsNode

        web = self._kind() == "dicomweb"
        connect, acse, dimse = (box.value() for box in self.timeouts)
        try:
            return PacsNode(
                "" if web else self.aet.text().strip(), "" if web else self.host.text().strip(),
                0 if web else self.port.value(), self.calling.text().strip(),
                self.name.text().strip(), send=self.use_send.isChecked() and not web,
                query_retrieve=self.use_qr.isChecked(),
                retrieve_method=list(METHOD_TITLES)[self.method.currentIndex()],
                move_port=self.move_port.value(), kind=self._kind(),
                url=self.url.text().strip().rstrip("/") if web else "",
                token_file=self.token_file.text().strip() if web else "",
                connect_timeout=connect, acse_timeout=acse, dimse_timeout=dimse)
        except NodeError as exc:
            self.status.setText(f"Cannot use this node: {exc}.")
            return None

    # ------------------------------------------------------------------ actions ----
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
        from gradcam_viewer.pacs import qr

        node = self.current_node()
        if node is None:
            return
        self.btn_test.setEnabled(False)
        self.status.setText(f"Asking {node.label} for an answer...")

        def then(result: EchoResult) -> None:
            self.last_echo = result
            self.btn_test.setEnabled(True)
            self.status.setText(("Connection works: " if result.ok else "Connection failed: ")
                                + result.message + ".")

        self._network.run(lambda: qr.check(node), then)

    def empty_cache(self) -> None:
        if self._cache is not None:
            self._cache.cache().clear()
            self._show_cache_size()

    def _show_cache_size(self) -> None:
        if self._cache is not None:
            size = self._cache.cache().size()
            self.cache_size.setText(f"now {size / 2**20:.0f} MB")

    def save(self) -> None:
        from gradcam_viewer.pacs import save_nodes

        try:
            path = save_nodes(self.nodes)
        except OSError as exc:
            QMessageBox.warning(self, "PACS nodes", f"Cannot save: {exc.strerror or exc}")
            return
        if self._cache is not None:
            self._cache.keep = self.keep.isChecked()
            self._cache.cache_mb = self.cache_mb.value()
        self.status.setText(f"Saved in {path}")
        self.accept()

"""Settings > PACS nodes: the list, one node's fields, Test connection (C-ECHO), Save."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
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


class NodesDialog(QDialog):
    last_echo: EchoResult  # the answer to the last Test connection, once there is one

    def __init__(self, parent: QWidget, network: NetworkJobs, messages: Messages) -> None:
        from gradcam_viewer.pacs import NodeError, load_nodes

        super().__init__(parent)
        self._network = network
        self.setWindowTitle("PACS nodes")
        self.resize(520, 380)
        try:
            self.nodes = load_nodes()
        except NodeError as exc:
            self.nodes = []
            messages.error(f"{exc}; starting from an empty list.")
        self.list = QListWidget()
        self.status = QLabel("Nothing is sent until you choose File > Send to PACS.")
        self.status.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.list)
        lay.addLayout(self._fields())
        lay.addLayout(self._node_buttons())
        lay.addWidget(self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel, parent=self)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.list.currentRowChanged.connect(self._show)
        self._refill()
        self.setModal(False)

    def _fields(self) -> QFormLayout:
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
        return form

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

    def current_node(self) -> PacsNode | None:
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

        def then(result: EchoResult) -> None:
            self.last_echo = result
            self.btn_test.setEnabled(True)
            self.status.setText(("Connection works: " if result.ok else "Connection failed: ")
                                + result.message + ".")

        self._network.run(lambda: echo(node, timeout=10), then)

    def save(self) -> None:
        from gradcam_viewer.pacs import save_nodes

        try:
            path = save_nodes(self.nodes)
        except OSError as exc:
            QMessageBox.warning(self, "PACS nodes", f"Cannot save: {exc.strerror or exc}")
            return
        self.status.setText(f"Saved in {path}")
        self.accept()

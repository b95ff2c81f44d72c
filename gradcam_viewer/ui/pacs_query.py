"""The File > Open from PACS dialog: a node, the query fields, the studies found (expanding one
lists its series), and Retrieve for the study or series selected.

Queries run on a Python thread (`NetworkJobs`); the dialog never blocks. Patient names and IDs
show only when "Show patient-identifying fields" is ticked (else "Patient 1", "Patient 2"...,
as in the Studies panel); nothing here logs them."""

from __future__ import annotations

import html
from datetime import date
from typing import TYPE_CHECKING

from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gradcam_viewer.pacs.query import (
    DATE_PRESETS,
    DEFAULT_LIMIT,
    DEFAULT_MODALITIES,
    MAX_LIMIT,
    QueryError,
    SeriesMatch,
    StudyList,
    StudyMatch,
    StudyQuery,
    date_range,
)
from gradcam_viewer.ui.network_jobs import NetworkJobs
from gradcam_viewer.ui.status import Messages

if TYPE_CHECKING:
    from gradcam_viewer.pacs.nodes import PacsNode
    from gradcam_viewer.ui.pacs_open import OpenFromPacs

STUDY_ROLE = Qt.ItemDataRole.UserRole + 20  # index into `studies`
SERIES_ROLE = Qt.ItemDataRole.UserRole + 21  # the SeriesMatch
LOADING = "Listing the series..."


def _date(da: str) -> str:
    return f"{da[:4]}-{da[4:6]}-{da[6:8]}" if len(da) == 8 and da.isdigit() else da


def _count(n: int | None) -> str:
    return "" if n is None else str(n)


class QueryDialog(QDialog):
    """`studies` holds the last answer; `series[study_uid]` the series listed so far."""

    def __init__(self, parent: QWidget, opener: OpenFromPacs, messages: Messages) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open from PACS")
        self.resize(900, 560)
        self._opener, self._messages = opener, messages
        self._network = NetworkJobs(self, messages)
        self.nodes: list[PacsNode] = []
        self.studies: list[StudyMatch] = []
        self.series: dict[str, list[SeriesMatch]] = {}
        self.answer: StudyList | None = None
        self.querying = False
        lay = QVBoxLayout(self)
        lay.addLayout(self._node_row())
        lay.addLayout(self._fields())
        self.tree = self._build_tree()
        lay.addWidget(self.tree, 1)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        lay.addWidget(self._buttons())
        self.reload_nodes()
        self.setModal(False)

    # ------------------------------------------------------------------ building ----
    def _node_row(self) -> QHBoxLayout:
        self.node_box = QComboBox()
        row = QHBoxLayout()
        row.addWidget(QLabel("PACS node:"))
        row.addWidget(self.node_box, 1)
        return row

    def _fields(self) -> QGridLayout:
        self.patient_id, self.patient_name = QLineEdit(), QLineEdit()
        self.accession, self.description = QLineEdit(), QLineEdit()
        self.patient_name.setPlaceholderText("DOE^J*")
        self.patient_name.setToolTip("* and ? are wildcards; a name without them matches the "
                                     "names starting with it")
        self.modality = QLineEdit(",".join(DEFAULT_MODALITIES))
        self.modality.setToolTip("Modalities separated by commas; empty for any")
        self.date_preset = QComboBox()
        self.date_preset.addItems([p.capitalize() for p in DATE_PRESETS])
        today = QDate.currentDate()
        self.date_from, self.date_to = QDateEdit(today.addDays(-7)), QDateEdit(today)
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.limit = QSpinBox()
        self.limit.setRange(1, MAX_LIMIT)
        self.limit.setValue(DEFAULT_LIMIT)
        self.date_preset.currentIndexChanged.connect(self._date_preset_changed)
        self._date_preset_changed()
        dates = QHBoxLayout()
        for w in (self.date_preset, QLabel("from"), self.date_from, QLabel("to"), self.date_to):
            dates.addWidget(w)
        grid = QGridLayout()
        left, right = QFormLayout(), QFormLayout()
        left.addRow("Patient ID", self.patient_id)
        left.addRow("Patient name", self.patient_name)
        left.addRow("Accession number", self.accession)
        right.addRow("Study date", dates)
        right.addRow("Modality", self.modality)
        right.addRow("Description", self.description)
        grid.addLayout(left, 0, 0)
        grid.addLayout(right, 0, 1)
        self.query_button = QPushButton("Query")
        self.query_button.setDefault(True)
        self.query_button.clicked.connect(self.query)
        row = QHBoxLayout()
        row.addWidget(QLabel("At most"))
        row.addWidget(self.limit)
        row.addWidget(QLabel("studies"))
        row.addStretch(1)
        row.addWidget(self.query_button)
        grid.addLayout(row, 1, 0, 1, 2)
        return grid

    def _build_tree(self) -> QTreeWidget:
        tree = QTreeWidget()
        tree.setColumnCount(6)
        tree.setHeaderLabels(["Study date / series", "Patient", "Modality", "Accession",
                              "Description", "Images"])
        tree.setRootIsDecorated(True)
        header = tree.header()
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        tree.itemExpanded.connect(self._expanded)
        tree.itemSelectionChanged.connect(self._selection_changed)
        tree.itemDoubleClicked.connect(lambda _item, _col: self.retrieve_selected())
        return tree

    def _buttons(self) -> QDialogButtonBox:
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        self.retrieve_button = QPushButton("Retrieve and open")
        self.retrieve_button.setEnabled(False)
        self.retrieve_button.clicked.connect(self.retrieve_selected)
        box.addButton(self.retrieve_button, QDialogButtonBox.ButtonRole.ActionRole)
        box.rejected.connect(self.close)
        return box

    # ------------------------------------------------------------------ the query ----
    def reload_nodes(self) -> None:
        """The nodes marked for query/retrieve, as Settings > PACS nodes last saved them (the
        dialog stays open between uses, with its last answer)."""
        from gradcam_viewer.pacs import NodeError, load_nodes

        chosen = self.node()
        try:
            self.nodes = [n for n in load_nodes() if n.query_retrieve]
        except NodeError as exc:
            self.nodes = []
            self._messages.error(str(exc))
        self.node_box.clear()
        self.node_box.addItems([f"{n.title}  ({n.label})" if n.name else n.label
                                for n in self.nodes])
        if chosen in self.nodes:
            self.node_box.setCurrentIndex(self.nodes.index(chosen))
        if not self.nodes:
            self.note.setText("No PACS node is set up for query/retrieve. Add one in Settings > "
                              "PACS nodes and tick \"query/retrieve\".")
        self.query_button.setEnabled(bool(self.nodes) and not self.querying)

    def _date_preset_changed(self) -> None:
        custom = DATE_PRESETS[self.date_preset.currentIndex()] == "range"
        self.date_from.setEnabled(custom)
        self.date_to.setEnabled(custom)

    def node(self) -> PacsNode | None:
        index = self.node_box.currentIndex()
        return self.nodes[index] if 0 <= index < len(self.nodes) else None

    def current_query(self) -> StudyQuery:
        """The query in the fields; QueryError (in words) when it cannot be sent."""
        preset = DATE_PRESETS[self.date_preset.currentIndex()]
        start, end = self.date_from.date().toPython(), self.date_to.date().toPython()
        assert isinstance(start, date) and isinstance(end, date)
        modalities = tuple(m.strip().upper() for m in self.modality.text().replace(" ", ",")
                           .split(",") if m.strip())
        query = StudyQuery(patient_id=self.patient_id.text().strip(),
                           patient_name=self.patient_name.text().strip(),
                           accession=self.accession.text().strip(),
                           study_date=date_range(preset, date.today(), start, end),
                           modalities=modalities, description=self.description.text().strip(),
                           limit=self.limit.value())
        query.check()
        return query

    def query(self) -> None:
        """Send the query (off the GUI thread); the answer fills the list."""
        from gradcam_viewer.pacs import qr
        from gradcam_viewer.pacs.dimse import PacsError

        node = self.node()
        if node is None or self.querying:
            return
        try:
            query = self.current_query()
        except QueryError as exc:
            self.note.setText(f"Not sent: {exc}.")
            return
        self.querying = True
        self.query_button.setEnabled(False)
        self.note.setText(f"Asking {node.title}...")

        def work() -> StudyList | str:
            try:
                return qr.find_studies(node, query)
            except (PacsError, QueryError) as exc:
                return str(exc)

        def then(answer: StudyList | str) -> None:
            self.querying = False
            self.query_button.setEnabled(True)
            if isinstance(answer, str):
                self.note.setText(answer)
                return
            self.answer, self.studies, self.series = answer, answer.studies, {}
            self.fill()
            found = f"{len(answer.studies)} stud{'y' if len(answer.studies) == 1 else 'ies'}"
            self.note.setText(" ".join(x for x in (f"{found} found.", answer.note()) if x))

        self._network.run(work, then)

    # ------------------------------------------------------------------ the list ----
    def fill(self) -> None:
        """The studies (and series listed so far), patients named as the user chose."""
        show = self._opener.show_identifying()
        numbers: dict[tuple[str, str], int] = {}
        self.tree.clear()
        for index, study in enumerate(self.studies):
            who = study.identifying
            number = numbers.setdefault((who.patient_id, who.patient_name), len(numbers) + 1)
            patient = (f"{who.display_name} ({who.patient_id})" if show
                       else f"Patient {number}")
            item = QTreeWidgetItem([_date(study.date), patient, ", ".join(study.modalities),
                                    study.accession, study.description,
                                    _count(study.n_instances)])
            item.setData(0, STUDY_ROLE, index)
            item.setToolTip(4, html.escape(study.description))
            item.setChildIndicatorPolicy(QTreeWidgetItem.ChildIndicatorPolicy.ShowIndicator)
            self.tree.addTopLevelItem(item)
            self._add_series(item, self.series.get(study.study_uid))
        for column in (0, 1, 2, 3, 5):
            self.tree.resizeColumnToContents(column)

    def _add_series(self, item: QTreeWidgetItem, series: list[SeriesMatch] | None) -> None:
        if series is None:
            return
        for s in series:
            number = f"#{s.number} " if s.number is not None else ""
            child = QTreeWidgetItem([f"{number}{s.description or 'Series'}", "", s.modality, "",
                                     "", _count(s.n_instances)])
            child.setData(0, SERIES_ROLE, s)
            item.addChild(child)
        if not series:
            item.addChild(QTreeWidgetItem(["(no series)"]))

    def _expanded(self, item: QTreeWidgetItem) -> None:
        """A study opened in the list: its series are asked for (once)."""
        from gradcam_viewer.pacs import qr
        from gradcam_viewer.pacs.dimse import PacsError

        index = item.data(0, STUDY_ROLE)
        node = self.node()
        if index is None or node is None or item.childCount():
            return
        study = self.studies[int(index)]
        loading = QTreeWidgetItem([LOADING])
        item.addChild(loading)

        def work() -> list[SeriesMatch] | str:
            try:
                return qr.find_series(node, study.study_uid)
            except PacsError as exc:
                return str(exc)

        def then(found: list[SeriesMatch] | str) -> None:
            if isinstance(found, str):
                self.note.setText(found)
                found = []
            self.series[study.study_uid] = found
            for row in range(self.tree.topLevelItemCount()):
                top = self.tree.topLevelItem(row)
                if top is not None and top.data(0, STUDY_ROLE) == index:
                    top.takeChildren()
                    self._add_series(top, found)
                    top.setExpanded(True)

        self._network.run(work, then)

    def _selection_changed(self) -> None:
        self.retrieve_button.setEnabled(self._selected() is not None)

    def _selected(self) -> tuple[StudyMatch, SeriesMatch | None] | None:
        items = self.tree.selectedItems()
        if not items:
            return None
        item = items[0]
        series = item.data(0, SERIES_ROLE)
        parent = item.parent() if series is not None else item
        index = parent.data(0, STUDY_ROLE) if parent is not None else None
        if index is None:
            return None
        return self.studies[int(index)], series if isinstance(series, SeriesMatch) else None

    def retrieve_selected(self) -> None:
        chosen, node = self._selected(), self.node()
        if chosen is None or node is None:
            return
        study, series = chosen
        self._opener.retrieve(node, study.study_uid, series.series_uid if series else "")
        what = "series" if series else "study"
        self.note.setText(f"Retrieving the {what} from {node.title}; it opens as it arrives.")

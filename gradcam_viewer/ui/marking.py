"""Marking findings in the viewer: the Marks menu's actions, the finding box on the toolbar,
the live score in the findings list and the grid, and File > Export marks.

The marks themselves live in the Qt-free `MarkEditor` (marks/history.py: the store, undo);
`MarksLayer` draws them and turns the mouse into edits. The window hands this class the parts
it works with and calls `show_image` when the image changes and `refresh_scores` when the
heatmap, the finding picked or the threshold change. The score is computed on a thread of its
own (ui/live_score.py) and shown when it comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtWidgets import QComboBox, QFileDialog, QSizePolicy, QWidget

from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.marks.export import nih_csv, own_marks, shapes_json
from gradcam_viewer.marks.history import MarkEditor
from gradcam_viewer.marks.live import LiveScore, ScoreInput
from gradcam_viewer.marks.scores import Localisation
from gradcam_viewer.marks.shapes import Mark
from gradcam_viewer.marks.store import MarkStore, image_key
from gradcam_viewer.outputs.safe_write import write_bytes_atomic
from gradcam_viewer.session.results import ResultCache
from gradcam_viewer.session.snapshot import Snapshot
from gradcam_viewer.ui.findings import FindingsPanel
from gradcam_viewer.ui.image_area import ImageArea
from gradcam_viewer.ui.live_score import ScoreThread
from gradcam_viewer.ui.marks_layer import MarksLayer, Tool
from gradcam_viewer.ui.menus import Actions, Handler
from gradcam_viewer.ui.status import Messages

log = logging.getLogger(__name__)
TOOLS = {"mark_rect": Tool.RECTANGLE, "mark_ellipse": Tool.ELLIPSE, "mark_polygon": Tool.POLYGON}
SCORE_HELP = ("The heatmap against each finding's marks: yours, and apart from them the "
              "read-only marks of other readers' reports (\"read-only\"): pointing game (hit "
              "when the map's maximum lies in a mark), energy (share of the map's total inside "
              "the marks), IoU and IoBB of the map above the Heatmap box's threshold. The same "
              "numbers as gradcam-viewer evaluate gives at its threshold, 0.5 (--marks for "
              "yours, --boxes on the reports' folder for theirs).")
READ_ONLY_TIP = "Against read-only marks of another reader (under the list: whose)"


def short_score(score: Localisation) -> str:
    """For the findings list's column and the grid's tiles."""
    return f"{'hit' if score.hit else 'miss'} \u00b7 E {score.energy:.2f}"


def short_scores(score: LiveScore) -> tuple[dict[int, str], set[int]]:
    """A finding's short score against your marks, else against the read-only ones, and the
    findings whose score is the read-only marks' (shown apart)."""
    out = {k: short_score(s) for k, s in score.theirs.items()}
    out.update({k: short_score(s) for k, s in score.yours.items()})
    return out, set(score.theirs) - set(score.yours)


def score_line(label: str, whose: str, score: Localisation) -> str:
    return (f"{label} vs {whose}: pointing {'hit' if score.hit else 'miss'}, energy "
            f"{score.energy:.2f}, IoU {score.iou:.2f}, IoBB {score.iobb:.2f} "
            f"(map \u2265 {score.threshold:.2f})")


class Marking:
    def __init__(self, parent: QWidget, area: ImageArea, findings: FindingsPanel,
                 messages: Messages, cache: ResultCache, shown: Callable[[], Snapshot],
                 last_dir: Callable[[], str], store: MarkStore | None = None) -> None:
        self.parent, self.area, self.findings = parent, area, findings
        self.messages, self.cache, self._shown, self._last_dir = messages, cache, shown, last_dir
        self.editor = MarkEditor(store, saved=lambda _marks: self._changed())
        self.finding_box = QComboBox()
        self.finding_box.setEditable(True)
        self.finding_box.setToolTip("The finding of new marks (a model label, or type "
                                    "another); with a mark selected, its finding")
        self.finding_box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.finding_box.setMinimumContentsLength(16)
        line = self.finding_box.lineEdit()
        assert line is not None  # an editable combo box has one
        line.editingFinished.connect(self._finding_typed)
        self.finding_box.activated.connect(lambda _i: self._finding_typed())
        self.layer = MarksLayer(area.view, self.editor, self.finding, messages.error)
        self.score = LiveScore()  # shown; for `_request` once `scoring` is over
        self._request: ScoreInput | None = None
        self._token = self._answered = 0
        self._picked: tuple[int | None, list[str]] = (None, [])
        self._thread = ScoreThread(parent)
        self._thread.ready.connect(self._scored)
        self.act: Actions | None = None
        findings.label_chosen.connect(self._label_picked)

    # --- set-up ---------------------------------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        out: dict[str, Handler] = {name: self._tool_handler(tool) for name, tool in TOOLS.items()}
        out.update({
            "mark_none": self.mark_no_finding, "mark_copy": self.copy_selected,
            "mark_delete": self.delete, "mark_undo": self.undo, "mark_redo": self.redo,
            "marks_shown": self.set_shown, "export_marks": self.export_dialog,
        })
        return out

    def attach(self, act: Actions) -> None:
        """After the window built its actions: the finding box on the toolbar, marks shown.
        The tools and "Show marks" show their state as checked actions (a key's action is not
        checkable in the table: its handler is connected to `triggered`, which then carries
        the new state)."""
        self.act = act
        act.toolbar.addWidget(self.finding_box)
        for name in (*TOOLS, "marks_shown"):
            act[name].setCheckable(True)
        act["marks_shown"].setChecked(True)

    def shutdown(self) -> None:
        """The window closes: the score thread stops (and is waited for)."""
        self._thread.close()

    # --- the image and its marks ----------------------------------------------------------
    def show_image(self, image: LoadedImage | None) -> None:
        self.layer.set_tool(self.layer.tool)  # a gesture on the old image ends
        if image is None:
            self.editor.show(None)
        else:
            uid = image.metadata.get("SOPInstanceUID")
            try:
                key = image_key(image.path, image.frame, uid.value if uid else None)
            except OSError as exc:  # the file went away after it was read
                log.warning("no marks key for the image (%s)", exc.strerror)
                self.editor.show(None)
            else:
                self.editor.show(key, image.path.name, image.size)
        self._changed()

    def add_read_only(self, marks: list[Mark], sources: Iterable[str] = ()) -> None:
        """Marks read from elsewhere (each with its `source`), shown with the image's own and
        kept with them, not as an edit (Undo leaves them). They replace what their reports,
        and the reports named in `sources`, gave before (`MarkEditor.add_read_only`)."""
        if self.editor.marks is not None:
            self._edit(lambda: self.editor.add_read_only(marks, sources))

    def finding(self) -> str:
        text = self.finding_box.currentText().strip()
        return text or "Finding"

    # --- actions --------------------------------------------------------------------------
    def _tool_handler(self, tool: Tool) -> Callable[[bool], None]:
        def chosen(on: bool = False) -> None:
            self.set_tool(tool if on else Tool.SELECT)
        return chosen

    def set_tool(self, tool: Tool) -> None:
        self.layer.set_tool(tool)
        if self.act is not None:
            for name, t in TOOLS.items():
                action = self.act[name]
                action.blockSignals(True)
                action.setChecked(t is tool)
                action.blockSignals(False)
        if tool is not Tool.SELECT and not self.layer.shown and self.act is not None:
            self.act["marks_shown"].setChecked(True)  # drawing unseen marks helps nobody

    def set_shown(self, on: bool = True) -> None:
        self.layer.set_shown(on)
        self._refresh_grid()

    def mark_no_finding(self) -> None:
        self._edit(lambda: self.editor.put(Mark.no_finding()))

    def copy_selected(self) -> None:
        mark = self.editor.selected_mark()
        if mark is None or not mark.read_only:
            self.messages.status("Select a read-only mark to edit a copy of it")
            return
        self._edit(self.editor.copy_selected)

    def delete(self) -> None:
        if self.layer.drawing():
            return
        self._edit(self.editor.delete)

    def undo(self) -> None:
        if self.editor.marks is not None:
            self._edit(self.editor.undo)

    def redo(self) -> None:
        if self.editor.marks is not None:
            self._edit(self.editor.redo)

    def _edit(self, job: Callable[[], object]) -> None:
        if self.editor.marks is None:
            self.messages.status("Open an image to mark it")
            return
        try:
            job()
        except (OSError, ValueError) as exc:
            self.messages.error(f"The marks were not changed: {exc}")
        self._changed()

    def _finding_typed(self) -> None:
        mark = self.editor.selected_mark()
        text = self.finding()
        if mark is not None and not mark.read_only and mark.is_region and mark.finding != text:
            self._edit(lambda: self.editor.put(mark.with_finding(text)))

    def _label_picked(self, index: int) -> None:
        labels = self.findings.labels.labels()
        if self.editor.selected_mark() is None and 0 <= index < len(labels):
            self.finding_box.setEditText(labels[index])

    # --- what is shown --------------------------------------------------------------------
    def _changed(self) -> None:
        self.layer.redraw()
        mark = self.editor.selected_mark()
        if mark is not None and mark.is_region:
            self.finding_box.setEditText(mark.finding)
        self.refresh_scores()

    @property
    def scores(self) -> dict[int, Localisation]:
        """The live score against your marks, by model output index."""
        return self.score.yours

    @property
    def scoring(self) -> bool:
        """The score shown is not yet the one of what is on screen."""
        return self._answered != self._token

    def refresh_scores(self) -> None:
        """The live score of every finding with marks, for the heatmap on screen: asked of the
        score thread when what it depends on changed, shown when it answers."""
        shown = self._shown()
        labels = self.findings.labels.labels()
        if self.finding_box.count() != len(labels) or any(
                self.finding_box.itemText(i) != label for i, label in enumerate(labels)):
            text = self.finding_box.currentText()
            self.finding_box.clear()
            self.finding_box.addItems(labels)
            self.finding_box.setEditText(text)
        self._picked = (shown.label, shown.names)
        marks, result, image = self.editor.marks, shown.result, shown.image
        request = None
        if marks is not None and result is not None and image is not None and marks.regions():
            request = ScoreInput(result.key, result.normalized, tuple(shown.names), marks,
                                 image.size, shown.style.threshold)
        if request == self._request:
            self._show_scores()  # the same numbers; the finding picked may have changed
            return
        before, self._request = self._request, request
        self._token += 1
        if request is None or before is None or (request.result, request.marks.key) != (
                before.result, before.marks.key):
            self.score = LiveScore()  # another image's numbers are not shown meanwhile
            self._show_scores()
        if request is None:
            self._answered = self._token
        else:
            self._thread.submit(self._token, request)

    def _scored(self, token: int, score: LiveScore) -> None:
        if token == self._token:
            self._answered = token
            self.score = score
            self._show_scores()

    def _show_scores(self) -> None:
        picked, names = self._picked
        lines = []
        if picked is not None and picked < len(names):
            if picked in self.score.yours:
                lines.append(score_line(names[picked], "your marks", self.score.yours[picked]))
            if picked in self.score.theirs:
                whose = f"read-only marks ({self.score.sources[picked]})"
                lines.append(score_line(names[picked], whose, self.score.theirs[picked]))
        texts, theirs = short_scores(self.score)
        self.findings.show_mark_scores(texts, "\n".join(lines), SCORE_HELP, theirs,
                                       READ_ONLY_TIP)
        self._refresh_grid()

    def _refresh_grid(self) -> None:
        grid = self.area.grid
        texts, theirs = short_scores(self.score)
        grid.set_marks(self.editor.marks if self.layer.shown else None, texts, theirs)
        self.area.refresh_grid()

    # --- export ---------------------------------------------------------------------------
    def export(self, csv_path: Path) -> tuple[Path, Path]:
        """Your marks on every image in the store (not those read from other readers'
        reports): the NIH-layout CSV and the JSON beside it."""
        images = own_marks(self.editor.store)
        json_path = csv_path.with_suffix(".json")
        write_bytes_atomic(csv_path, nih_csv(images).encode("utf-8"), overwrite=True)
        write_bytes_atomic(json_path, shapes_json(images).encode("utf-8"), overwrite=True)
        return csv_path, json_path

    def export_dialog(self) -> None:
        start = str(Path(self._last_dir() or ".") / "marks.csv")
        name, _ = QFileDialog.getSaveFileName(self.parent, "Export marks (CSV and JSON)", start,
                                              "CSV (*.csv)")
        if not name:
            return
        try:
            csv_path, json_path = self.export(Path(name))
        except OSError as exc:
            self.messages.error(f"The marks could not be exported: {exc.strerror or exc}")
            return
        self.messages.status(f"Marks written to {csv_path.name} and {json_path.name}")

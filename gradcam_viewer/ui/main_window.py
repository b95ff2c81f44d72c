"""The main window: it builds the parts, connects them, and carries the session's effects out.

What is shown and which work is in flight is the `SessionController`'s plain state: the window
forwards user actions and worker replies to it, sends the requests it returns to the worker
(`WorkerLink`), and has the parts redraw what it says changed. The parts keep their own state
and get what they need through a typed interface: a `Snapshot` of what is shown, the session,
or `Messages` to tell the user something.

    centre      ImageArea (banners, image view or grid, information line)   ui/image_area.py
    right dock  ExplanationTabs: FindingsPanel, HeatmapControls, metadata   ui/findings.py
    left dock   StudiesPanel                                                ui/studies_panel.py
    menus, toolbar, keys: the table in ui/actions.py, built by ui/menus.py
    File > exports: Exports (ui/exporting.py); DICOM and PACS: Pacs (ui/pacs_dialogs.py)
    marks: Marking (ui/marking.py); their DICOM reports, read and written: MarksDicom
    File > Open from PACS, `open_study`: OpenFromPacs (ui/pacs_open.py, ui/pacs_query.py)
    Help > Check this model: ModelCheck (ui/trust_view.py); set-up: ModelSetup (ui/model_setup.py)

The GUI thread never runs the model; it windows no image and colours no heatmap either (the
render thread does).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow

from gradcam_viewer.imaging.studies import Catalogue
from gradcam_viewer.pacs.qr import StudyRequest
from gradcam_viewer.render.overlay import OverlayStyle, effective_opacity
from gradcam_viewer.session.controller import (
    Effects,
    ModelRequest,
    OpenRequest,
    Redraw,
    SessionController,
)
from gradcam_viewer.session.results import DEFAULT_BUDGET_MB, ExplainResult, ResultCache
from gradcam_viewer.session.retrieval import Listing
from gradcam_viewer.session.snapshot import Snapshot
from gradcam_viewer.ui import dialogs, file_dialogs, preload
from gradcam_viewer.ui.exporting import Exports
from gradcam_viewer.ui.findings import ExplanationTabs
from gradcam_viewer.ui.image_area import ImageArea
from gradcam_viewer.ui.marking import Marking
from gradcam_viewer.ui.marks_dicom import MarksDicom
from gradcam_viewer.ui.menus import Actions, Handler, shortcuts_html
from gradcam_viewer.ui.model_setup import ModelSetup
from gradcam_viewer.ui.pacs_dialogs import Pacs
from gradcam_viewer.ui.pacs_open import OpenFromPacs
from gradcam_viewer.ui.presets import WindowPresets
from gradcam_viewer.ui.status import TITLE, Messages, StatusPanel
from gradcam_viewer.ui.studies_panel import StudiesPanel
from gradcam_viewer.ui.trust_view import ModelCheck
from gradcam_viewer.ui.window_settings import RecentFiles, restore_layout, save_layout
from gradcam_viewer.ui.worker_link import WorkerLink


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None) -> None:
        preload.start()  # TensorFlow's import runs while the window is built (once per process)
        super().__init__()
        self.setWindowTitle(TITLE)
        self.resize(1400, 900)
        self.setAcceptDrops(True)
        self.settings = settings or QSettings("gradcam-viewer", "gradcam-viewer")
        budget_mb = int(str(self.settings.value("memory/cache_mb", DEFAULT_BUDGET_MB)))
        read_ahead = str(self.settings.value("reading/read_ahead", "true")).lower() == "true"
        self.session = SessionController(cache=ResultCache(budget_mb << 20),
                                         read_ahead=read_ahead)
        self._build_parts()
        self._build_docks()
        self.act = Actions(self, self._handlers())
        self.marking.attach(self.act)
        self.recent = RecentFiles(self.settings, self.act.submenus["recent"])
        self.presets = WindowPresets(self.act.toolbar, self.act.submenus["presets"])
        self._connect()
        self.image_area.view.setFocus()
        restore_layout(self, self.tabs.splitter, self.settings)

    # ------------------------------------------------------------------ construction ----
    def _build_parts(self) -> None:
        self.image_area = ImageArea(self.snapshot, self.session.cache)
        self.setCentralWidget(self.image_area)
        self.tabs = ExplanationTabs()
        self.findings, self.controls = self.tabs.findings, self.tabs.controls
        self.studies = StudiesPanel()
        self.status = StatusPanel(self.statusBar())
        self.messages = Messages(self, self.status.worker)
        self.link = WorkerLink(self, self.session, self._apply,
                               drawing=lambda: not self.image_area.drawn())
        self.worker = self.link.worker
        self.check = ModelCheck(self, self.worker, self.session, self.statusBar())
        self.model_setup = ModelSetup(self, self.worker, self.session)
        self.exports = Exports(self, self.snapshot, self.image_area.view.render_scene,
                               self.messages, self._last_dir)
        self.pacs = Pacs(self, self.snapshot, self.messages, self._last_dir)
        self.pacs_open = OpenFromPacs(self, self.settings, self.messages, self.statusBar(),
                                      self._retrieved,
                                      self.tabs.metadata.show_identifying.isChecked)
        self.marking = Marking(self, self.image_area, self.findings, self.messages,
                               self.session.cache, self.snapshot, self._last_dir)
        self.marks_dicom = MarksDicom(self, self.marking, self.pacs, self.messages,
                                      self.settings)

    def _build_docks(self) -> None:
        right = QDockWidget("Explanation", self)
        right.setObjectName("explanation")
        right.setWidget(self.tabs)
        right.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, right)
        self.resizeDocks([right], [380], Qt.Orientation.Horizontal)
        # left: the Studies panel (its own reader thread; Page Up/Down follow its order)
        left = QDockWidget("Studies", self)
        left.setObjectName("studies")
        left.setWidget(self.studies)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, left)

    def _handlers(self) -> dict[str, Handler]:
        """What each row of the actions table does (ui/actions.py), by its name."""
        view, ex, pacs, s = self.image_area.view, self.exports, self.pacs, self.session
        return {
            "open": lambda: self.open_paths(file_dialogs.images(self, self._last_dir())),
            "open_folder": lambda: self.open_paths(file_dialogs.folder(self, self._last_dir())),
            "model": lambda: self.load_model(*file_dialogs.model(self, self._last_dir())),
            "chexnet": lambda: self.load_model(*file_dialogs.chexnet(self, self._last_dir())),
            "open_pacs": self.pacs_open.show_dialog, "demo": lambda: self.load_model("demo", ""),
            "export_png": ex.view_png_dialog, "export_csv": lambda: ex.predictions_dialog("csv"),
            "export_json": lambda: ex.predictions_dialog("json"),
            "include_phi": ex.set_include_identifying, "no_ids": ex.set_leave_out_ids,
            "export_dicom": lambda: pacs.export_dicom(), "send_pacs": lambda: pacs.send(),
            "quit": self.close, "next": lambda: self.step_file(1),
            "prev": lambda: self.step_file(-1), "fit": view.fit, "one": view.actual_size,
            "zoom_in": lambda: view.zoom_by(1.25), "zoom_out": lambda: view.zoom_by(0.8),
            "invert": lambda: self._apply(s.toggle_invert()), "reset": self._reset_view,
            "overlay": self.controls.overlay_box.toggle, "contours": self.controls.contours.toggle,
            "method": self.controls.cycle_method, "order": self.findings.toggle_order,
            "grid": self.image_area.toggle_grid, "label_up": lambda: self.findings.step(-1),
            "label_down": lambda: self.findings.step(1),
            "pacs_nodes": lambda: pacs.show_nodes(self.pacs_open.settings),
            "card": lambda: dialogs.model_card(self, s.model), "check": self.check.start,
            "keys": lambda: dialogs.text_dialog(self, "Keyboard shortcuts", shortcuts_html()),
            "about": lambda: dialogs.about(self),
            **self.marking.handlers(), **self.marks_dicom.handlers(),
        }

    def _connect(self) -> None:
        s, area = self.session, self.image_area
        self.controls.style_changed.connect(lambda style: self._apply(s.change_style(style)))
        self.controls.opacity_changed.connect(self._opacity_changed)
        self.controls.method_changed.connect(lambda method: self._apply(s.change_method(method)))
        self.controls.overlay_toggled.connect(lambda on: self._apply(s.show_overlay(on)))
        self.findings.label_chosen.connect(lambda _label: self._draw_overlay())
        self.findings.order_changed.connect(area.refresh_grid)
        area.grid.label_chosen.connect(self._grid_chosen)
        area.view.window_dragged.connect(lambda dx, dy: self._apply(s.drag_window(dx, dy)))
        area.view.zoom_changed.connect(lambda _zoom: self._update_info())
        self.presets.chosen.connect(lambda index: self._apply(s.apply_preset(index)))
        self.recent.chosen.connect(lambda path: self.open_paths([path]))
        self.model_setup.saved.connect(lambda path: self.load_model("keras", path))
        self.tabs.metadata.show_identifying.toggled.connect(self.studies.set_show_identifying)
        self.studies.image_chosen.connect(lambda path, frame: self._apply(s.open_listed(path, frame)))
        self.studies.catalogue_ready.connect(self._catalogue_ready)
        area.caught_up.connect(self.link.release)  # reads ahead once the screen has drawn
        self.studies.scan_progress.connect(lambda found: self._apply(s.scan_progress(found)))
        # from the worker's thread: to slots of GUI-thread objects (queued), never lambdas
        self.worker.status.connect(self.status.worker.setText)
        self.worker.setup_needed.connect(self.model_setup.open)

    # ------------------------------------------------------------------ what is shown ----
    def snapshot(self) -> Snapshot:
        s = self.session
        return Snapshot(s.image, s.result, s.model, self.findings.current_label(),
                        tuple(self.findings.order()), s.style, s.overlay_on, s.view,
                        tuple(s.files.paths))

    def drawn(self) -> bool:
        """Whether the screen shows the current image, window and heatmap (no job pending)."""
        return self.image_area.drawn()

    # ------------------------------------------------------------------ user events ----
    def load_model(self, kind: str = "", path: str = "", reference_images: str = "") -> None:
        """Load a model (`kind` empty: a file dialog was cancelled, nothing to load)."""
        if kind:
            self._apply(self.session.load_model(kind, path, reference_images))

    def open_paths(self, paths: list[Path], first: Path | None = None) -> None:
        """Files, folders or DICOMDIRs: scanned by the Studies panel's thread, then
        `_catalogue_ready` opens `first` if it was found, else the first image (nothing when a
        file dialog was cancelled)."""
        if not paths:
            return
        self.pacs_open.detach()  # a study still arriving no longer changes what is shown
        self._apply(self.session.ask(paths, first))  # keys pressed meanwhile are kept
        self.studies.open(self.session.asked[0])

    def open_study(self, request: StudyRequest) -> None:
        """Retrieve the study `request` names (a configured node's name, and the Study
        Instance UID or the accession number with an optional patient ID) into the cache and
        open it as it arrives; problems are shown to the user. For worklist launches."""
        self.pacs_open.open_study(request)

    def _retrieved(self, listing: Listing) -> None:
        """A study arriving from a PACS: the Studies panel and the reading list follow it."""
        self.studies.show_listing(listing.catalogue, listing.complete, listing.first)
        self._apply(self.session.listing(listing.paths, listing.complete, listing.first))

    def open_file(self, path: Path, frame: int = 0) -> None:
        self._apply(self.session.open(Path(path), frame))

    def step_file(self, delta: int) -> None:
        self._apply(self.session.step(delta))

    def _catalogue_ready(self, catalogue: Catalogue, rejected: list[Path]) -> None:
        notes = catalogue.warnings + catalogue.notices
        self.marks_dicom.catalogue(catalogue)
        self._apply(self.session.listed(catalogue.paths(), rejected, notes))

    def _last_dir(self) -> str:
        return self.recent.last_dir()

    def _opacity_changed(self, style: OverlayStyle) -> None:
        self.session.change_style(style)
        self.image_area.view.set_overlay_opacity(effective_opacity(style))  # nothing to redraw

    def _reset_view(self) -> None:
        self._apply(self.session.reset_view())
        self.image_area.view.fit()

    def _grid_chosen(self, label: int) -> None:
        self.findings.labels.select_label(label)
        self.image_area.show_single()

    # ------------------------------------------------------------------ effects ----
    def _apply(self, effects: Effects) -> None:
        """Redraw what the controller says changed and send its requests to the worker (after
        the redraw: reads ahead wait until the screen has drawn it)."""
        redraw = effects.redraw
        if redraw & Redraw.MODEL:
            self._render_model()
        if redraw & Redraw.IMAGE:
            self._render_image()
        elif redraw & Redraw.WINDOW:
            self.image_area.draw_base()
        if redraw & Redraw.OVERLAY:
            self._render_findings()
        if redraw & (Redraw.STATUS | Redraw.IMAGE | Redraw.OVERLAY | Redraw.WINDOW):
            self.status.busy.setVisible(self.session.busy)
            self._update_info()
        for request in effects.requests:
            if isinstance(request, OpenRequest):
                self.studies.opening(request.path)
            elif isinstance(request, ModelRequest):
                self.status.model_loading()
            self.link.send(request)
        for message in effects.notices:
            self.messages.notice(message)
        for message in effects.errors:
            self.messages.error(message)

    def _render_model(self) -> None:
        info = self.session.model
        self.status.show_model(info)
        if info is not None:
            self.findings.show_model(info)
            self.image_area.banner.setVisible(info.is_demo)

    def _render_image(self) -> None:
        image = self.session.image
        self.presets.fill(image.presets if image is not None else [])
        self.marking.show_image(image)
        self.marks_dicom.show_image(image)
        if image is None:
            self.image_area.clear()
            self.tabs.metadata.set_metadata({})
            self.setWindowTitle(TITLE)
            return
        self.image_area.draw_base()
        if not self.pacs_open.is_cached(image.path):
            self.recent.remember(image.path)
        self.tabs.metadata.set_metadata(image.metadata)
        self.studies.show_image(image.path, image.frame, image.n_frames, image)
        self.setWindowTitle(f"{image.path.name} \u2014 {TITLE}")

    def _render_findings(self) -> None:
        """The findings list, the heatmap and the grid for the session's result (or none)."""
        result = self.session.result
        if result is None:
            self.findings.show_no_result(self.session.image)
            self.status.show_time(None)
            self.image_area.ood_banner.show_result(None)
            self._draw_overlay()
            self.image_area.fill_grid()  # empty
            return
        self._show_result(result)

    def _show_result(self, result: ExplainResult) -> None:
        self.findings.show_result(result)
        self.image_area.ood_banner.show_result(result)
        self.status.show_time(result)
        self._draw_overlay()
        self.image_area.refresh_grid()

    def _draw_overlay(self) -> None:
        note = self.image_area.draw_overlay()
        self.marking.refresh_scores()
        if note:
            self.messages.status(note)
        self._update_info()

    def _update_info(self) -> None:
        shown = self.snapshot()
        self.image_area.info.setText(shown.info_line())
        self.status.show_place(shown.window_text(), self.session.files.position(),
                               self.image_area.view.zoom())

    # ------------------------------------------------------------------ closing, drops ----
    def shutdown(self) -> None:
        self.pacs_open.shutdown()  # cancels a retrieve; empties the cache if not kept
        self.studies.shutdown()
        self.check.stop()  # a running Help > Check this model
        self.link.stop()
        self.image_area.stop()
        self.marking.shutdown()  # the live score's thread
        self.worker.stop()  # a compiled function still being traced in the background

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        save_layout(self, self.tabs.splitter, self.settings)
        # shutdown waits for the threads (a background trace cannot be interrupted: seconds
        # for a deep model); the window goes at once instead of freezing on screen meanwhile
        self.hide()
        self.shutdown()
        super().closeEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            event.acceptProposedAction()

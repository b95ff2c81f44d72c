"""The main window: image panel, label list, overlay controls, metadata, menus and status.

What is shown and which work is in flight is the `SessionController`'s plain state: the window
forwards user actions and worker replies to it, sends the requests it returns to the worker
through queued signals, and redraws what it says changed. The GUI thread never runs the model;
it windows images, colours heatmaps (at screen resolution at most) and paints.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QFileDialog, QFormLayout,
                               QGroupBox, QHBoxLayout, QLabel, QMainWindow, QMessageBox,
                               QProgressBar, QSizePolicy, QSlider, QSplitter, QStackedWidget, QTabWidget,
                               QToolBar, QVBoxLayout, QWidget)

from gradcam_viewer.cam.methods import METHOD_TITLES
from gradcam_viewer.imaging.image import LoadedImage, Window
from gradcam_viewer.render import COLORMAPS, DEFAULT_COLORMAP, OverlayStyle
from gradcam_viewer.render.overlay import effective_opacity
from gradcam_viewer.session.controller import (Effects, ExplainRequest, ModelRequest,
                                               OpenRequest, Redraw, SessionController)
from gradcam_viewer.session.files import FileList
from gradcam_viewer.session.results import (DEFAULT_BUDGET_MB, DEMO_BANNER, ExplainResult,
                                            ModelInfo, ResultCache, overlay_size)
from gradcam_viewer.ui import dialogs, exporting, model_setup, pacs_dialogs, preload
from gradcam_viewer.ui import trust_view  # issue 13
from gradcam_viewer.ui.grid_view import GridView
from gradcam_viewer.ui.image_view import ImageView
from gradcam_viewer.ui.renderer import Renderer, Tokens
from gradcam_viewer.ui.studies_panel import StudiesPanel
from gradcam_viewer.ui.widgets import ColorBar, LabelList, MetadataPanel
from gradcam_viewer.ui.worker import Worker, WorkerThread

log = logging.getLogger(__name__)
NOT_FOR_DIAGNOSIS = DEMO_BANNER
SHORTCUTS = [
    ("Open file", "Ctrl+O"), ("Open folder", "Ctrl+Shift+O"), ("Next / previous file", "Page Down / Page Up"),
    ("Fit to window", "="), ("Actual size (1:1)", "1"), ("Zoom in / out", "+ / -, mouse wheel"),
    ("Pan", "left drag"), ("Window / level", "right drag (horizontal = width, vertical = level)"),
    ("Reset view and window", "Space"), ("Invert", "I"), ("Overlay on/off", "O"),
    ("Contours only", "C"), ("Previous / next finding", "Up / Down arrows"),
    ("Next CAM method", "M"), ("Findings by probability / model order", "L"),
    ("Grid of all findings / single view", "G"),
    ("Export view as PNG", "Ctrl+E"), ("Quit", "Ctrl+Q"),
]


class MainWindow(QMainWindow):
    requestModel = Signal(str, str)
    requestOpen = Signal(int, str, int, str)
    requestExplain = Signal(int, object, str)
    renderBase = Signal(int, object, object, bool)  # token, image, window, inverted
    renderOverlay = Signal(int, object, object)  # token, heatmap at overlay size, style

    def __init__(self, settings: QSettings | None = None):
        preload.start()  # TensorFlow's import runs while the window is built (once per process)
        super().__init__()
        self.setWindowTitle("Grad-CAM Viewer")
        self.resize(1400, 900)
        self.setAcceptDrops(True)
        self.settings = settings or QSettings("gradcam-viewer", "gradcam-viewer")
        budget_mb = int(self.settings.value("memory/cache_mb", DEFAULT_BUDGET_MB))
        self.session = SessionController(cache=ResultCache(budget_mb << 20))
        # view state (not the session's): the window/level and inversion on screen
        self.display: np.ndarray | None = None
        self.window_: Window | None = None
        self.inverted = False
        self.last_error = ""
        self._listed: tuple | None = None  # (path, frame, model) whose findings fill the list
        self.tokens = Tokens()
        self._rendering: set[str] = set()  # 'base' / 'overlay' jobs the screen still waits for
        self._build_ui()
        self._start_worker()
        self._restore_layout()

    # the session's state, read by menus, exports and other panels
    @property
    def files(self) -> FileList:
        return self.session.files

    @property
    def image(self) -> LoadedImage | None:
        return self.session.image

    @property
    def result(self) -> ExplainResult | None:
        return self.session.result

    @property
    def model(self) -> ModelInfo | None:
        return self.session.model

    @property
    def method(self) -> str:
        return self.session.method

    @property
    def style(self) -> OverlayStyle:
        return self.session.style

    @property
    def overlay_on(self) -> bool:
        return self.session.overlay_on

    @property
    def cache(self) -> ResultCache:
        return self.session.cache

    # ------------------------------------------------------------------ construction ----
    def _build_ui(self) -> None:
        self.view = ImageView(self)
        self.banner = QLabel(NOT_FOR_DIAGNOSIS)
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.banner.setStyleSheet("background:#8b1a1a;color:white;font-weight:bold;padding:4px;")
        self.banner.setVisible(False)
        self.info = QLabel("")
        self.info.setStyleSheet("color:#ddd;background:#222;padding:3px;")
        # a long line of file information must not widen the centre and squeeze the panels
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        centre = QWidget()
        lay = QVBoxLayout(centre)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.grid = GridView()
        self.grid.labelChosen.connect(self._grid_chosen)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.grid)
        lay.addWidget(self.banner)
        self.ood_banner = trust_view.ood_banner()  # issue 13
        lay.addWidget(self.ood_banner)  # issue 13
        lay.addWidget(self.stack, 1)
        lay.addWidget(self.info)
        self.setCentralWidget(centre)

        # right dock: findings + overlay controls
        self.labels = LabelList()
        # single-letter shortcuts (I, O, C) must reach the window, not the list's type-ahead
        self.labels.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.labels.labelChosen.connect(lambda _i: self._update_overlay())
        self.sort_box = QComboBox()
        self.sort_box.addItems(["Sort by probability", "Model order"])
        self.sort_box.currentIndexChanged.connect(self._order_changed)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(int(OverlayStyle().opacity * 100))
        self.opacity.valueChanged.connect(self._opacity_changed)
        self.opacity_label = QLabel()
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 95)
        self.threshold.setValue(int(OverlayStyle().threshold * 100))
        self.threshold.valueChanged.connect(self._style_changed)
        self.threshold_label = QLabel()
        self.colormap = QComboBox()
        self.colormap.addItems(list(COLORMAPS))
        self.colormap.setCurrentText(DEFAULT_COLORMAP)
        self.colormap.currentTextChanged.connect(self._style_changed)
        self.contours = QCheckBox("Contours only (C)")
        self.contours.toggled.connect(self._style_changed)
        self.overlay_box = QCheckBox("Show heatmap (O)")
        self.overlay_box.setChecked(True)
        self.overlay_box.toggled.connect(self._overlay_toggled)
        self.method_box = QComboBox()
        for key, title in METHOD_TITLES.items():
            self.method_box.addItem(title, key)
        self.method_box.currentIndexChanged.connect(self._method_changed)
        self.colorbar = ColorBar()
        controls = QGroupBox("Heatmap")
        form = QFormLayout(controls)
        row = QHBoxLayout()
        row.addWidget(self.opacity)
        row.addWidget(self.opacity_label)
        form.addRow("Opacity", row)
        row2 = QHBoxLayout()
        row2.addWidget(self.threshold)
        row2.addWidget(self.threshold_label)
        form.addRow("Threshold", row2)
        form.addRow("Colormap", self.colormap)
        form.addRow("Method", self.method_box)
        form.addRow(self.contours)
        form.addRow(self.overlay_box)
        findings = QWidget()
        side_lay = QVBoxLayout(findings)
        side_lay.setContentsMargins(0, 0, 0, 0)
        side_lay.addWidget(self.sort_box)
        findings_row = QHBoxLayout()
        findings_row.addWidget(self.labels, 1)
        findings_row.addWidget(self.colorbar)
        side_lay.addLayout(findings_row, 1)
        side = QSplitter(Qt.Orientation.Vertical)
        side.setObjectName("side-splitter")
        side.addWidget(findings)
        side.addWidget(controls)
        side.setStretchFactor(0, 1)
        self.side_splitter = side
        self.metadata = MetadataPanel()
        tabs = QTabWidget()
        tabs.addTab(side, "Findings")
        tabs.addTab(self.metadata, "DICOM metadata")
        self.tabs = tabs
        dock = QDockWidget("Explanation", self)
        dock.setObjectName("explanation")
        dock.setWidget(tabs)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.resizeDocks([dock], [380], Qt.Orientation.Horizontal)
        # left dock: the Studies panel (its own reader thread; Page Up/Down follow its order)
        self.studies = StudiesPanel()
        self.studies.imageChosen.connect(self._study_image_chosen)
        self.studies.catalogueReady.connect(self._catalogue_ready)
        self.metadata.show_identifying.toggled.connect(self.studies.set_show_identifying)
        studies_dock = QDockWidget("Studies", self)
        studies_dock.setObjectName("studies")
        studies_dock.setWidget(self.studies)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, studies_dock)

        # status bar
        self.status_model = QLabel("Model: loading...")
        self.status_time = QLabel("")
        self.status_worker = QLabel("Starting")
        self.status_wl = QLabel("")
        self.status_pos = QLabel("")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setVisible(False)
        bar = self.statusBar()
        for w in (self.status_model, self.status_time, self.status_wl, self.status_pos):
            bar.addPermanentWidget(w)
        bar.addWidget(self.status_worker)
        bar.addPermanentWidget(self.busy)

        self.view.windowDragged.connect(self._window_dragged)
        self.view.zoomChanged.connect(lambda _z: self._update_info())
        self._build_actions()
        self._update_style_labels()
        self.view.setFocus()

    def _action(self, text: str, slot, shortcut: str | QKeySequence | None = None,
                checkable: bool = False) -> QAction:
        act = QAction(text, self)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.setCheckable(checkable)
        (act.toggled if checkable else act.triggered).connect(slot)
        self.addAction(act)
        return act

    def _build_actions(self) -> None:
        a = self._action
        self.act_open = a("&Open...", self.open_dialog, QKeySequence.StandardKey.Open)
        self.act_open_folder = a("Open &folder...", self.open_folder_dialog, "Ctrl+Shift+O")
        self.act_model = a("Open &model...", self.open_model_dialog)
        self.act_chexnet = a("Open &CheXNet weights...", self.open_chexnet_dialog)
        self.act_demo = a("Use the &demo model", lambda: self.load_model("demo", ""))
        self.act_export_png = a("&Export view as PNG...", self.export_png_dialog, "Ctrl+E")
        self.act_export_csv = a("Export predictions as &CSV...", lambda: self.export_predictions_dialog("csv"))
        self.act_export_json = a("Export predictions as &JSON...", lambda: self.export_predictions_dialog("json"))
        self.act_include_phi = a("Include patient-identifying fields in exports",
                                 lambda _on: None, checkable=True)
        self.act_no_ids = a("Leave DICOM UIDs out of exports", lambda _on: None, checkable=True)
        # Ctrl+Q as the shortcut list says: StandardKey.Quit has no binding on Windows (nor offscreen)
        self.act_quit = a("&Quit", self.close, "Ctrl+Q")
        self.act_next = a("Next file", lambda: self.step_file(1), QKeySequence(Qt.Key.Key_PageDown))
        self.act_prev = a("Previous file", lambda: self.step_file(-1), QKeySequence(Qt.Key.Key_PageUp))
        self.act_fit = a("&Fit to window", self.view.fit, "=")
        self.act_one = a("&Actual size (1:1)", self.view.actual_size, "1")
        self.act_zoom_in = a("Zoom &in", lambda: self.view.zoom_by(1.25), "+")
        self.act_zoom_out = a("Zoom &out", lambda: self.view.zoom_by(0.8), "-")
        self.act_invert = a("&Invert", self.toggle_invert, "I")
        self.act_reset = a("&Reset view and window", self.reset_view, QKeySequence(Qt.Key.Key_Space))
        self.act_overlay = a("Heatmap &overlay", lambda: self.overlay_box.toggle(), "O")
        self.act_contours = a("&Contours only", lambda: self.contours.toggle(), "C")
        self.act_label_up = a("Previous finding", lambda: self.step_label(-1), QKeySequence(Qt.Key.Key_Up))
        self.act_label_down = a("Next finding", lambda: self.step_label(1), QKeySequence(Qt.Key.Key_Down))
        self.act_method = a("Next CAM &method", self.cycle_method, "M")
        self.act_order = a("Findings &list order", self.toggle_order, "L")
        self.act_grid = a("&Grid of all findings", self.toggle_grid, "G")
        self.act_card = a("&Model card...", self.show_model_card)
        self.act_keys = a("&Keyboard shortcuts...", self.show_shortcuts)
        self.act_about = a("&About", self.show_about)
        self.act_check = a("&Check this model...", lambda: trust_view.check_model(self))  # issue 13

        menu = self.menuBar()
        m_file = menu.addMenu("&File")
        for act in (self.act_open, self.act_open_folder):
            m_file.addAction(act)
        self.recent_menu = m_file.addMenu("Open &recent")
        self._refresh_recent()
        m_file.addSeparator()
        for act in (self.act_model, self.act_chexnet, self.act_demo):
            m_file.addAction(act)
        m_file.addSeparator()
        for act in (self.act_export_png, self.act_export_csv, self.act_export_json,
                    self.act_include_phi, self.act_no_ids):
            m_file.addAction(act)
        m_file.addSeparator()
        m_file.addAction(self.act_quit)
        m_view = menu.addMenu("&View")
        for act in (self.act_next, self.act_prev, None, self.act_fit, self.act_one,
                    self.act_zoom_in, self.act_zoom_out, None, self.act_invert, self.act_reset):
            m_view.addSeparator() if act is None else m_view.addAction(act)
        self.presets_menu = m_view.addMenu("Window &presets")
        m_view.addSeparator()
        m_view.addAction(self.act_overlay)
        m_view.addAction(self.act_contours)
        m_view.addAction(self.act_method)
        m_view.addAction(self.act_order)
        m_view.addAction(self.act_grid)
        m_help = menu.addMenu("&Help")
        for act in (self.act_card, self.act_check, self.act_keys, self.act_about):  # issue 13
            m_help.addAction(act)
        pacs_dialogs.install(self, m_file)  # File > Export as DICOM / Send to PACS; Settings

        tools = QToolBar("Main")
        tools.setObjectName("main-toolbar")
        tools.setMovable(False)
        for act in (self.act_open, self.act_open_folder, self.act_prev, self.act_next, None,
                    self.act_fit, self.act_one, self.act_invert, self.act_reset, None,
                    self.act_overlay, self.act_export_png):
            tools.addSeparator() if act is None else tools.addAction(act)
        self.preset_box = QComboBox()
        self.preset_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.preset_box.setMinimumContentsLength(18)
        self.preset_box.setToolTip("Window presets of the file")
        self.preset_box.activated.connect(self._preset_chosen)
        tools.addWidget(QLabel("  Window: "))
        tools.addWidget(self.preset_box)
        self.addToolBar(tools)

    def _start_worker(self) -> None:
        self.thread_ = WorkerThread(self)
        self.thread_.setObjectName("gradcam-worker")
        # Tracing a deep Keras graph recurses deeply; the platform default stack can be small
        self.thread_.setStackSize(64 * 1024 * 1024)
        self.worker = Worker(self.session.tracker)
        self.worker.moveToThread(self.thread_)
        self.requestModel.connect(self.worker.load_model)
        self.requestOpen.connect(self.worker.open_image)
        self.requestExplain.connect(self.worker.explain_image)
        self.worker.status.connect(self.status_worker.setText)
        self.worker.busy.connect(self._busy)
        self.worker.modelLoaded.connect(self._model_loaded)
        self.worker.modelFailed.connect(self._model_failed)
        self.worker.imageLoaded.connect(self._image_loaded)
        self.worker.explained.connect(self._explained)
        self.worker.failed.connect(self._failed)
        self.worker.setupNeeded.connect(self._offer_setup)
        self.thread_.start()
        self.render_thread = QThread(self)
        self.render_thread.setObjectName("gradcam-render")
        self.renderer = Renderer(self.tokens)
        self.renderer.moveToThread(self.render_thread)
        self.renderBase.connect(self.renderer.render_base)
        self.renderOverlay.connect(self.renderer.render_overlay)
        self.renderer.baseReady.connect(self._base_ready)
        self.renderer.overlayReady.connect(self._overlay_ready)
        self.render_thread.start()

    def shutdown(self) -> None:
        self.studies.shutdown()
        trust_view.stop_check(self)  # issue 13: a running Help > Check this model
        for thread in (self.thread_, self.render_thread):
            if thread.isRunning():
                thread.quit()
                thread.wait(60_000)
        self.worker.stop()  # a compiled function still being traced in the background

    def closeEvent(self, event) -> None:  # noqa: N802
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/side", self.side_splitter.saveState())
        # shutdown waits for the threads (a background trace cannot be interrupted: seconds
        # for a deep model); the window goes at once instead of freezing on screen meanwhile
        self.hide()
        self.shutdown()
        super().closeEvent(event)

    def _size_docks(self) -> None:
        """First run: room for the findings' numbers beside the Studies panel."""
        docks = {d.objectName(): d for d in self.findChildren(QDockWidget)}
        wanted = [(docks[n], w) for n, w in (("explanation", 380), ("studies", 260)) if n in docks]
        self.resizeDocks([d for d, _ in wanted], [w for _, w in wanted],
                         Qt.Orientation.Horizontal)

    def _restore_layout(self) -> None:
        """Geometry, dock and splitter sizes as last closed; maximised the first time."""
        geometry = self.settings.value("window/geometry")
        if geometry is None:
            self.setWindowState(self.windowState() | Qt.WindowState.WindowMaximized)
            QTimer.singleShot(0, self._size_docks)  # once shown: sizes before that are ignored
            return
        self.restoreGeometry(geometry)
        state, side = self.settings.value("window/state"), self.settings.value("window/side")
        if state is not None:
            self.restoreState(state)
        if side is not None:
            self.side_splitter.restoreState(side)

    # ---------------------------------------------------------------- events ----
    def load_model(self, kind: str, path: str) -> None:
        self._apply(self.session.load_model(kind, path))

    def open_paths(self, paths: list[Path], first: Path | None = None) -> None:
        """Files, folders or DICOMDIRs: scanned by the Studies panel's thread, then
        `_catalogue_ready` opens `first` if it was found, else the first image."""
        self._opening = [Path(p) for p in paths]
        self._open_first = Path(first) if first is not None else None
        self.studies.open(self._opening)

    def _catalogue_ready(self, catalogue, rejected) -> None:
        files = catalogue.paths()
        if not files and rejected:
            self.open_file(rejected[0])  # a file named explicitly: the loader says why
            return
        if not files:
            names = ", ".join(p.name or str(p) for p in getattr(self, "_opening", []))
            self._error("\n".join([f"No image files found in {names}.", *catalogue.warnings,
                                   *catalogue.notices]))
            return
        notes = catalogue.warnings + catalogue.notices + [f"'{p.name}' is not an image file."
                                                          for p in rejected]
        if notes:
            self._notice("\n".join(notes[:20]))
        first = getattr(self, "_open_first", None)
        self._apply(self.session.open_files(files, files.index(first) if first in files else 0))

    def _study_image_chosen(self, path: Path, frame: int) -> None:
        if path in self.files.paths:
            self.files.index = self.files.paths.index(path)
        self.open_file(path, frame)

    def open_file(self, path: Path, frame: int = 0) -> None:
        self._apply(self.session.open(Path(path), frame))

    def step_file(self, delta: int) -> None:
        self._apply(self.session.step(delta))

    def _apply(self, effects: Effects) -> None:
        """Send the controller's requests to the worker and redraw what it says changed."""
        for req in effects.requests:
            if isinstance(req, OpenRequest):
                self.requestOpen.emit(req.request_id, str(req.path), req.frame, req.method)
                self.studies.opening(req.path)
                self._remember_recent(req.path)
            elif isinstance(req, ExplainRequest):
                self.requestExplain.emit(req.request_id, req.image, req.method)
            elif isinstance(req, ModelRequest):
                self.status_model.setText("Model: loading...")
                self.requestModel.emit(req.kind, req.path)
        redraw = effects.redraw
        if redraw & Redraw.MODEL:
            self._render_model()
        if redraw & Redraw.IMAGE:
            self._render_image()
        if redraw & Redraw.OVERLAY:
            self._render_findings()
        if redraw & (Redraw.STATUS | Redraw.IMAGE | Redraw.OVERLAY):
            self.busy.setVisible(self.session.busy)
            self._update_info()
        for message in effects.notices:
            self._notice(message)
        for message in effects.errors:
            self._error(message)

    def _busy(self, _on: bool) -> None:
        """The worker's own busy signal; the bar follows the session's requests in flight."""
        self.busy.setVisible(self.session.busy)

    def _model_loaded(self, info: ModelInfo) -> None:
        self._apply(self.session.model_loaded(info))

    def _offer_setup(self, found: Any) -> None:  # a model without manifest: the set-up dialog
        model_setup.open_setup(self, found)

    def _model_failed(self, message: str) -> None:
        self._apply(self.session.model_failed(message))

    def _image_loaded(self, request: int, image: LoadedImage) -> None:
        self._apply(self.session.image_loaded(request, image))

    def _explained(self, request: int, result: ExplainResult) -> None:
        self._apply(self.session.explained(request, result))

    def _failed(self, request: int, message: str) -> None:
        self._apply(self.session.failed(request, message))

    # ---------------------------------------------------------------- rendering ----
    def _render_model(self) -> None:
        info = self.model
        if info is None:
            self.status_model.setText("Model: none")
            return
        self.status_model.setText(f"Model: {info.name}")
        if self.labels.labels() != info.labels:
            self.labels.set_labels(info.labels)
            self._listed = None
        self.labels.set_value_kind(str(info.manifest.get("output_kind", "scores")))
        self.banner.setVisible(info.is_demo)

    def _render_image(self) -> None:
        image = self.image
        self._fill_presets()
        if image is None:
            self.tokens.next("base")
            self._rendering.discard("base")
            self.display = None
            self.window_ = None
            self.view.clear()
            self.metadata.set_metadata({})
            self.setWindowTitle("Grad-CAM Viewer")
            return
        self.window_ = image.window
        self.inverted = image.invert
        self._refresh_base()
        self.metadata.set_metadata(image.metadata)
        self.studies.show_image(image.path, image.frame, image.n_frames, image)
        self.setWindowTitle(f"{image.path.name} \u2014 Grad-CAM Viewer")

    def _render_findings(self) -> None:
        """The findings list, the heatmap and the grid for the session's result (or none)."""
        result = self.result
        if result is None:
            if self._listed is not None and (self.image is None or self._listed[:2] != (
                    str(self.image.path), self.image.frame)):
                self.labels.set_probabilities(None, keep=self.labels.current_label())
                self._listed = None
            self.status_time.setText("")
            trust_view.show_ood(self.ood_banner, None)  # issue 13
            self._update_overlay()
            self.grid.set_content(None, None, [], self.style, [])
            return
        self._show_result(result)

    def _show_result(self, result: ExplainResult) -> None:
        listed = (result.key[0], result.key[1], result.key[3])
        # a new image opens on its most probable finding; another method keeps the finding
        keep = (self.labels.current_label() if listed == self._listed
                else int(np.argmax(result.probabilities)))
        self._listed = listed
        self.labels.set_probabilities(result.probabilities, ~result.has_evidence, keep=keep)
        trust_view.show_ood(self.ood_banner, result)  # issue 13
        self.status_time.setText(f"{METHOD_TITLES.get(result.method, result.method)}: "
                                 f"{result.seconds * 1000:.0f} ms")
        self._update_overlay()
        if self.stack.currentWidget() is self.grid:
            self._fill_grid()

    # ---------------------------------------------------------------- drawing ----
    def drawn(self) -> bool:
        """Whether the screen shows the current image, window and heatmap (no job pending)."""
        return not self._rendering

    def _refresh_base(self) -> None:
        """Window the image in the render thread; `_base_ready` puts it on screen."""
        if self.image is None:
            return
        self._rendering.add("base")
        self.renderBase.emit(self.tokens.next("base"), self.image, self.window_, self.inverted)
        self._update_info()

    def _base_ready(self, token: int, display: np.ndarray, qimage) -> None:
        if not self.tokens.is_latest("base", token) or self.image is None:
            return
        self._rendering.discard("base")
        self.display = display
        self.view.set_base(qimage)
        if self.stack.currentWidget() is self.grid:
            self._fill_grid()

    def _update_overlay(self) -> None:
        label = self.labels.current_label()
        if (self.result is None or self.image is None or label is None or not self.overlay_on
                or label >= len(self.result.probabilities) or not self.result.has_evidence[label]):
            self.tokens.next("overlay")  # whatever is being coloured is not wanted any more
            self._rendering.discard("overlay")
            self.view.set_overlay(None, 0)
            if self.result is not None and label is not None and self.model is not None \
                    and label < len(self.model.labels) and not self.result.has_evidence[label]:
                self.status_worker.setText(f"No positive evidence for {self.model.labels[label]}")
            return
        # at screen resolution at most: a smooth map loses nothing, and a 14 MP image costs no
        # more than a small one; coloured in the render thread, scaled over the image by the view
        heat = self.cache.display_map(self.result, label, overlay_size(self.image.size))
        self._rendering.add("overlay")
        self.renderOverlay.emit(self.tokens.next("overlay"), heat, self.style)
        self._update_info()

    def _overlay_ready(self, token: int, qimage) -> None:
        if not self.tokens.is_latest("overlay", token) or self.image is None:
            return
        self._rendering.discard("overlay")
        self.view.set_overlay(qimage, effective_opacity(self.style), self.image.size)

    def _style_changed(self, *_args) -> None:
        style = OverlayStyle(opacity=self.opacity.value() / 100.0,
                             colormap=self.colormap.currentText(),
                             threshold=self.threshold.value() / 100.0,
                             contours=self.contours.isChecked())
        self.colorbar.set_colormap(style.colormap)
        self._update_style_labels()
        self._apply(self.session.change_style(style))

    def _opacity_changed(self, value: int) -> None:
        old = self.style
        self.session.change_style(OverlayStyle(value / 100.0, old.colormap, old.threshold,
                                               old.contours))
        self._update_style_labels()
        self.view.set_overlay_opacity(effective_opacity(self.style))  # nothing else to redraw

    def _update_style_labels(self) -> None:
        self.opacity_label.setText(f"{self.opacity.value():3d} %")
        self.threshold_label.setText(f"{self.threshold.value() / 100:.2f}")

    def _overlay_toggled(self, on: bool) -> None:
        self._apply(self.session.show_overlay(on))

    def _method_changed(self, _index: int) -> None:
        self._apply(self.session.change_method(self.method_box.currentData()))

    def cycle_method(self) -> None:
        self.method_box.setCurrentIndex((self.method_box.currentIndex() + 1)
                                        % self.method_box.count())

    def toggle_order(self) -> None:
        self.sort_box.setCurrentIndex(1 - self.sort_box.currentIndex())

    def _order_changed(self, index: int) -> None:
        self.labels.set_sort_by_probability(index == 0)
        if self.stack.currentWidget() is self.grid:
            self._fill_grid()

    # ---------------------------------------------------------------- grid ----
    def toggle_grid(self) -> None:
        """All findings at a glance: one tile per label from the one explanation pass."""
        if self.stack.currentWidget() is self.grid:
            self.stack.setCurrentWidget(self.view)
            return
        self._fill_grid()
        self.stack.setCurrentWidget(self.grid)

    def _fill_grid(self) -> None:
        names = self.model.labels if self.model is not None else []
        self.grid.set_content(self.display, self.result, names, self.style, self.labels.order())

    def _grid_chosen(self, label: int) -> None:
        self.labels.select_label(label)
        self.stack.setCurrentWidget(self.view)

    def step_label(self, delta: int) -> None:
        n = self.labels.topLevelItemCount()
        if not n:
            return
        row = self.labels.indexOfTopLevelItem(self.labels.currentItem()) if self.labels.currentItem() else -1
        self.labels.setCurrentItem(self.labels.topLevelItem(max(0, min(n - 1, row + delta))))

    # ---------------------------------------------------------------- window / level ----
    def _window_dragged(self, dx: float, dy: float) -> None:
        if self.image is None or self.image.is_color:
            return
        lo, hi = self.image.value_range
        unit = max(hi - lo, 1.0) / 400.0
        base = self.window_ or Window((lo + hi) / 2, max(hi - lo, 1))
        if base.lut_index is not None:  # leave the LUT for a linear window over the full range
            base = Window((lo + hi) / 2, max(hi - lo, 1), "", "LINEAR")
        self.window_ = Window(base.center + dy * unit, max(1.0, base.width + dx * unit), "Manual",
                              "LINEAR" if base.function == "LINEAR_EXACT" else base.function)
        self._refresh_base()

    def _fill_presets(self) -> None:
        self.preset_box.clear()
        self.presets_menu.clear()
        if self.image is None:
            return
        for i, preset in enumerate(self.image.presets):
            self.preset_box.addItem(preset.label(), i)
            act = self.presets_menu.addAction(preset.label())
            act.triggered.connect(lambda _c=False, k=i: self.apply_preset(k))

    def _preset_chosen(self, index: int) -> None:
        self.apply_preset(self.preset_box.itemData(index))

    def apply_preset(self, index: int) -> None:
        if self.image is not None and 0 <= index < len(self.image.presets):
            self.window_ = self.image.presets[index]
            self._refresh_base()

    def toggle_invert(self) -> None:
        self.inverted = not self.inverted
        self._refresh_base()

    def reset_view(self) -> None:
        if self.image is not None:
            self.window_ = self.image.window
            self.inverted = self.image.invert
            self._refresh_base()
        self.view.fit()

    def _update_info(self) -> None:
        parts = []
        if self.image is not None:
            h, w = self.image.size
            parts.append(f"{self.image.path.name}  {w}\u00d7{h}  {self.image.source_format}")
            if self.image.n_frames > 1:
                parts.append(f"frame {self.image.frame + 1}/{self.image.n_frames}")
            parts.append(self.image.spacing_label())
            if self.inverted:
                parts.append("inverted")
        if self.result is not None and self.model is not None:
            label = self.labels.current_label()
            if label is not None:
                parts.append(f"{self.model.labels[label]} p={self.result.probabilities[label]:.3f}"
                             f"  [{self.result.layer}, {self.result.score}]")
        self.info.setText("   ".join(parts))
        if self.window_ is not None and self.image is not None and not self.image.is_color:
            self.status_wl.setText(
                self.window_.label() if self.window_.lut_index is not None
                else f"W {self.window_.width:.0f}  L {self.window_.center:.0f}")
        else:
            self.status_wl.setText("")
        self.status_pos.setText(" ".join(x for x in (self.files.position(),
                                                     f"zoom {self.view.zoom() * 100:.0f}%") if x))

    # ---------------------------------------------------------------- dialogs ----
    def _error(self, message: str) -> None:
        self.last_error = message
        log.info("shown to user: %s", message.splitlines()[0][:200])
        self.status_worker.setText(message.splitlines()[0][:120])
        dialogs.message(self, "Grad-CAM Viewer", message, QMessageBox.Icon.Warning)

    def _notice(self, message: str) -> None:
        self.status_worker.setText(message[:120])
        dialogs.message(self, "Grad-CAM Viewer", message, QMessageBox.Icon.Information)

    def open_dialog(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(
            self, "Open images", self._last_dir(),
            "Images (*.dcm *.dicom *.png *.jpg *.jpeg *.tif *.tiff *.bmp);;All files (*)")
        if names:
            self.open_paths([Path(n) for n in names])

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder", self._last_dir())
        if folder:
            self.open_paths([Path(folder)])

    def open_model_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open Keras model", self._last_dir(),
                                              "Keras models (*.keras *.h5 *.hdf5 saved_model.pb)")
        if name:
            self.load_model("keras", name)

    def open_chexnet_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open CheXNet weights", self._last_dir(),
                                              "Weights (*.h5 *.hdf5)")
        if name:  # optional: the folder whose mean/std normalise (Cancel: per-image z-score)
            self.worker.reference_images = QFileDialog.getExistingDirectory(
                self, "Reference images for the mean/std (Cancel: per-image z-score)",
                str(Path(name).parent))
            self.load_model("chexnet", name)

    def show_model_card(self) -> None:
        text = dialogs.model_card_html(self.model.manifest if self.model else None,
                                       getattr(self.model, "loader", None))
        dialogs.text_dialog(self, "Model card", text)

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td>{a}</td><td><b>{k}</b></td></tr>" for a, k in SHORTCUTS)
        dialogs.text_dialog(self, "Keyboard shortcuts", f"<table cellpadding=4>{rows}</table>")

    def show_about(self) -> None:
        from gradcam_viewer import __version__

        dialogs.text_dialog(self, "About", f"<h3>Grad-CAM Viewer {__version__}</h3><p>Offline "
                            "viewer for chest radiographs with Grad-CAM heatmaps. Makes no network "
                            "connections unless you send to a PACS node you configured. Not a "
                            "medical device.</p>")

    def export_png_dialog(self) -> None:
        if self.image is None:
            return
        name, _ = QFileDialog.getSaveFileName(self, "Export view", self._suggest("png"),
                                              "PNG image (*.png)")
        if name:
            self._run_export(lambda: exporting.export_view_png(self, Path(name), overwrite=True))

    def export_predictions_dialog(self, kind: str) -> None:
        if self.result is None:
            self._error("There are no predictions to export yet.")
            return
        name, _ = QFileDialog.getSaveFileName(self, "Export predictions", self._suggest(kind),
                                              f"{kind.upper()} (*.{kind})")
        if name:
            self._run_export(lambda: exporting.export_predictions(
                self, Path(name), kind, overwrite=True,
                include_ids=not self.act_no_ids.isChecked()))

    def _run_export(self, job) -> None:
        try:
            path = job()
            self.status_worker.setText(f"Exported {path.name}")
        except OSError as exc:
            self._error(f"The export failed: {exc.strerror or exc}. Nothing was written.")

    def include_identifying(self) -> bool:
        return self.act_include_phi.isChecked()

    def _suggest(self, ext: str) -> str:
        stem = self.image.path.stem if self.image is not None else "export"
        return str(Path(self._last_dir()) / f"{stem}_gradcam.{ext}")

    # ---------------------------------------------------------------- recent / drops ----
    def _last_dir(self) -> str:
        return str(self.settings.value("last_dir", str(Path.home())))

    def _remember_recent(self, path: Path) -> None:
        recent = [p for p in self.settings.value("recent", [], type=list) if p != str(path)]
        recent.insert(0, str(path))
        self.settings.setValue("recent", recent[:10])
        self.settings.setValue("last_dir", str(path.parent))
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.settings.value("recent", [], type=list):
            act = self.recent_menu.addAction(Path(p).name)
            act.setToolTip(p)
            act.triggered.connect(lambda _c=False, q=p: self.open_paths([Path(q)]))
        self.recent_menu.setEnabled(bool(self.recent_menu.actions()))

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            event.acceptProposedAction()


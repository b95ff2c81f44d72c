"""The Studies panel: patient > study > series > image, with a thumbnail per series and a
frame slider for multi-frame images.

Folders and media are scanned, and thumbnails made, by `StudiesReader` in its own thread (not
the model's worker), so the GUI thread only builds tree items. The panel emits
`catalogue_ready(catalogue, rejected)` when a scan is done (`catalogue.paths()` is the Page Up /
Page Down order; `rejected` are files named explicitly that are not images) and
`image_chosen(path, frame)` when the user picks an image or a frame; a long scan reports the
images found so far (`scan_progress`), so that Page Up / Page Down work before it ends. An image the window
shows that no scan listed (opened on its own) is scanned and added, as DICOM viewers list every
open image, whatever the order of scans and opened images (`ShownImages`). Patient names and
IDs are shown only when `set_show_identifying(True)`; nothing here logs them.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QSize, Qt, QThread, Signal, Slot
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSlider,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.imaging.studies import Catalogue, ImageRef, Patient, Series
from gradcam_viewer.session.shown_images import ShownImages

log = logging.getLogger(__name__)

THUMB = 48
PATH_ROLE = Qt.ItemDataRole.UserRole + 10
KIND_ROLE = Qt.ItemDataRole.UserRole + 11


class _Latest:
    """The newest scan request id, shared by the GUI thread and the reader."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def next(self) -> int:
        with self._lock:
            self._value += 1
            return self._value

    def is_stale(self, request: int) -> bool:
        with self._lock:
            return request != self._value


def thumbnail(path: Path, size: int = THUMB) -> tuple[np.ndarray, str]:
    """The image as the viewer shows it (default window), at most `size` pixels a side, and
    its Series Description (a DICOMDIR's series records often lack it)."""
    from gradcam_viewer.imaging import load_image

    return thumbnail_of(load_image(path), size)


def thumbnail_of(image: LoadedImage, size: int = THUMB) -> tuple[np.ndarray, str]:
    """`thumbnail` of an image already decoded (the one the window shows)."""
    from PIL import Image

    from gradcam_viewer.imaging import to_display

    im = Image.fromarray(to_display(image))
    im.thumbnail((size, size))
    field = image.metadata.get("SeriesDescription")
    return np.ascontiguousarray(np.asarray(im.convert("RGB"))), field.value if field else ""


class StudiesReader(QObject):
    """Scans in the background; a newer request makes an older one stop early."""

    catalogue_read = Signal(int, object, object)  # request id, Catalogue, rejected paths
    listing = Signal(int, object)  # request id, the images found so far (reading order)
    image_added = Signal(int, object)  # request id, Catalogue of the one image
    # request, the series' first image path (its key), RGB, description
    thumbnail_read = Signal(int, str, object, str)

    def __init__(self, latest: _Latest):
        super().__init__()
        self.latest = latest

    @Slot(int, object)
    def read(self, request: int, paths: list) -> None:
        from gradcam_viewer.imaging import scan_media

        if self.latest.is_stale(request):
            return
        rejected: list[Path] = []
        try:
            result = scan_media(paths, cancelled=lambda: self.latest.is_stale(request),
                                progress=lambda found: self.listing.emit(request, found))
            catalogue, rejected = result.catalogue, result.rejected
        except Exception as exc:  # never let a scan kill the thread
            log.exception("scan failed")
            reason = f"The folder could not be read ({type(exc).__name__})."
            catalogue = Catalogue(warnings=[reason])
        if self.latest.is_stale(request):
            return
        self.catalogue_read.emit(request, catalogue, rejected)

    @Slot(int, object, str)
    def thumbnails(self, request: int, catalogue: Catalogue, opened: str) -> None:
        """All but `opened`'s: the window decodes that one and `StudiesPanel.show_image`
        asks for its thumbnail with the image (not decoded twice at once)."""
        self._thumbnails(request, catalogue, skip=opened)

    @Slot(int, object)
    def thumbnail_of(self, request: int, image: LoadedImage) -> None:
        if not self.latest.is_stale(request):
            self.thumbnail_read.emit(request, str(image.path), *thumbnail_of(image))

    @Slot(int, object)
    def add(self, request: int, path: Path) -> None:
        """The one image the window opened on its own, as a catalogue to add (its thumbnail
        comes from `show_image`, with the image)."""
        from gradcam_viewer.imaging import scan_media

        try:
            catalogue = scan_media([path]).catalogue
        except Exception:  # an image the panel cannot list is still shown
            log.exception("scan of an opened image failed")
            return
        if not self.latest.is_stale(request):
            self.image_added.emit(request, catalogue)
            self._thumbnails(request, catalogue, skip=str(path))

    def _thumbnails(self, request: int, catalogue: Catalogue, skip: str = "") -> None:
        for index, series in enumerate(catalogue.all_series()):
            if self.latest.is_stale(request):
                return
            first = series.images[0].path
            if str(first) == skip:
                continue
            try:
                self.thumbnail_read.emit(request, str(first), *thumbnail(first))
            except Exception:  # a damaged first image: the series just has no thumbnail
                log.debug("no thumbnail for series %d", index, exc_info=True)


class StudiesPanel(QWidget):
    image_chosen = Signal(object, int)  # Path, frame (0-based)
    # Catalogue, and the files named explicitly that are not images (for the loader's reason)
    catalogue_ready = Signal(object, object)
    scan_progress = Signal(object)  # the images found so far by a long scan, in reading order
    _request_read = Signal(int, object)
    _request_add = Signal(int, object)
    _request_thumbnails = Signal(int, object, str)  # request, catalogue, the image opened
    _request_thumbnail_of = Signal(int, object)  # request, LoadedImage

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(340)
        self.tree = self._build_tree()
        self.frames_row = self._build_frames_row()
        self.status = QLabel("")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.frames_row)
        layout.addWidget(self.status)

        self.catalogue = Catalogue()
        self.show_identifying = False
        self._current: Path | None = None
        self._opening = ""  # the file the window decodes (no thumbnail read of it here)
        self._image_items: dict[str, QTreeWidgetItem] = {}
        self._series_items: list[QTreeWidgetItem] = []
        self._series_by_first: dict[str, tuple[QTreeWidgetItem, Series]] = {}
        self._icons: dict[str, QIcon] = {}  # by the series' first image: kept over a refill
        self._shown = ShownImages()  # images shown on their own, to add to the list
        self._patient_items: list[tuple[QTreeWidgetItem, Patient]] = []
        self._setting_frame = False
        self._start_reader()

    def _build_tree(self) -> QTreeWidget:
        tree = QTreeWidget()
        tree.setColumnCount(4)
        tree.setHeaderLabels(["Patient / study / series", "Date", "Modality", "Images"])
        tree.setUniformRowHeights(False)
        tree.setIconSize(QSize(THUMB, THUMB))
        header = tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        # Page Up / Page Down and single-letter shortcuts belong to the window
        tree.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        tree.itemClicked.connect(self._clicked)
        return tree

    def _build_frames_row(self) -> QWidget:
        """The frame slider of a multi-frame image (hidden otherwise)."""
        self.frame_slider = QSlider(Qt.Orientation.Horizontal)
        self.frame_slider.setMinimum(1)
        self.frame_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.frame_slider.valueChanged.connect(self._frame_moved)
        self.frame_label = QLabel()
        frames = QWidget()
        row = QHBoxLayout(frames)
        row.setContentsMargins(4, 0, 4, 0)
        row.addWidget(QLabel("Frame"))
        row.addWidget(self.frame_slider, 1)
        row.addWidget(self.frame_label)
        frames.setVisible(False)
        return frames

    def _start_reader(self) -> None:
        self.latest = _Latest()
        self._request = 0
        self.thread_ = QThread(self)
        self.thread_.setObjectName("studies-reader")
        self.reader = StudiesReader(self.latest)
        self.reader.moveToThread(self.thread_)
        self._request_read.connect(self.reader.read)
        self._request_add.connect(self.reader.add)
        self._request_thumbnails.connect(self.reader.thumbnails)
        self._request_thumbnail_of.connect(self.reader.thumbnail_of)
        self.reader.catalogue_read.connect(self._catalogue_read)
        self.reader.listing.connect(self._listing)
        self.reader.image_added.connect(self._image_added)
        self.reader.thumbnail_read.connect(self._thumbnail_read)
        self.thread_.start()

    # ---------------------------------------------------------------- API ----
    def open(self, paths: list[Path]) -> None:
        """Scan files, folders or DICOMDIRs in the background; `catalogue_ready` follows."""
        self._request = self.latest.next()
        self._shown.scan_started()
        self._icons = {}
        self.status.setText("Reading folders and headers...")
        self._request_read.emit(self._request, [Path(p) for p in paths])

    def show_listing(self, catalogue: Catalogue, complete: bool, first: bool) -> None:
        """A study arriving from a PACS, as far as it has arrived (`first`: the first time):
        shown like a scanned folder, without scanning (the retrieve read each header as it
        wrote the file). A scan in progress is dropped; thumbnails are made once the study is
        complete."""
        if first:
            self._request = self.latest.next()
            self._shown = ShownImages()
            self._icons = {}
        self.catalogue = catalogue
        self._fill(catalogue)
        self._show_counts(catalogue)
        if not complete:
            self.status.setText(f"{self.status.text()}, arriving...")
        self._select_current()
        if complete:
            self._request_thumbnails.emit(self._request, catalogue, self._opening)

    @property
    def scanning(self) -> bool:
        return self._shown.scanning

    def ordered_paths(self) -> list[Path]:
        return self.catalogue.paths()

    def opening(self, path: Path) -> None:
        """The window is decoding `path`: the reader leaves its thumbnail to `show_image`."""
        self._opening = str(path)

    def show_image(self, path: Path, frame: int, n_frames: int,
                   image: LoadedImage | None = None) -> None:
        """The window opened `path`: select it (listing it first if no scan did, or when the
        running scan finishes if it does not) and show a frame slider if it has frames.
        `image`, decoded by the window, makes its series' thumbnail if it is the first."""
        self._current = Path(path)
        self._select_current()
        added = self._shown.shown(self._current, str(path) in self._image_items)
        for new in added:
            self._request_add.emit(self._request, new)
        if image is not None and frame == 0 and str(path) not in self._icons and (
                str(path) in self._series_by_first or self._current in added):
            self._request_thumbnail_of.emit(self._request, image)  # decoded once, by the window
        self._setting_frame = True
        self.frame_slider.setMaximum(max(1, n_frames))
        self.frame_slider.setValue(frame + 1)
        self._setting_frame = False
        self.frame_label.setText(f"{frame + 1} / {n_frames}")
        self.frames_row.setVisible(n_frames > 1)

    def _select_current(self) -> None:
        item = self._image_items.get(str(self._current))
        if item is not None:
            self.tree.blockSignals(True)
            self.tree.setCurrentItem(item)
            self.tree.scrollToItem(item)
            self.tree.blockSignals(False)

    def set_show_identifying(self, on: bool) -> None:
        self.show_identifying = bool(on)
        for number, (item, patient) in enumerate(self._patient_items, start=1):
            item.setText(0, patient.label(number, self.show_identifying))

    def shutdown(self) -> None:
        self.latest.next()  # any scan in progress stops at its next file
        if self.thread_.isRunning():
            self.thread_.quit()
            self.thread_.wait(30_000)

    # ---------------------------------------------------------------- replies ----
    def _catalogue_read(self, request: int, catalogue: Catalogue, rejected: list) -> None:
        if request != self._request:
            return
        self.catalogue = catalogue
        self._fill(catalogue)
        self._show_counts(catalogue)
        for new in self._shown.scan_finished(catalogue.paths()):
            self._request_add.emit(self._request, new)
        self.catalogue_ready.emit(catalogue, rejected)  # the window opens an image at once
        self._request_thumbnails.emit(self._request, catalogue, self._opening)

    def _listing(self, request: int, found: list[Path]) -> None:
        if request == self._request:
            self.status.setText(f"Reading folders and headers... {len(found)} image(s) so far")
            self.scan_progress.emit(found)

    def _show_counts(self, catalogue: Catalogue) -> None:
        n = len(catalogue.images())
        text = f"{n} image(s)"
        if catalogue.skipped:
            text += f", {catalogue.skipped} other file(s) skipped"
        if catalogue.warnings:
            text += f", {len(catalogue.warnings)} warning(s)"
        if catalogue.notices:
            text += f", {len(catalogue.notices)} notice(s)"
        self.status.setToolTip("\n".join(catalogue.warnings + catalogue.notices))
        self.status.setText(text)

    def _image_added(self, request: int, catalogue: Catalogue) -> None:
        """An image the scanner does not list is not asked again (`ShownImages`)."""
        if request != self._request:
            return
        self.catalogue = self.catalogue.adding(catalogue)
        self._fill(self.catalogue)
        self._show_counts(self.catalogue)
        self._select_current()

    def _thumbnail_read(self, request: int, first: str, rgb: np.ndarray, description: str) -> None:
        if request != self._request:
            return
        from gradcam_viewer.ui.image_view import qimage_from_array

        self._icons[first] = QIcon(QPixmap.fromImage(qimage_from_array(rgb)))
        if first not in self._series_by_first:
            return
        item, series = self._series_by_first[first]
        item.setIcon(0, self._icons[first])
        if description and not series.description:
            series.description = description
            item.setText(0, _series_title(series))
            item.setToolTip(0, _series_title(series))

    # ---------------------------------------------------------------- tree ----
    def _fill(self, catalogue: Catalogue) -> None:
        self.tree.clear()
        self._image_items, self._series_items, self._patient_items = {}, [], []
        self._series_by_first = {}
        for number, patient in enumerate(catalogue.patients, start=1):
            p_item = QTreeWidgetItem([patient.label(number, self.show_identifying), "", "",
                                      str(sum(s.n_images() for s in patient.studies))])
            p_item.setData(0, KIND_ROLE, "patient")
            self._patient_items.append((p_item, patient))
            self.tree.addTopLevelItem(p_item)
            for study in patient.studies:
                s_item = QTreeWidgetItem([study.description or "Study", _date(study.date),
                                          _modalities(study.series), str(study.n_images())])
                s_item.setData(0, KIND_ROLE, "study")
                p_item.addChild(s_item)
                for series in study.series:
                    s_item.addChild(self._series_item(series))
        if catalogue.others:
            o_item = QTreeWidgetItem(["Other images", "", "", str(len(catalogue.others))])
            o_item.setData(0, KIND_ROLE, "others")
            self.tree.addTopLevelItem(o_item)
            for ref in catalogue.others:
                o_item.addChild(self._image_item(ref, ref.path.name))
        self.tree.expandAll()

    def _series_item(self, series: Series) -> QTreeWidgetItem:
        item = QTreeWidgetItem([_series_title(series), "",
                                series.modality, str(len(series.images))])
        item.setData(0, KIND_ROLE, "series")
        item.setToolTip(0, _series_title(series))
        self._series_items.append(item)
        first = str(series.images[0].path)
        self._series_by_first[first] = (item, series)
        if first in self._icons:
            item.setIcon(0, self._icons[first])
        for ref in series.images:
            label = f"Image {ref.instance}" if ref.instance is not None else ref.path.name
            if ref.frames and ref.frames > 1:
                label += f" ({ref.frames} frames)"
            item.addChild(self._image_item(ref, label))
        return item

    def _image_item(self, ref: ImageRef, label: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem([label, "", "", ""])
        item.setData(0, KIND_ROLE, "image")
        item.setData(0, PATH_ROLE, str(ref.path))
        item.setToolTip(0, ref.path.name)
        self._image_items[str(ref.path)] = item
        return item

    def _clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        found: QTreeWidgetItem | None = item  # a series or study opens its first image
        while found is not None and found.data(0, KIND_ROLE) != "image":
            found = found.child(0) if found.childCount() else None
        if found is not None:
            self.image_chosen.emit(Path(found.data(0, PATH_ROLE)), 0)

    def _frame_moved(self, value: int) -> None:
        self.frame_label.setText(f"{value} / {self.frame_slider.maximum()}")
        if not self._setting_frame and self._current is not None:
            self.image_chosen.emit(self._current, value - 1)


def _series_title(series: Series) -> str:
    number = f"#{series.number} " if series.number is not None else ""
    return f"{number}{series.description or 'Series'}"


def _date(da: str) -> str:
    return f"{da[:4]}-{da[4:6]}-{da[6:8]}" if len(da) == 8 and da.isdigit() else da


def _modalities(series: list[Series]) -> str:
    return ", ".join(dict.fromkeys(s.modality for s in series if s.modality))

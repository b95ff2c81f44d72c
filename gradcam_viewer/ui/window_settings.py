"""What the window remembers between runs (QSettings): the recent files and the last folder,
and its geometry, docks and splitter as last closed."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QSplitter

RECENT = 10


class RecentFiles(QObject):
    """File > Open recent, and the folder file dialogs start in."""

    chosen = Signal(Path)

    def __init__(self, settings: QSettings, menu: QMenu) -> None:
        super().__init__(menu)
        self._settings, self._menu = settings, menu
        self.refresh()

    def last_dir(self) -> str:
        return str(self._settings.value("last_dir", str(Path.home())))

    def paths(self) -> list[str]:
        value = self._settings.value("recent", [], type=list)
        return [str(p) for p in value] if isinstance(value, list) else []

    def remember(self, path: Path) -> None:
        recent = [p for p in self.paths() if p != str(path)]
        recent.insert(0, str(path))
        self._settings.setValue("recent", recent[:RECENT])
        self._settings.setValue("last_dir", str(path.parent))
        self.refresh()

    def refresh(self) -> None:
        self._menu.clear()
        for p in self.paths():
            act = self._menu.addAction(Path(p).name)
            act.setToolTip(p)
            act.triggered.connect(lambda _c=False, q=p: self.chosen.emit(Path(q)))
        self._menu.setEnabled(bool(self._menu.actions()))


def save_layout(window: QMainWindow, splitter: QSplitter, settings: QSettings) -> None:
    settings.setValue("window/geometry", window.saveGeometry())
    settings.setValue("window/state", window.saveState())
    settings.setValue("window/side", splitter.saveState())


def restore_layout(window: QMainWindow, splitter: QSplitter, settings: QSettings) -> None:
    """Geometry, dock and splitter sizes as last closed; maximised the first time."""
    geometry = settings.value("window/geometry")
    if not isinstance(geometry, QByteArray):
        window.setWindowState(window.windowState() | Qt.WindowState.WindowMaximized)
        # once shown: sizes given before that are ignored
        QTimer.singleShot(0, window, lambda: size_docks(window))
        return
    window.restoreGeometry(geometry)
    state, side = settings.value("window/state"), settings.value("window/side")
    if isinstance(state, QByteArray):
        window.restoreState(state)
    if isinstance(side, QByteArray):
        splitter.restoreState(side)


def size_docks(window: QMainWindow) -> None:
    """First run: room for the findings' numbers beside the Studies panel."""
    docks = {d.objectName(): d for d in window.findChildren(QDockWidget)}
    wanted = [(docks[n], w) for n, w in (("explanation", 380), ("studies", 260)) if n in docks]
    window.resizeDocks([d for d, _ in wanted], [w for _, w in wanted], Qt.Orientation.Horizontal)

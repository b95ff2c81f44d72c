"""The QActions, menu bar and toolbar, built from the table in `ui/actions.py`.

Every action is added to the window itself as well, so its key works whatever has the focus
and whether or not its menu is open (window-wide shortcut context).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar

from gradcam_viewer.ui.actions import ACTIONS, MENU_TITLES, MENUS, ActionSpec, key_rows

Handler = Callable[[], object] | Callable[[bool], object]


class Actions:
    """The window's actions by name (`actions["open"]`), its menus and its toolbar."""

    def __init__(self, window: QMainWindow, handlers: Mapping[str, Handler]) -> None:
        wanted = {a.name for a in ACTIONS if not a.submenu}
        if set(handlers) != wanted:
            raise ValueError(f"handlers missing {sorted(wanted - set(handlers))}, "
                             f"unknown {sorted(set(handlers) - wanted)}")
        self._actions = {a.name: _action(window, a, handlers[a.name])
                         for a in ACTIONS if not a.submenu}
        self.menus: dict[str, QMenu] = {}
        self.submenus: dict[str, QMenu] = {}
        bar = window.menuBar()
        for name in MENUS:
            self.menus[name] = bar.addMenu(MENU_TITLES[name])
        self._fill_menus()
        self.toolbar = QToolBar("Main")
        self.toolbar.setObjectName("main-toolbar")
        self.toolbar.setMovable(False)
        self._fill_toolbar()
        window.addToolBar(self.toolbar)

    def __getitem__(self, name: str) -> QAction:
        return self._actions[name]

    def _fill_menus(self) -> None:
        last: dict[str, int] = {}
        for a in ACTIONS:
            if not a.menu:
                continue
            menu = self.menus[a.menu]
            if a.menu in last and last[a.menu] != a.section:
                menu.addSeparator()
            last[a.menu] = a.section
            if a.submenu:
                self.submenus[a.name] = menu.addMenu(a.text)
            else:
                menu.addAction(self._actions[a.name])

    def _fill_toolbar(self) -> None:
        placed = sorted((a.toolbar, a.name) for a in ACTIONS if a.toolbar is not None)
        for i, (position, name) in enumerate(placed):
            if i and position // 10 != placed[i - 1][0] // 10:
                self.toolbar.addSeparator()
            self.toolbar.addAction(self._actions[name])


def _action(window: QMainWindow, spec: ActionSpec, handler: Handler) -> QAction:
    act = QAction(spec.text, window)
    if spec.shortcut:
        act.setShortcut(QKeySequence(spec.shortcut))
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    act.setCheckable(spec.checkable)
    (act.toggled if spec.checkable else act.triggered).connect(handler)
    window.addAction(act)
    return act


def shortcuts_html() -> str:
    """Help > Keyboard shortcuts: the table's keys and the mouse, as an HTML table."""
    rows = "".join(f"<tr><td>{html.escape(what)}</td><td><b>{html.escape(keys)}</b></td></tr>"
                   for keys, what in key_rows())
    return f"<table cellpadding=4>{rows}</table>"

"""The actions table (gradcam_viewer/ui/actions.py): one shortcut per action at most, no key
bound twice, README's key table says what the table says, and the window's menus, toolbar and
Help > Keyboard shortcuts are built from it."""

import re
from pathlib import Path

import pytest

from gradcam_viewer.ui.actions import ACTIONS, MENUS, key_rows

ROOT = Path(__file__).resolve().parents[1]


def key_tables() -> dict[str, list[tuple[str, str]]]:
    """Every table headed `| keys | action |` in README.md and docs/ (by file), its rows
    without backticks."""
    tables = {}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        lines = path.read_text(encoding="utf-8").splitlines()
        for start, line in enumerate(lines):
            if not re.fullmatch(r"\|\s*keys\s*\|\s*action\s*\|", line.strip()):
                continue
            rows = []
            for row in lines[start + 2:]:
                if not row.startswith("|"):
                    break
                cells = [c.strip().replace("`", "") for c in row.strip().strip("|").split("|")]
                assert len(cells) == 2, row
                rows.append((cells[0], cells[1]))
            tables[f"{path.relative_to(ROOT)}:{start + 1}"] = rows
    return tables


def test_names_are_unique_and_menus_known():
    names = [a.name for a in ACTIONS]
    assert len(names) == len(set(names))
    assert {a.menu for a in ACTIONS} <= set(MENUS) | {""}
    assert all(a.menu for a in ACTIONS if a.submenu or a.toolbar is not None)


def test_every_action_has_one_shortcut_or_none():
    from PySide6.QtGui import QKeySequence

    for a in ACTIONS:
        if not a.shortcut:
            continue
        seq = QKeySequence(a.shortcut)
        # one key combination, which Qt reads back as written (no "Ctrl+O, Ctrl+P" chords)
        assert seq.count() == 1 and seq.toString() == a.shortcut, a
        assert not a.submenu and not a.checkable, a


def test_no_key_is_bound_twice():
    from PySide6.QtGui import QKeySequence

    keys = [QKeySequence(a.shortcut).toString() for a in ACTIONS if a.shortcut]
    twice = {k for k in keys if keys.count(k) > 1}
    assert not twice, twice


def test_readme_key_table_is_the_table():
    tables = key_tables()
    assert any(where.startswith("README.md:") for where in tables)
    for where, rows in tables.items():
        assert rows == key_rows(), where


def test_the_window_is_built_from_the_table(win):
    """Menus in table order with a separator where the section changes, one QAction per key
    and no two on one key (nothing outside the table binds one), Help lists every row."""
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QDialog, QTextBrowser

    bar = [a.text() for a in win.menuBar().actions()]
    assert [t.replace("&", "") for t in bar] == list(MENUS)
    for menu_name in MENUS:
        rows = [a for a in ACTIONS if a.menu == menu_name]
        expected = []
        for i, a in enumerate(rows):
            if i and rows[i - 1].section != a.section:
                expected.append("---")
            expected.append(a.text)
        menu = win.act.menus[menu_name]
        shown = ["---" if q.isSeparator() else q.text() for q in menu.actions()]
        assert shown == expected, menu_name
    bound = [s.toString() for q in win.findChildren(QAction) for s in q.shortcuts()]
    assert len(bound) == len(set(bound)) == len([a for a in ACTIONS if a.shortcut])
    assert all(len(q.shortcuts()) <= 1 for q in win.findChildren(QAction))
    toolbar = [q.text() for q in win.act.toolbar.actions() if q.text()]
    assert toolbar == [a.text for a in sorted((a for a in ACTIONS if a.toolbar is not None),
                                              key=lambda a: a.toolbar)]
    win.act["keys"].trigger()
    text = win.findChild(QDialog).findChild(QTextBrowser).toPlainText()
    for keys, what in key_rows():
        assert keys in text and what in text


def test_handlers_must_match_the_table(qapp):
    from PySide6.QtWidgets import QMainWindow

    from gradcam_viewer.ui.menus import Actions

    handlers = {a.name: (lambda: None) for a in ACTIONS if not a.submenu}
    del handlers["quit"]
    with pytest.raises(ValueError, match="quit"):
        Actions(QMainWindow(), handlers)

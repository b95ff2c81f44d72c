"""Every menu entry, toolbar button and keyboard shortcut of the window, declared once.

The table is plain data (no Qt here): `ui/menus.py` builds the QActions, menus and toolbar from
it, Help > Keyboard shortcuts lists it, and a test checks README's key table against it. Each
row's `name` is also the key of its handler (the window hands `menus.build` a mapping of
name -> callable; a checkable row's handler gets the new state).

Order matters: rows appear in their menu in table order, with a separator wherever `section`
changes; `toolbar` is the button's position on the toolbar (a separator wherever the tens
digit changes). A row with `submenu=True` is a menu filled at run time (recent files, window
presets).
"""

from __future__ import annotations

from dataclasses import dataclass

MENUS = ("File", "View", "Marks", "Settings", "Help")  # the menu bar, left to right
MENU_TITLES = {"File": "&File", "View": "&View", "Marks": "&Marks", "Settings": "&Settings",
               "Help": "&Help"}


@dataclass(frozen=True)
class ActionSpec:
    name: str  # the handler's key, and how code and tests find the action
    text: str  # menu text, with & before the mnemonic
    menu: str  # one of MENUS, or "" for a key without a menu entry
    section: int = 0
    shortcut: str = ""  # Qt's portable key text, e.g. "Ctrl+Shift+O"; one key or none
    toolbar: int | None = None
    checkable: bool = False
    submenu: bool = False
    keys_help: str = ""  # the line in Help > Keyboard shortcuts (default: the menu text)

    @property
    def title(self) -> str:
        """The menu text as a reader sees it: no mnemonic, no ellipsis."""
        return self.text.replace("&", "").removesuffix("...")

    @property
    def help_text(self) -> str:
        return self.keys_help or self.title


A = ActionSpec
ACTIONS: tuple[ActionSpec, ...] = (
    A("open", "&Open...", "File", 0, "Ctrl+O", toolbar=11, keys_help="Open files"),
    A("open_folder", "Open &folder...", "File", 0, "Ctrl+Shift+O", toolbar=12),
    A("recent", "Open &recent", "File", 0, submenu=True),
    A("open_pacs", "Open from PAC&S...", "File", 0),
    A("model", "Open &model...", "File", 1),
    A("chexnet", "Open &CheXNet weights...", "File", 1),
    A("demo", "Use the &demo model", "File", 1),
    A("export_png", "&Export view as PNG...", "File", 2, "Ctrl+E", toolbar=32),
    A("export_csv", "Export predictions as &CSV...", "File", 2),
    A("export_json", "Export predictions as &JSON...", "File", 2),
    A("include_phi", "Include patient-identifying fields in exports", "File", 2,
      checkable=True),
    A("no_ids", "Leave DICOM UIDs out of exports", "File", 2, checkable=True),
    A("export_marks", "Export &marks as CSV and JSON...", "File", 2),
    A("export_dicom", "Export as &DICOM...", "File", 3),
    A("send_pacs", "Send to &PACS...", "File", 3),
    A("export_marks_sr", "Export marks as DICOM S&R...", "File", 3),
    A("send_marks", "Send marks to PAC&S...", "File", 3),
    # Ctrl+Q spelled out: StandardKey.Quit has no binding on Windows (nor offscreen)
    A("quit", "&Quit", "File", 4, "Ctrl+Q"),
    A("next", "Next file", "View", 0, "PgDown", toolbar=14,
      keys_help="Next image (Studies order)"),
    A("prev", "Previous file", "View", 0, "PgUp", toolbar=13,
      keys_help="Previous image (Studies order)"),
    A("fit", "&Fit to window", "View", 1, "=", toolbar=21),
    A("one", "&Actual size (1:1)", "View", 1, "1", toolbar=22),
    A("zoom_in", "Zoom &in", "View", 1, "+"),
    A("zoom_out", "Zoom &out", "View", 1, "-"),
    A("invert", "&Invert", "View", 2, "I", toolbar=23),
    A("reset", "&Reset view and window", "View", 2, "Space", toolbar=24),
    A("presets", "Window &presets", "View", 2, submenu=True),
    A("overlay", "Heatmap &overlay", "View", 3, "O", toolbar=31,
      keys_help="Heatmap overlay on/off"),
    A("contours", "&Contours only", "View", 3, "C"),
    A("method", "Next CAM &method", "View", 3, "M"),
    A("order", "Findings &list order", "View", 3, "L",
      keys_help="Findings by probability / model order"),
    A("grid", "&Grid of all findings", "View", 3, "G",
      keys_help="Grid of all findings / single view"),
    A("label_up", "Previous finding", "", shortcut="Up"),  # keys only: no menu entry
    A("label_down", "Next finding", "", shortcut="Down"),
    A("mark_rect", "&Rectangle", "Marks", 0, "B", toolbar=41,
      keys_help="Draw a rectangle (B again: back to select/pan)"),
    A("mark_ellipse", "&Ellipse", "Marks", 0, "E", toolbar=42,
      keys_help="Draw an ellipse"),
    A("mark_polygon", "&Polygon", "Marks", 0, "P", toolbar=43,
      keys_help="Draw a polygon (click the corners; double-click or Enter closes, Esc drops)"),
    A("mark_none", "&No finding on this image", "Marks", 1),
    A("mark_copy", "Edit a &copy of the selected mark", "Marks", 1),
    A("mark_delete", "&Delete the selected mark", "Marks", 2, "Del"),
    A("mark_undo", "&Undo", "Marks", 2, "Ctrl+Z", keys_help="Undo a change to the marks"),
    A("mark_redo", "Re&do", "Marks", 2, "Ctrl+Shift+Z", keys_help="Redo a change to the marks"),
    A("marks_shown", "Show &marks", "Marks", 3, "A",
      keys_help="Marks shown / hidden"),
    A("pacs_nodes", "&PACS nodes...", "Settings"),
    A("operator", "&Operator name...", "Settings"),
    A("card", "&Model card...", "Help"),
    A("check", "&Check this model...", "Help"),
    A("keys", "&Keyboard shortcuts...", "Help"),
    A("about", "&About", "Help"),
)

# what the mouse does in the image, for the same list (no action: the view handles it)
MOUSE: tuple[tuple[str, str], ...] = (
    ("left drag", "Pan"),
    ("right drag", "Window / level (horizontal = width, vertical = level)"),
    ("mouse wheel", "Zoom in / out"),
    ("left drag on a mark", "Move it (on a handle: resize it)"),
)

_SPOKEN = {"PgDown": "Page Down", "PgUp": "Page Up", "Del": "Delete"}


def spec(name: str) -> ActionSpec:
    return next(a for a in ACTIONS if a.name == name)


def key_rows() -> list[tuple[str, str]]:
    """(keys, what they do) for every shortcut in table order, then the mouse: Help >
    Keyboard shortcuts shows these rows, and README's key table must say the same."""
    rows = [(_SPOKEN.get(a.shortcut, a.shortcut), a.help_text) for a in ACTIONS if a.shortcut]
    return rows + list(MOUSE)

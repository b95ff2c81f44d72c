"""Editing one image's marks: every change goes through `MarkEditor.change`, which saves it to
the store at once and records it for undo/redo. No Qt.

Why not Qt's QUndoStack: an image's marks are one frozen `ImageMarks` value, so an undo step is
simply the value before and after; a stack of values is a few lines, can be tested without a
window, and keeps the one place that writes to the store here. Each image keeps its own history
for the session (undo after coming back to an image undoes that image's last change).

Marks read from other readers' reports are not edits: `add_read_only` saves them without an
undo step, each report's marks in place of what that report gave before, and an undo or redo
only steps the viewer's own marks, keeping the read-only marks as they are now (theirs drawn
below, yours on top).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from gradcam_viewer.marks.shapes import ImageKey, ImageMarks, Mark
from gradcam_viewer.marks.store import MarkStore

LIMIT = 200  # undo steps kept per image


@dataclass
class History:
    """Undo and redo stacks of whole states."""

    undo_stack: list[ImageMarks] = field(default_factory=list)
    redo_stack: list[ImageMarks] = field(default_factory=list)

    def done(self, before: ImageMarks) -> None:
        self.undo_stack.append(before)
        del self.undo_stack[:-LIMIT]
        self.redo_stack.clear()

    def undo(self, now: ImageMarks) -> ImageMarks | None:
        if not self.undo_stack:
            return None
        self.redo_stack.append(now)
        return self.undo_stack.pop()

    def redo(self, now: ImageMarks) -> ImageMarks | None:
        if not self.redo_stack:
            return None
        self.undo_stack.append(now)
        return self.redo_stack.pop()


class MarkEditor:
    """The marks of the image on screen, the mark selected, and their histories.

    `saved` is called with every state written (the window redraws from it); a failed write
    raises OSError after the state is rolled back, so the screen never shows marks that are not
    on disk."""

    def __init__(self, store: MarkStore | None = None,
                 saved: Callable[[ImageMarks], None] | None = None) -> None:
        self.store = store if store is not None else MarkStore()
        self.saved = saved
        self.marks: ImageMarks | None = None
        self.selected: str | None = None
        self._histories: dict[ImageKey, History] = {}

    # --- which image ----------------------------------------------------------------------
    def show(self, key: ImageKey | None, name: str = "", size: tuple[int, int] = (0, 0)) -> None:
        """The image on screen changed (None: no image): its marks are read from the store."""
        self.selected = None
        self.marks = None if key is None else self.store.load(key, name, size)

    @property
    def history(self) -> History:
        assert self.marks is not None
        return self._histories.setdefault(self.marks.key, History())

    # --- changes --------------------------------------------------------------------------
    def change(self, new: ImageMarks) -> None:
        """Replace the marks by `new`: saved at once, undoable."""
        old = self._current()
        if new == old:
            return
        self._write(new)
        self.history.done(old)

    def put(self, mark: Mark) -> None:
        """Add `mark`, or put it in place of the mark with its id; it becomes the selection.
        Marks read from elsewhere cannot be changed (`own_copy` first)."""
        old = self._current().get(mark.id)
        if old is not None and old.read_only:
            raise ValueError("this mark was read from elsewhere: edit a copy of it")
        self.change(self._current().with_mark(mark))
        self.selected = mark.id

    def delete(self, mark_id: str | None = None) -> bool:
        """Delete a mark (default: the selected one). Read-only marks stay."""
        mark_id = mark_id or self.selected
        marks = self._current()
        mark = marks.get(mark_id) if mark_id else None
        if mark is None or mark.read_only:
            return False
        self.change(marks.without(mark.id))
        if self.selected == mark.id:
            self.selected = None
        return True

    def add_read_only(self, marks: Iterable[Mark], sources: Iterable[str] = ()) -> None:
        """Marks read from elsewhere, saved with the image's own but not as an edit: no undo
        step. Each report read replaces what it gave before: the read-only marks of every
        source in `sources` and in `marks` are dropped and `marks` put in their place (a
        report read again with fewer marks, or none for this image, leaves only what it now
        holds), as is an earlier copy of a mark with one of their ids (the same mark met in a
        newer report). Other reports' marks and your own stay."""
        marks = list(marks)
        if any(not m.read_only for m in marks):
            raise ValueError("only marks read from elsewhere are added this way")
        read = {*sources, *(m.source for m in marks)}
        ids = {m.id for m in marks}
        current = self._current()
        kept = [m for m in current.marks
                if m.read_only and m.source not in read and m.id not in ids]
        new = _with_read_only(current, [*kept, *marks])
        if new != current:
            self._write(new)

    def copy_selected(self) -> Mark | None:
        """An editable copy of the selected read-only mark, added and selected."""
        mark = self.selected_mark()
        if mark is None or not mark.read_only:
            return None
        copy = mark.own_copy()
        self.put(copy)
        return copy

    def undo(self) -> bool:
        return self._step(self.history.undo)

    def redo(self) -> bool:
        return self._step(self.history.redo)

    def selected_mark(self) -> Mark | None:
        if self.marks is None or self.selected is None:
            return None
        return self.marks.get(self.selected)

    # --- inside ---------------------------------------------------------------------------
    def _current(self) -> ImageMarks:
        if self.marks is None:
            raise ValueError("no image is open")
        return self.marks

    def _step(self, pop: Callable[[ImageMarks], ImageMarks | None]) -> bool:
        if self.marks is None:
            return False
        now = self.marks
        popped = pop(now)
        if popped is None:
            return False
        state = _with_read_only(popped, (m for m in now.marks if m.read_only))
        try:
            self._write(state)
        except OSError:
            pop_back = self.history.redo if pop == self.history.undo else self.history.undo
            pop_back(popped)  # the step did not happen
            raise
        if self.selected is not None and state.get(self.selected) is None:
            self.selected = None
        return True

    def _write(self, new: ImageMarks) -> None:
        self.store.save(new)  # OSError: nothing changed
        self.marks = new
        if self.saved is not None:
            self.saved(new)


def _with_read_only(state: ImageMarks, read_only: Iterable[Mark]) -> ImageMarks:
    """`state`'s own marks with `read_only` in place of its read-only ones: theirs first (drawn
    below), then yours (on top, where the mouse picks them)."""
    return replace(state, marks=(*read_only, *(m for m in state.marks if not m.read_only)))

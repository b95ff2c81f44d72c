"""The marks over the image: drawn as scene items (the scene's units are image pixels, so they
follow zoom and pan by themselves and sit above the image and the heatmap, untouched by
window/level), and the mouse that draws, selects, moves and resizes them.

Tools: select (left-drag on a mark moves it, on a handle resizes it, elsewhere pans), rectangle
and ellipse (drag a box), polygon (click the vertices; double-click or Enter closes it, Esc
drops it). Every finished gesture is one change to the `MarkEditor` (saved, undoable); during a
drag only the item moves.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QMouseEvent, QPainterPath, QPen, QTransform
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
    QGraphicsView,
)

from gradcam_viewer.marks.history import MarkEditor
from gradcam_viewer.marks.shapes import Bounds, Kind, Mark, ellipse_axes
from gradcam_viewer.ui.image_view import ImageView

PALETTE = ("#00e5ff", "#76ff03", "#ffea00", "#ff4081", "#ffab40", "#b388ff", "#64ffda",
           "#ff6e40", "#eeff41", "#40c4ff")
READ_ONLY = QColor("#b0bec5")
HANDLE = 8  # screen pixels
MIN_SIZE = 1.0  # image pixels: a click without a drag draws nothing
Z = 5


class Tool(StrEnum):
    SELECT = "select"
    RECTANGLE = "rectangle"
    ELLIPSE = "ellipse"
    POLYGON = "polygon"


def colour_of(finding: str) -> QColor:
    """The same colour for a finding in every image and session."""
    return QColor(PALETTE[zlib.crc32(finding.encode("utf-8")) % len(PALETTE)])


def mark_path(mark: Mark, size: tuple[int, int]) -> QPainterPath:
    """The mark's outline in scene (= image pixel) coordinates."""
    path = QPainterPath()
    if mark.kind is Kind.NO_FINDING:
        path.addRect(QRectF(0, 0, size[1], size[0]))
    elif mark.kind is Kind.RECTANGLE:
        (x0, y0), (x1, y1) = mark.points
        path.addRect(QRectF(x0, y0, x1 - x0, y1 - y0))
    elif mark.kind is Kind.ELLIPSE:
        cx, cy, a, b, ux, uy = ellipse_axes(mark.points)
        path.addEllipse(QPointF(0, 0), a, b)
        turn = QTransform(ux, uy, -uy, ux, cx, cy)  # rotate the x axis onto the major axis
        path = turn.map(path)
    else:
        path.moveTo(*mark.points[0])
        for x, y in mark.points[1:]:
            path.lineTo(x, y)
        path.closeSubpath()
    return path


def handle_points(mark: Mark) -> list[QPointF]:
    """Where the handles are: a polygon's vertices, else the bounding box's corners and edge
    middles (clockwise from top-left: 0-3 corners, 4-7 edges top, right, bottom, left)."""
    if mark.kind is Kind.POLYGON:
        return [QPointF(x, y) for x, y in mark.points]
    if mark.kind is Kind.NO_FINDING:
        return []
    x0, y0, x1, y1 = mark.bounds()
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    return [QPointF(x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1),
                                       (xm, y0), (x1, ym), (xm, y1), (x0, ym))]


def resized_bounds(bounds: Bounds, handle: int, p: QPointF) -> Bounds:
    """The box with the edges that handle `handle` holds moved to `p`."""
    x0, y0, x1, y1 = bounds
    x, y = p.x(), p.y()
    if handle in (0, 3, 7):
        x0 = x
    if handle in (1, 2, 5):
        x1 = x
    if handle in (0, 1, 4):
        y0 = y
    if handle in (2, 3, 6):
        y1 = y
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


@dataclass
class _Drag:
    what: str  # "new", "move", "resize"
    start: QPointF
    mark: Mark | None = None  # the mark as it was when the drag started
    handle: int = -1


class MarksLayer:
    """Draws the editor's marks in the view and turns mouse gestures into edits."""

    def __init__(self, view: ImageView, editor: MarkEditor, finding: Callable[[], str],
                 error: Callable[[str], None]) -> None:
        self.view, self.editor = view, editor
        self._finding, self._error = finding, error
        self.tool = Tool.SELECT
        self.shown = True
        self._items: list[QGraphicsItem] = []
        self._preview: QGraphicsPathItem | None = None
        self._drag: _Drag | None = None
        self._polygon: list[QPointF] = []
        view.set_marks_hook(self.handle)

    # --- state ----------------------------------------------------------------------------
    def set_tool(self, tool: Tool) -> None:
        self._cancel()
        self.tool = tool
        drawing = tool is not Tool.SELECT
        self.view.setDragMode(QGraphicsView.DragMode.NoDrag if drawing
                              else QGraphicsView.DragMode.ScrollHandDrag)
        if drawing:
            self.view.viewport().setCursor(Qt.CursorShape.CrossCursor)
        else:
            self.view.viewport().unsetCursor()

    def set_shown(self, on: bool) -> None:
        self.shown = on
        self.redraw()

    def drawing(self) -> bool:
        return self._drag is not None or bool(self._polygon)

    # --- drawing --------------------------------------------------------------------------
    def redraw(self) -> None:
        """The items again from the editor's marks (cheap: a handful of paths)."""
        scene = self.view.scene()
        for item in self._items:
            scene.removeItem(item)
        self._items = []
        marks = self.editor.marks
        if marks is None or not self.shown:
            return
        size = self._size()
        for mark in marks.marks:
            self._add_mark(mark, size, mark.id == self.editor.selected)

    def _add_mark(self, mark: Mark, size: tuple[int, int], selected: bool) -> None:
        colour = READ_ONLY if mark.read_only else colour_of(mark.finding)
        pen = QPen(colour, 3.0 if selected else 2.0)
        pen.setCosmetic(True)  # the same width at every zoom
        if mark.read_only:
            pen.setStyle(Qt.PenStyle.DashLine)
        if mark.kind is Kind.NO_FINDING:
            pen.setStyle(Qt.PenStyle.DotLine)
        item = QGraphicsPathItem(mark_path(mark, size))
        item.setPen(pen)
        item.setZValue(Z)
        item.setData(0, mark.id)
        self._add(item)
        x0, y0, _, y1 = mark.bounds(size)
        text = mark.finding + (f"  (read-only: {mark.source})" if mark.read_only else "")
        # read-only marks are named under the shape: a copy or a mark of one's own over the
        # same finding keeps its name above it readable
        self._add(_label(text, colour, QPointF(x0, y1 if mark.read_only else y0),
                         above=not mark.read_only))
        if selected and not mark.read_only:
            for p in handle_points(mark):
                self._add(_handle(p, colour))

    def _add(self, item: QGraphicsItem) -> None:
        self.view.scene().addItem(item)
        self._items.append(item)

    def _show_preview(self, path: QPainterPath) -> None:
        if self._preview is None:
            self._preview = QGraphicsPathItem()
            pen = QPen(colour_of(self._finding()), 2.0, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._preview.setPen(pen)
            self._preview.setZValue(Z + 2)
            self.view.scene().addItem(self._preview)
        self._preview.setPath(path)

    def _drop_preview(self) -> None:
        if self._preview is not None:
            self.view.scene().removeItem(self._preview)
            self._preview = None

    # --- the mouse and the keys -----------------------------------------------------------
    def handle(self, event: QEvent) -> bool:
        """Called by the view for its mouse and key events; True: consumed here."""
        if self.editor.marks is None or not self.shown:
            return False
        kind = event.type()
        if isinstance(event, QKeyEvent):
            return kind == QEvent.Type.KeyPress and self._key(event)
        if not isinstance(event, QMouseEvent):
            return False
        p = self.view.viewportTransform().inverted()[0].map(event.position())
        if kind == QEvent.Type.MouseButtonDblClick:
            return self._double_click(p, event)
        if kind == QEvent.Type.MouseButtonPress:
            return event.button() == Qt.MouseButton.LeftButton and self._press(p, event)
        if kind == QEvent.Type.MouseMove:
            return self._move(p)
        if kind == QEvent.Type.MouseButtonRelease:
            return event.button() == Qt.MouseButton.LeftButton and self._release(p)
        return False

    def _press(self, p: QPointF, event: QMouseEvent) -> bool:
        if self.tool in (Tool.RECTANGLE, Tool.ELLIPSE):
            self._drag = _Drag("new", p)
            return True
        if self.tool is Tool.POLYGON:
            self._polygon.append(p)
            self._preview_polygon(p)
            return True
        hit = self._hit(event)
        if hit is None:
            if self.editor.selected is not None:
                self.editor.selected = None
                self.redraw()
            return False  # the view pans
        mark, handle = hit
        self.editor.selected = mark.id
        if not mark.read_only:
            self._drag = _Drag("resize" if handle >= 0 else "move", p, mark, handle)
        self.redraw()
        return True

    def _move(self, p: QPointF) -> bool:
        drag = self._drag
        if self._polygon:
            self._preview_polygon(p)
            return True
        if drag is None:
            return False
        shown = self._dragged(drag, p)
        if shown is not None:
            self._show_preview(mark_path(shown, self._size()))
        return True

    def _release(self, p: QPointF) -> bool:
        drag, self._drag = self._drag, None
        if drag is None:
            return bool(self._polygon)
        self._drop_preview()
        mark = self._dragged(drag, p)
        if mark is not None and (drag.what != "new" or _big_enough(mark)):
            self._put(mark)
        return True

    def _double_click(self, p: QPointF, event: QMouseEvent) -> bool:
        if self.tool is Tool.POLYGON:
            self._polygon.append(p)  # its press added it already, unless synthesised alone
            self.finish_polygon()
            return True
        return self._hit(event) is not None

    def _key(self, event: QKeyEvent) -> bool:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self._polygon:
            self.finish_polygon()
            return True
        if event.key() == Qt.Key.Key_Escape and self.drawing():
            self._cancel()
            return True
        return False

    # --- gestures into marks --------------------------------------------------------------
    def _dragged(self, drag: _Drag, p: QPointF) -> Mark | None:
        """The mark a drag would make if it ended at `p`."""
        if drag.what == "new":
            box = (drag.start.x(), drag.start.y(), p.x(), p.y())
            if self.tool is Tool.ELLIPSE:
                return Mark.ellipse_in(*box, self._finding())
            return Mark.rectangle(*box, self._finding())
        mark = drag.mark
        assert mark is not None
        if drag.what == "move":
            return mark.moved(p.x() - drag.start.x(), p.y() - drag.start.y())
        if mark.kind is Kind.POLYGON:
            return mark.with_vertex(drag.handle, (p.x(), p.y()))
        return mark.fitted(resized_bounds(mark.bounds(), drag.handle, p))

    def _preview_polygon(self, p: QPointF) -> None:
        path = QPainterPath(self._polygon[0])
        for q in self._polygon[1:] + [p]:
            path.lineTo(q)
        self._show_preview(path)

    def finish_polygon(self) -> None:
        """Close the polygon being drawn (3 distinct vertices at least, else it is dropped)."""
        points: list[tuple[float, float]] = []
        for q in self._polygon:
            if not points or (q.x(), q.y()) != points[-1]:
                points.append((q.x(), q.y()))
        self._cancel()
        if len(points) >= 3:
            self._put(Mark.polygon(points, self._finding()))

    def _put(self, mark: Mark) -> None:
        try:
            self.editor.put(mark)
        except (OSError, ValueError) as exc:
            self._error(f"The mark was not kept: {exc}")
        self.redraw()

    def _cancel(self) -> None:
        self._drag = None
        self._polygon = []
        self._drop_preview()

    def _hit(self, event: QMouseEvent) -> tuple[Mark, int] | None:
        """The mark under the cursor and the handle (-1: none): the selected mark's handles
        first (within HANDLE screen pixels), then the topmost shape containing the point."""
        marks = self.editor.marks
        if marks is None:
            return None
        where = event.position()
        selected = self.editor.selected_mark()
        if selected is not None and not selected.read_only:
            for i, h in enumerate(handle_points(selected)):
                q = self.view.mapFromScene(h)
                if abs(q.x() - where.x()) <= HANDLE and abs(q.y() - where.y()) <= HANDLE:
                    return selected, i
        p = self.view.viewportTransform().inverted()[0].map(where)
        for mark in reversed(marks.marks):
            if mark.is_region and mark_path(mark, self._size()).contains(p):
                return mark, -1
        return None

    def _size(self) -> tuple[int, int]:
        rect = self.view.scene().sceneRect()
        marks = self.editor.marks
        if marks is not None and marks.size != (0, 0):
            return marks.size
        return int(rect.height()), int(rect.width())


def _big_enough(mark: Mark) -> bool:
    x0, y0, x1, y1 = mark.bounds()
    return x1 - x0 >= MIN_SIZE and y1 - y0 >= MIN_SIZE


def _label(text: str, colour: QColor, at: QPointF, above: bool = True) -> QGraphicsItem:
    """The finding's name at the mark's top-left, the same size at every zoom."""
    item = QGraphicsSimpleTextItem(text)
    item.setBrush(QBrush(colour))
    back = QGraphicsRectItem(item.boundingRect().adjusted(-2, -1, 2, 1))
    back.setBrush(QBrush(QColor(0, 0, 0, 160)))
    back.setPen(QPen(Qt.PenStyle.NoPen))
    item.setParentItem(back)
    back.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
    back.setPos(at)
    if above:
        back.setTransform(QTransform.fromTranslate(0, -back.rect().height() - 1))
    back.setZValue(Z + 1)
    return back


def _handle(at: QPointF, colour: QColor) -> QGraphicsItem:
    half = HANDLE / 2
    item = QGraphicsRectItem(-half, -half, HANDLE, HANDLE)
    item.setBrush(QBrush(colour))
    item.setPen(QPen(Qt.GlobalColor.black, 1))
    item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
    item.setPos(at)
    item.setZValue(Z + 1)
    return item

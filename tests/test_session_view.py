"""Window/level and inversion in the Qt-free session (session/view.py and the controller's
view events): properties over random images and random sequences of drags, presets,
inversions, resets, opens and late replies."""

from pathlib import Path

import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gradcam_viewer.imaging.image import LoadedImage, Window
from gradcam_viewer.session.controller import OpenRequest, Redraw, SessionController
from gradcam_viewer.session.snapshot import Snapshot
from gradcam_viewer.session.view import (
    DRAG_FULL_RANGE_PX,
    ViewState,
    dragged,
    initial_view,
    inverted,
    with_preset,
)

FUNCTIONS = ["LINEAR", "LINEAR_EXACT", "SIGMOID"]


@st.composite
def windows(draw: st.DrawFn) -> Window:
    if draw(st.booleans()):
        return Window(draw(st.floats(-1000, 5000)), draw(st.floats(1, 6000)),
                      draw(st.sampled_from(["", "LUNG", "Full range"])),
                      draw(st.sampled_from(FUNCTIONS)))
    return Window(0.0, 1.0, "VOI LUT", "LINEAR", lut_index=draw(st.integers(0, 3)))


@st.composite
def images(draw: st.DrawFn, colour: bool | None = None, name: str = "a.dcm") -> LoadedImage:
    colour = draw(st.booleans()) if colour is None else colour
    lo = draw(st.integers(-1024, 1000))
    hi = lo + draw(st.integers(0, 4095))
    shape = (3, 4, 3) if colour else (3, 4)
    pixels = np.linspace(lo, hi, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    presets = [] if colour else draw(st.lists(windows(), max_size=4))
    window = None if colour or not presets else presets[0]
    return LoadedImage(Path(name), pixels, "test", window, presets, draw(st.booleans()))


drags = st.tuples(st.floats(-2000, 2000), st.floats(-2000, 2000))


@given(images())
def test_an_image_opens_with_its_own_window_and_inversion(image):
    view = initial_view(image)
    assert view == ViewState(image.window, image.invert)
    assert initial_view(None) == ViewState()


@given(images(colour=False), st.lists(drags, min_size=1, max_size=6))
def test_a_drag_gives_a_manual_linear_or_sigmoid_window_at_least_one_wide(image, moves):
    view = initial_view(image)
    for dx, dy in moves:
        before = view.window
        view = dragged(view, image, dx, dy)
        w = view.window
        assert w is not None and w.width >= 1.0 and w.explanation == "Manual"
        assert w.lut_index is None  # a LUT has no width: the drag leaves it
        if before is not None and before.lut_index is None and before.function == "SIGMOID":
            assert w.function == "SIGMOID"
        else:
            assert w.function == "LINEAR"  # LINEAR_EXACT and LUTs become LINEAR
        assert view.inverted == image.invert  # dragging never inverts


@given(images(colour=False), st.floats(-300, 300), st.floats(-300, 300),
       st.floats(-300, 300), st.floats(-300, 300))
def test_drags_add_up_and_the_full_range_is_400_pixels(image, dx1, dy1, dx2, dy2):
    lo, hi = image.value_range
    span = max(hi - lo, 1.0)
    start = ViewState(Window((lo + hi) / 2, 4 * span, "Manual", "LINEAR"))  # no clamping
    two = dragged(dragged(start, image, dx1, dy1), image, dx2, dy2)
    one = dragged(start, image, dx1 + dx2, dy1 + dy2)
    assert np.isclose(two.window.width, one.window.width, rtol=1e-9, atol=1e-6)
    assert np.isclose(two.window.center, one.window.center, rtol=1e-9, atol=1e-6)
    full = dragged(start, image, DRAG_FULL_RANGE_PX, DRAG_FULL_RANGE_PX)
    assert np.isclose(full.window.width - start.window.width, span)
    assert np.isclose(full.window.center - start.window.center, span)
    assert DRAG_FULL_RANGE_PX == 400  # the speed the README describes: 400 px per range


@given(images(colour=True), drags)
def test_a_colour_image_has_no_window_to_drag(image, move):
    view = initial_view(image)
    assert dragged(view, image, *move) == view


@given(images(colour=False), st.integers(-3, 6), st.booleans())
def test_presets_choose_the_files_windows_and_keep_the_inversion(image, index, flip):
    view = initial_view(image)
    if flip:
        view = inverted(view)
    chosen = with_preset(view, image, index)
    if 0 <= index < len(image.presets):
        assert chosen == ViewState(image.presets[index], view.inverted)
    else:
        assert chosen == view


@given(images())
def test_inverting_twice_changes_nothing(image):
    view = initial_view(image)
    assert inverted(view).inverted != view.inverted
    assert inverted(inverted(view)) == view


def test_status_texts_of_the_window():
    image = LoadedImage(Path("x.dcm"), np.zeros((2, 2), np.float32), "DICOM",
                        Window(40, 400), [Window(40, 400)])
    assert Snapshot(image=image, view=initial_view(image)).window_text() == "W 400  L 40"
    lut = Window(0, 1, "SOFT TISSUE", lut_index=0)
    assert Snapshot(image=image, view=ViewState(lut)).window_text() == "SOFT TISSUE"
    colour = LoadedImage(Path("c.png"), np.zeros((2, 2, 3), np.float32), "PNG", None)
    assert Snapshot(image=colour, view=ViewState(Window(1, 2))).window_text() == ""
    line = Snapshot(image=image, view=ViewState(Window(40, 400), True)).info_line()
    assert line.startswith("x.dcm  2\u00d72  DICOM") and line.endswith("inverted")


class ViewEvents(RuleBasedStateMachine):
    """The controller under opens, late and stale image replies, failures and view events in
    any order. Whatever happens, the view is that of the image on screen: its own after it
    arrived (or after a reset), changed only by events for it, and empty without an image."""

    def __init__(self) -> None:
        super().__init__()
        self.session = SessionController()
        self.sent: list[OpenRequest] = []  # opens asked for; replies may come for any
        self.images: dict[int, LoadedImage] = {}
        self.flips = 0  # inversions since the image on screen arrived or was reset

    @rule(image=images())
    def open(self, image):
        request = self.session.open(image.path).requests[0]
        assert isinstance(request, OpenRequest)
        self.sent.append(request)
        self.images[request.request_id] = image

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def image_arrives(self, data):
        request = data.draw(st.sampled_from(self.sent))
        before = (self.session.image, self.session.view)
        current = self.session.opening is not None and request == self.session.opening
        effects = self.session.image_loaded(request.request_id, self.images[request.request_id])
        if current:
            self.flips = 0
            assert self.session.view == initial_view(self.session.image)
            assert effects.redraw & Redraw.IMAGE
        else:  # stale: a newer open was asked for, or it came already
            assert (self.session.image, self.session.view) == before
            assert effects.redraw == Redraw.NONE and not effects.requests

    @precondition(lambda self: self.session.opening is not None)
    @rule()
    def open_fails(self):
        self.session.failed(self.session.opening.request_id, "cannot be read")
        assert self.session.image is None

    @rule(move=drags)
    def drag(self, move):
        self._view_event(self.session.drag_window(*move))

    @rule(index=st.integers(-1, 4))
    def preset(self, index):
        self._view_event(self.session.apply_preset(index))
        image = self.session.image
        if image is not None and 0 <= index < len(image.presets):
            assert self.session.view.window == image.presets[index]

    @rule()
    def invert(self):
        if self.session.image is not None:
            self.flips += 1
        self._view_event(self.session.toggle_invert())

    @rule()
    def reset(self):
        self._view_event(self.session.reset_view())
        if self.session.image is not None:
            self.flips = 0
            assert self.session.view == initial_view(self.session.image)

    def _view_event(self, effects):
        assert not effects.requests and not effects.errors
        assert effects.redraw in (Redraw.NONE, Redraw.WINDOW)
        if self.session.image is None:
            assert effects.redraw == Redraw.NONE

    @invariant()
    def view_belongs_to_the_image_on_screen(self):
        image, view = self.session.image, self.session.view
        if image is None:
            assert view == ViewState()
        else:
            assert view.inverted == (image.invert != (self.flips % 2 == 1))
            if image.is_color:
                assert view.window is None


ViewEvents.TestCase.settings = settings(max_examples=150, stateful_step_count=30,
                                        deadline=None)
test_view_events = ViewEvents.TestCase

"""Window/level and inversion: how the image's pixels are turned into grey levels on screen.

Plain, frozen state, changed only through the functions below (the session controller calls
them on user events and when a new image arrives), so that every change can be tested without
Qt. Zoom and pan stay with the Qt view: they change no pixel of the picture.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gradcam_viewer.imaging.image import LoadedImage, Window

DRAG_FULL_RANGE_PX = 400.0  # dragging this far changes width (or level) by the value range


@dataclass(frozen=True)
class ViewState:
    """The VOI window shown (None: no image, or a colour image) and whether it is inverted."""

    window: Window | None = None
    inverted: bool = False


def initial_view(image: LoadedImage | None) -> ViewState:
    """What an image opens with: the file's default window and its own inversion
    (MONOCHROME1, or a Presentation LUT Shape INVERSE)."""
    if image is None:
        return ViewState()
    return ViewState(image.window, image.invert)


def dragged(view: ViewState, image: LoadedImage, dx: float, dy: float) -> ViewState:
    """Right-drag: `dx` screen pixels change the width, `dy` the level (centre).

    A VOI LUT is left for a linear window over the full range (a LUT has no width to change);
    LINEAR_EXACT becomes LINEAR, the function a hand-set window means. Colour images have no
    window and do not change."""
    if image.is_color:
        return view
    lo, hi = image.value_range
    span = max(hi - lo, 1.0)
    unit = span / DRAG_FULL_RANGE_PX
    base = view.window or Window((lo + hi) / 2, span)
    if base.lut_index is not None:
        base = Window((lo + hi) / 2, span, "", "LINEAR")
    function = "LINEAR" if base.function == "LINEAR_EXACT" else base.function
    window = Window(base.center + dy * unit, max(1.0, base.width + dx * unit), "Manual", function)
    return replace(view, window=window)


def with_preset(view: ViewState, image: LoadedImage, index: int) -> ViewState:
    """One of the windows the file offers (`image.presets`); any other index changes nothing."""
    if 0 <= index < len(image.presets):
        return replace(view, window=image.presets[index])
    return view


def inverted(view: ViewState) -> ViewState:
    return replace(view, inverted=not view.inverted)

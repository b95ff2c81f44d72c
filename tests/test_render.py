"""Colormaps and compositing (numpy only)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gradcam_viewer.render import (
    COLORMAPS,
    OverlayStyle,
    colorbar,
    colormap_lut,
    composite,
    heat_rgba,
)


@pytest.fixture
def display():
    return (np.add.outer(np.arange(64), np.arange(80)) % 256).astype(np.uint8)


@pytest.fixture
def heat():
    yy, xx = np.mgrid[0:64, 0:80]
    return np.exp(-((yy - 32) ** 2 + (xx - 40) ** 2) / 200.0).astype(np.float32)


def test_luts_come_from_cmap():
    from cmap import Colormap

    for name in COLORMAPS:
        lut = colormap_lut(name)
        assert lut.shape == (256, 3) and lut.dtype == np.uint8
        ref = np.asarray(Colormap(COLORMAPS[name]).lut(256))[:, :3] * 255
        np.testing.assert_allclose(lut, ref, atol=0.51)
    inferno = colormap_lut("inferno")
    assert inferno[0].sum() < 30 and inferno[255].sum() > 600  # dark at 0, bright at 1


def test_opacity_zero_is_the_image(display, heat):
    out = composite(display, heat, OverlayStyle(opacity=0.0))
    np.testing.assert_array_equal(out, np.repeat(display[..., None], 3, -1))


def test_blend_formula_and_threshold(display, heat):
    style = OverlayStyle(opacity=0.5, threshold=0.3, colormap="jet")
    out = composite(display, heat, style).astype(float)
    lut = colormap_lut("jet").astype(float)
    colours = lut[np.rint(heat * 255).astype(int)]
    base = np.repeat(display[..., None], 3, -1).astype(float)
    expected = np.where((heat >= 0.3)[..., None], base * 0.5 + colours * 0.5, base)
    np.testing.assert_allclose(out, np.rint(expected), atol=1)
    below = heat < 0.3
    np.testing.assert_array_equal(out[below], base[below])


def test_contours_only_draw_lines():
    yy, xx = np.mgrid[0:200, 0:240]
    heat = np.exp(-((yy - 100) ** 2 + (xx - 120) ** 2) / 3000.0).astype(np.float32)
    drawn = heat_rgba(heat, OverlayStyle(contours=True, threshold=0.0))[..., 3] > 0
    filled = heat_rgba(heat, OverlayStyle(threshold=0.25))[..., 3] > 0
    assert 0 < drawn.sum() < filled.sum() / 4
    assert not drawn[100, 120]  # the peak's inside is not painted
    # every line pixel sits next to a level crossing
    levels = np.digitize(heat, [0.25, 0.5, 0.75])
    near = np.zeros_like(drawn)
    for dy in (-2, -1, 0, 1, 2):
        for dx in (-2, -1, 0, 1, 2):
            near |= np.roll(np.roll(levels, dy, 0), dx, 1) != levels
    assert near[drawn].all()


def test_colorbar_runs_from_one_at_top():
    bar = colorbar(100, 10, "inferno")
    lut = colormap_lut("inferno")
    np.testing.assert_array_equal(bar[0, 0], lut[255])
    np.testing.assert_array_equal(bar[-1, 0], lut[0])


def _reference_blend(display, heatmap, style):
    """The blend written out per pixel in float32 (the general path, before the table)."""
    from gradcam_viewer.render import effective_opacity

    base = np.repeat(display[..., None], 3, -1)
    rgba = heat_rgba(heatmap, style)
    a = (rgba[..., 3:4].astype(np.float32) / 255.0) * effective_opacity(style)
    out = base.astype(np.float32) * (1 - a) + rgba[..., :3].astype(np.float32) * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 40), w=st.integers(1, 40),
       opacity=st.floats(0.01, 1.0), threshold=st.floats(0.0, 1.0), contours=st.booleans(),
       colormap=st.sampled_from(sorted(COLORMAPS)), wide=st.booleans(),
       transposed=st.booleans())
def test_grey_table_blend_equals_the_per_pixel_formula(seed, h, w, opacity, threshold, contours,
                                                        colormap, wide, transposed):
    rng = np.random.default_rng(seed)
    display = rng.integers(0, 256, (h, w), dtype=np.uint8)
    heat = rng.uniform(-0.2 if wide else 0.0, 1.2 if wide else 1.0, (h, w)).astype(np.float32)
    if wide:  # values the engine never gives but the function must survive
        heat.flat[rng.integers(0, heat.size, 3)] = [np.nan, np.inf, -np.inf]
    if transposed:  # views in Fortran order, as a rotated image gives
        display, heat = display.T, heat.T
    style = OverlayStyle(opacity=opacity, threshold=threshold, contours=contours,
                         colormap=colormap)
    np.testing.assert_array_equal(composite(display, heat, style),
                                  _reference_blend(display, heat, style))

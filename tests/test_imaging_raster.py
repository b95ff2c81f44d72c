"""PNG, JPEG, TIFF, BMP through Pillow: bit depths, colour modes, EXIF, and the bomb guard."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from gradcam_viewer.imaging import ImageLoadError, load_image, to_display


@pytest.fixture
def grey8():
    return (np.add.outer(np.arange(40), np.arange(60)) * 2 % 256).astype(np.uint8)


def test_png_8bit_grey_shown_as_stored(tmp_path, grey8):
    Image.fromarray(grey8).save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert img.source_format == "PNG" and not img.is_color
    np.testing.assert_array_equal(to_display(img), grey8)


def test_png_16bit_grey_full_range(tmp_path):
    pix = (np.arange(50 * 40).reshape(50, 40) * 13 + 1000).astype(np.uint16)
    Image.fromarray(pix).save(tmp_path / "g16.png")
    img = load_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(img.pixels, pix)
    disp = to_display(img)
    lo, hi = int(pix.min()), int(pix.max())
    np.testing.assert_array_equal(disp, np.rint((pix - lo) / (hi - lo) * 255).astype(np.uint8))


def test_rgba_grey_becomes_grey(tmp_path, grey8):
    """Several NIH ChestX-ray14 PNGs are RGBA with identical channels and an opaque alpha."""
    rgba = np.dstack([grey8, grey8, grey8, np.full_like(grey8, 255)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    img = load_image(tmp_path / "rgba.png")
    assert not img.is_color
    np.testing.assert_array_equal(to_display(img), grey8)


def test_rgb_and_palette(tmp_path, grey8):
    rgb = np.dstack([grey8, 255 - grey8, grey8 // 2])
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    img = load_image(tmp_path / "rgb.png")
    assert img.is_color
    np.testing.assert_array_equal(to_display(img), rgb)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    pal = load_image(tmp_path / "p.png")
    assert pal.pixels.shape == (40, 60, 3)


@pytest.mark.parametrize("fmt,ext", [("JPEG", "jpg"), ("TIFF", "tif"), ("BMP", "bmp")])
def test_other_formats(tmp_path, grey8, fmt, ext):
    path = tmp_path / f"x.{ext}"
    Image.fromarray(grey8).save(path, format=fmt)
    img = load_image(path)
    assert img.source_format == fmt and img.pixels.shape == grey8.shape
    tolerance = 6 if fmt == "JPEG" else 0
    assert np.abs(to_display(img).astype(int) - grey8).max() <= tolerance


def test_tiff_16bit(tmp_path):
    pix = (np.arange(30 * 20).reshape(30, 20) * 50).astype(np.uint16)
    Image.fromarray(pix).save(tmp_path / "t16.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "t16.tif").pixels, pix)


def test_exif_orientation(tmp_path, grey8):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(grey8).save(tmp_path / "o.jpg", exif=exif, quality=100)
    img = load_image(tmp_path / "o.jpg")
    assert img.pixels.shape == (60, 40)
    expected = np.rot90(grey8, k=-1)
    assert np.abs(img.pixels - expected).mean() < 3


def _png_header_only(width, height):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
            + chunk(b"IEND", b""))


def test_decompression_bomb_is_a_clear_error(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(30000, 30000))
    with pytest.raises(ImageLoadError, match=r"'bomb.png'.*megapixels"):
        load_image(path)


def test_truncated_png(tmp_path, grey8):
    Image.fromarray(grey8).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="'cut.png'.*damaged or truncated"):
        load_image(tmp_path / "cut.png")


@pytest.mark.parametrize("content,reason", [
    (b"", "empty"),
    (b"hello, this is a text file\n" * 20, "not an image file"),
    (bytes(range(256)) * 8, "not an image file"),
])
def test_non_images(tmp_path, content, reason):
    path = tmp_path / "thing.dcm"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=reason):
        load_image(path)


def test_folder_and_missing(tmp_path):
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)
    with pytest.raises(ImageLoadError, match="does not exist"):
        load_image(tmp_path / "nope.png")

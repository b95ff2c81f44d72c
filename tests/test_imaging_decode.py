"""If pydicom or GDCM can decode it, it opens: VOI LUTs in every encoding, YBR 4:2:2, 12-bit
JPEG Extended, deep colour, 1-bit and float pixels, unknown spacing. pydicom is the oracle
wherever it decodes the file itself."""

import os
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from dicom_factory import make_dataset, voi_lut_item, write, write_encoded
from gradcam_viewer.imaging import ImageLoadError, load_image, model_pixels, to_display


@pytest.fixture
def ramp12():
    return (np.arange(64 * 48, dtype=np.uint16).reshape(64, 48) * 7 % 4096).astype(np.uint16)


def _pydicom_display(path, index):
    """pydicom's own VOI LUT on the dataset it read from the file, scaled to 0..255."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        values = apply_modality_lut(ds.pixel_array, ds)
        out = apply_voi_lut(values, ds, index=index, prefer_lut=True)
    bits = int(ds.VOILUTSequence[index].LUTDescriptor[2])
    return np.rint(out.astype(np.float64) * 255.0 / ((1 << bits) - 1)).astype(np.uint8)


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian,
                                    ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian,
                                    RLELossless, JPEG2000Lossless], ids=lambda s: s.name)
@pytest.mark.parametrize("vr", ["US", "OW"])
def test_voi_lut_sequence_in_every_encoding(tmp_path, ramp12, syntax, vr):
    """Implicit VR stores LUT Data without a VR (pydicom reads it back as OW bytes); OW needs
    the file's byte order, which only the original dataset knows."""
    big = syntax == ExplicitVRBigEndian
    sqrt = (np.sqrt(np.arange(3000) / 2999) * 1023).astype(np.uint16)  # 10-bit output
    steps = (np.arange(2048) // 256 * 36).astype(np.uint16)  # 8 bands, 8-bit output
    seq = Sequence([voi_lut_item(sqrt, 100, 10, vr, big, "SQRT"),
                    voi_lut_item(steps, 1000, 8, vr, big)])
    ds = make_dataset(ramp12, bits_stored=12, RescaleSlope=1, RescaleIntercept=-5,
                      VOILUTSequence=seq)
    path = write_encoded(tmp_path / f"lut_{vr}.dcm", ds, syntax)
    img = load_image(path)
    assert [w.lut_index for w in img.presets] == [0, 1]
    assert img.window.explanation == "SQRT" and img.presets[1].explanation == "VOI LUT 2"
    shown = to_display(img, img.presets[0])
    np.testing.assert_array_equal(shown, _pydicom_display(path, 0))
    np.testing.assert_array_equal(model_pixels(img), shown)  # the model sees the same
    assert np.unique(shown).size > 5
    # 8-bit LUT with 2048 entries: pydicom 3.0.2 indexes it in uint8 (wraps), so by hand
    index = np.clip(ramp12.astype(int) - 5 - 1000, 0, 2047)
    np.testing.assert_array_equal(to_display(img, img.presets[1]), steps[index].astype(np.uint8))


def test_voi_lut_by_hand_agrees_with_pydicom(tmp_path, ramp12):
    """The oracle itself checked once against the standard's rule (PS3.3 C.11.2.1.1)."""
    lut = (np.sqrt(np.arange(3000) / 2999) * 1023).astype(np.uint16)
    ds = make_dataset(ramp12, bits_stored=12,
                      VOILUTSequence=Sequence([voi_lut_item(lut, 100, 10, "OW")]))
    path = write_encoded(tmp_path / "lut.dcm", ds, ImplicitVRLittleEndian)
    by_hand = np.rint(lut[np.clip(ramp12.astype(int) - 100, 0, 2999)] * 255.0 / 1023.0)
    np.testing.assert_array_equal(_pydicom_display(path, 0), by_hand.astype(np.uint8))


def test_unusable_voi_luts_are_left_out(tmp_path, ramp12):
    """LUTs pydicom cannot apply (9 or 65535 bits per entry, no LUT Data) are not offered; a
    good LUT after them still shows its own values (pydicom's apply_voi_lut looks only at the
    first item to decide whether to use the sequence, so the loader calls apply_voi)."""
    good = (np.arange(4096) // 16).astype(np.uint16)
    no_data = voi_lut_item(good, 0, 8, "OW")
    del no_data.LUTData
    seq = Sequence([no_data, voi_lut_item(np.arange(512, dtype=np.uint16), 0, 9, "OW"),
                    voi_lut_item(good, 0, 65535, "OW"), voi_lut_item(good, 0, 8, "OW")])
    ds = make_dataset(ramp12, bits_stored=12, WindowCenter=2000, WindowWidth=4000,
                      VOILUTSequence=seq)
    img = load_image(write_encoded(tmp_path / "luts.dcm", ds, ImplicitVRLittleEndian))
    assert [w.lut_index for w in img.presets] == [None, 3]
    np.testing.assert_array_equal(to_display(img, img.presets[1]), good[ramp12].astype(np.uint8))
    assert to_display(img).std() > 5


def test_ybr_full_422_equals_pydicom():
    path = get_testdata_file("SC_ybr_full_422_uncompressed.dcm")
    ds = pydicom.dcmread(path)
    img = load_image(path)
    assert img.is_color and img.size == (100, 100)
    np.testing.assert_array_equal(img.pixels, ds.pixel_array)  # pydicom converts to RGB
    np.testing.assert_array_equal(to_display(img), ds.pixel_array)


@pytest.mark.parametrize("name", ["JPEG-lossy.dcm", "JPGExtended.dcm"])
def test_12bit_jpeg_extended_opens_through_gdcm(name):
    """pydicom's plugins refuse 12-bit JPEG Extended; GDCM's reader decodes it. The values are
    pydicom's own reference values (its pixel tests, decoded with libjpeg) and the same image
    stored as JPEG 2000 in pydicom's corpus (decoded with OpenJPEG)."""
    path = get_testdata_file(name)
    with pytest.raises(RuntimeError, match="all available plugins"):  # the premise
        _ = pydicom.dcmread(path).pixel_array
    img = load_image(path)
    assert img.size == (1024, 256) and "JPEG Extended" in img.source_format
    assert img.pixels[420, 140] == 244 and img.pixels[230, 120] == 95
    other = pydicom.dcmread(get_testdata_file("JPEG2000.dcm")).pixel_array.astype(float)
    assert np.corrcoef(img.pixels.ravel(), other.ravel())[0, 1] > 0.9
    assert img.pixels.max() <= 4095 and np.unique(to_display(img)).size > 100


def _jpeg_extended_with(tmp_path, stream: bytes | None = None, raw: bytes | None = None):
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(get_testdata_file("JPGExtended.dcm"))
    ds.PixelData = raw if raw is not None else encapsulate([stream])
    ds.save_as(tmp_path / "x.dcm")
    return tmp_path / "x.dcm"


def _first_frame(name="JPGExtended.dcm") -> bytes:
    from pydicom.encaps import generate_fragmented_frames

    ds = pydicom.dcmread(get_testdata_file(name))
    return b"".join(next(generate_fragmented_frames(ds.PixelData)))


def test_truncated_12bit_jpeg_is_a_clear_error(tmp_path):
    frame = _first_frame()
    for keep in (len(frame) // 20, len(frame) // 3, len(frame) - 100):
        with pytest.raises(ImageLoadError, match=r"could not be decoded \(GDCM") as info:
            load_image(_jpeg_extended_with(tmp_path, frame[:keep]))
        assert not info.value.unexpected


def test_gdcm_reader_only_for_wellformed_12bit_jpeg(tmp_path, monkeypatch):
    """GDCM can abort or stall on damaged files: a broken encapsulation, a stream that is not
    JPEG, or an 8-bit stream never reach it (the fuzz test once found a 5 s GDCM read)."""
    import gradcam_viewer.imaging.dicom as dicom

    calls = []
    monkeypatch.setattr(dicom, "decode_12bit_jpeg", lambda *a: calls.append(a) or 1 / 0)
    frame = _first_frame()
    broken = bytearray(pydicom.dcmread(get_testdata_file("JPGExtended.dcm")).PixelData)
    broken[8:12] = b"\x00\x00\x00\x00"  # the first item tag after the offset table
    eight_bit = bytearray(frame)
    eight_bit[frame.index(b"\xff\xc1") + 4] = 8  # SOF1 precision byte
    for path in (_jpeg_extended_with(tmp_path, raw=bytes(broken)),
                 _jpeg_extended_with(tmp_path, b"\x00" * 64 + frame),
                 _jpeg_extended_with(tmp_path, bytes(eight_bit))):
        with pytest.raises(ImageLoadError) as info:
            load_image(path)
        assert not info.value.unexpected and not calls
    with pytest.raises(ImageLoadError):  # the well-formed stream does reach it
        load_image(_jpeg_extended_with(tmp_path, frame))
    assert len(calls) == 1


def test_gdcm_abort_is_a_clear_error_and_the_next_file_opens(tmp_path):
    """Zeroed quantisation tables make GDCM's 12-bit JPEG codec throw an uncaught C++
    exception, which aborts the process it runs in: here the child, never the viewer."""
    frame = bytearray(_first_frame())
    frame[16:48] = bytes(32)
    start = time.perf_counter()
    with pytest.raises(ImageLoadError, match="GDCM stopped on damaged data") as info:
        load_image(_jpeg_extended_with(tmp_path, bytes(frame)))
    assert not info.value.unexpected
    img = load_image(get_testdata_file("JPGExtended.dcm"))  # a fresh GDCM process
    assert img.pixels[420, 140] == 244
    assert time.perf_counter() - start < 30


def test_jpeg_lossless_abort_stays_in_the_gdcm_process(tmp_path):
    """pydicom's GDCM plugin (the only bundled JPEG Lossless decoder) aborts the process it runs
    in on this damaged stream; it runs in the GDCM process, so the viewer gets a clear error."""
    from pydicom.encaps import encapsulate

    original = get_testdata_file("SC_rgb_jpeg_gdcm.dcm")
    ds = pydicom.dcmread(original)
    frame = bytearray(_first_frame("SC_rgb_jpeg_gdcm.dcm"))
    frame[36:52] = bytes(16)
    ds.PixelData = encapsulate([bytes(frame)])
    ds.save_as(tmp_path / "lossless.dcm")
    with pytest.raises(ImageLoadError, match="GDCM stopped on damaged data") as info:
        load_image(tmp_path / "lossless.dcm")
    assert not info.value.unexpected
    reference = pydicom.dcmread(original).pixel_array
    np.testing.assert_array_equal(load_image(original).pixels, reference)


def test_jpeg_precision_reads_the_frame_header():
    import io

    from PIL import Image

    from gradcam_viewer.imaging.gdcm_reader import jpeg_precision

    assert jpeg_precision(_first_frame()) == 12
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="JPEG")
    assert jpeg_precision(buf.getvalue()) == 8
    for junk in (b"", b"\xff\xd8", b"\xff\xd8\xff\xda\x00\x02", b"\x00" * 40,
                 b"\xff\xd8\xff\xe0\xff\xff" + b"\x00" * 20):
        assert jpeg_precision(junk) is None


@pytest.mark.parametrize("bits", [10, 12, 16])
def test_deep_colour_scaled_by_bits_stored_not_peak(tmp_path, bits):
    """A dim 16-bit colour image stays dim: full scale is 2**BitsStored - 1."""
    from pydicom.uid import RLELossless

    top = (1 << bits) - 1
    rgb = np.zeros((20, 30, 3), np.uint16)
    rgb[..., 0] = np.linspace(0, top // 4, 30).astype(np.uint16)  # a quarter of full scale
    rgb[..., 1] = top // 8
    ds = make_dataset(rgb, bits_stored=bits, photometric="RGB")
    ds.compress(RLELossless)  # the same rule for compressed colour
    img = load_image(write(tmp_path / "rgb.dcm", ds))
    expected = np.rint(rgb.astype(float) * 255.0 / top).astype(np.uint8)
    np.testing.assert_array_equal(to_display(img), expected)
    assert to_display(img)[..., 0].max() <= 64


def test_one_bit_pixels(tmp_path):
    """Bits Allocated 1 (packed): shown black and white, equal to pydicom's unpacking."""
    from pydicom.pixels import pack_bits

    bits = (np.add.outer(np.arange(24), np.arange(40)) // 5 % 2).astype(np.uint8)
    ds = make_dataset(bits.astype(np.uint8), bits_stored=8)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 1, 0
    ds.PixelData = pack_bits(bits)
    path = write(tmp_path / "one_bit.dcm", ds)
    assert len(pydicom.dcmread(path).PixelData) == 24 * 40 // 8
    img = load_image(path)
    np.testing.assert_array_equal(img.pixels, pydicom.dcmread(path).pixel_array)
    np.testing.assert_array_equal(to_display(img), bits * 255)


def test_one_bit_corpus_file_equals_pydicom():
    path = get_testdata_file("liver_1frame.dcm")
    ref = pydicom.dcmread(path).pixel_array
    img = load_image(path)
    np.testing.assert_array_equal(img.pixels, ref)
    np.testing.assert_array_equal(to_display(img), ref.astype(np.uint8) * 255)


@pytest.mark.parametrize("keyword,dtype", [("FloatPixelData", np.float32),
                                           ("DoubleFloatPixelData", np.float64)])
def test_float_pixel_data(tmp_path, keyword, dtype):
    """Float and Double Float Pixel Data open with pydicom's decoding; NaN shows as the lowest
    value instead of breaking the window."""
    values = np.linspace(-1.5, 2.5, 30 * 20).reshape(30, 20).astype(dtype)
    values[0, 0] = np.nan
    ds = make_dataset(np.zeros((30, 20), np.uint16))
    del ds.PixelData
    del ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    ds.BitsAllocated = 32 if dtype == np.float32 else 64
    setattr(ds, keyword, values.tobytes())
    path = write(tmp_path / "float.dcm", ds)
    np.testing.assert_array_equal(pydicom.dcmread(path).pixel_array, values)  # oracle
    img = load_image(path)
    expected = values.astype(np.float32)
    expected[0, 0] = expected[1:].min()
    np.testing.assert_array_equal(img.pixels[1:], expected[1:])
    assert img.pixels[0, 0] == np.float32(np.nanmin(values)) and not img.integral
    disp = to_display(img)
    assert disp[0, 1] == 0 and disp[-1, -1] == 255  # full range of the finite values


def test_short_float_pixel_data_is_refused(tmp_path):
    ds = make_dataset(np.zeros((30, 20), np.uint16))
    del ds.PixelData
    ds.BitsAllocated = 32
    ds.FloatPixelData = np.zeros(100, np.float32).tobytes()
    with pytest.raises(ImageLoadError, match="shorter than the header says") as info:
        load_image(write(tmp_path / "short_float.dcm", ds))
    assert not info.value.unexpected


@pytest.mark.parametrize("spacing,expected", [
    ([0.139, 0.14], (0.139, 0.14)), ([0, 0], None), (["0", "0.2"], None), ([-1, -1], None),
    (None, None)])
def test_zero_or_missing_spacing_is_unknown(tmp_path, ramp12, spacing, expected):
    extra = {} if spacing is None else {"PixelSpacing": spacing}
    img = load_image(write(tmp_path / "sp.dcm", make_dataset(ramp12, bits_stored=12, **extra)))
    assert img.pixel_spacing == expected
    assert img.spacing_label() == ("spacing unknown" if expected is None
                                   else "0.139 x 0.14 mm/px")


def test_gdcm_process_that_failed_to_start_is_not_kept(monkeypatch):
    """A start that fails (a script without `if __name__ == "__main__"` under spawn) is a
    clear error for that file; the next file starts the process again (it once kept the
    unstarted process, and every later file failed with 'can only join a started process')."""
    import multiprocessing

    import gradcam_viewer.imaging.gdcm_reader as reader

    real = multiprocessing.get_context

    class _Refusing:
        def __getattr__(self, name):
            return getattr(real("spawn"), name)

        def Process(self, *args, **kwargs):  # noqa: N802 - multiprocessing's own method name
            process = real("spawn").Process(*args, **kwargs)
            process.start = lambda: (_ for _ in ()).throw(RuntimeError("no bootstrap"))
            return process

    reader._SERVER._stop()  # a process left by an earlier test would be used as it is
    monkeypatch.setattr(reader.multiprocessing, "get_context", lambda _kind: _Refusing())
    with pytest.raises(ImageLoadError, match="no bootstrap") as info:
        load_image(get_testdata_file("JPGExtended.dcm"))
    assert not info.value.unexpected
    monkeypatch.setattr(reader.multiprocessing, "get_context", real)
    assert load_image(get_testdata_file("JPGExtended.dcm")).pixels[420, 140] == 244


def test_a_script_without_a_main_guard_is_not_run_again_by_the_gdcm_process(tmp_path):
    """spawn re-imports the caller's main module in the child: a script that opens a file
    only GDCM decodes, with no `if __name__ == "__main__":`, used to run itself a second time
    there (and the decode timed out after 30 s, or the child opened its own GUI)."""
    import subprocess
    import sys

    from gradcam_viewer.imaging.gdcm_reader import gdcm_available

    if not gdcm_available():
        pytest.skip("python-gdcm is not installed")
    script = tmp_path / "no_guard.py"
    script.write_text(
        "print('top level ran', flush=True)\n"
        "from pydicom.data import get_testdata_file\n"
        "from gradcam_viewer.imaging import load_image\n"
        "print('pixel', load_image(get_testdata_file('JPGExtended.dcm')).pixels[420, 140],"
        " flush=True)\n")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("top level ran") == 1, done.stdout
    assert "pixel 244" in done.stdout

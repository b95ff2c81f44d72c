"""DICOM loading: files written by the test, with values computed by hand, and pydicom's own
test corpus with pydicom itself as the oracle for shape."""

import importlib.util

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from dicom_factory import gdcm_decodes, make_dataset, pydicom_reference, write
from gradcam_viewer.imaging import ImageLoadError, Window, load_image, to_display
from gradcam_viewer.imaging.display import model_pixels


def linear_by_hand(x, c, w):
    """DICOM PS3.3 C.11.2.1.2.1 (LINEAR) to 0..255, written out scalar by scalar."""
    out = []
    for v in np.ravel(x).astype(float):
        if v <= c - 0.5 - (w - 1) / 2:
            y = 0.0
        elif v > c - 0.5 + (w - 1) / 2:
            y = 255.0
        else:
            y = ((v - (c - 0.5)) / (w - 1) + 0.5) * 255.0
        out.append(int(np.floor(y + 0.5)) if y - np.floor(y) != 0.5 else int(np.rint(y)))
    return np.array(out, dtype=np.uint8).reshape(np.shape(x))


@pytest.fixture
def ramp16():
    return (np.arange(64 * 48, dtype=np.uint16).reshape(64, 48) * 7 % 4096).astype(np.uint16)


def test_monochrome2_16bit_rescale_and_window(tmp_path, ramp16):
    ds = make_dataset(ramp16, bits_stored=12, RescaleSlope=2, RescaleIntercept=-1024,
                      WindowCenter=1000, WindowWidth=3000)
    img = load_image(write(tmp_path / "a.dcm", ds))
    np.testing.assert_array_equal(img.pixels, ramp16.astype(np.float32) * 2 - 1024)
    assert img.window == Window(1000.0, 3000.0, "", "LINEAR")
    assert not img.invert and img.n_frames == 1
    np.testing.assert_array_equal(to_display(img), linear_by_hand(img.pixels, 1000, 3000))


def test_monochrome1_is_inverted(tmp_path, ramp16):
    ds = make_dataset(ramp16, bits_stored=12, photometric="MONOCHROME1",
                      WindowCenter=2048, WindowWidth=4096)
    img = load_image(write(tmp_path / "m1.dcm", ds))
    assert img.invert
    np.testing.assert_array_equal(to_display(img), 255 - linear_by_hand(ramp16, 2048, 4096))
    np.testing.assert_array_equal(to_display(img, invert=False), linear_by_hand(ramp16, 2048, 4096))


def test_presentation_lut_inverse_on_monochrome2(tmp_path, ramp16):
    ds = make_dataset(ramp16, bits_stored=12, PresentationLUTShape="INVERSE",
                      WindowCenter=2048, WindowWidth=4096)
    assert load_image(write(tmp_path / "inv.dcm", ds)).invert
    # MONOCHROME1 with INVERSE is the standard's way of saying "MONOCHROME1": one inversion
    ds = make_dataset(ramp16, bits_stored=12, photometric="MONOCHROME1",
                      PresentationLUTShape="INVERSE")
    assert load_image(write(tmp_path / "m1inv.dcm", ds)).invert


def test_8bit_without_window_is_shown_as_stored(tmp_path):
    pix = np.arange(256, dtype=np.uint8).reshape(16, 16)
    img = load_image(write(tmp_path / "b8.dcm", make_dataset(pix, bits_stored=8)))
    np.testing.assert_array_equal(to_display(img), pix)


def test_signed_pixels(tmp_path):
    pix = np.linspace(-2000, 2000, 40 * 30).reshape(40, 30).astype(np.int16)
    ds = make_dataset(pix, bits_stored=16, signed=True, WindowCenter=0, WindowWidth=1000)
    img = load_image(write(tmp_path / "s.dcm", ds))
    np.testing.assert_array_equal(img.pixels, pix.astype(np.float32))
    np.testing.assert_array_equal(to_display(img), linear_by_hand(pix, 0, 1000))


def test_no_window_gets_full_range(tmp_path, ramp16):
    img = load_image(write(tmp_path / "nw.dcm", make_dataset(ramp16, bits_stored=12)))
    lo, hi = float(ramp16.min()), float(ramp16.max())
    disp = to_display(img)
    assert disp[ramp16 == lo].max() == 0 and disp[ramp16 == hi].min() == 255
    expected = np.rint((ramp16 - lo) / (hi - lo) * 255).astype(np.uint8)  # LINEAR_EXACT
    np.testing.assert_array_equal(disp, expected)


def test_several_presets_with_explanations(tmp_path, ramp16):
    ds = make_dataset(ramp16, bits_stored=12, WindowCenter=[400, 2000], WindowWidth=[800, 4000],
                      WindowCenterWidthExplanation=["LUNG", "BONE"])
    img = load_image(write(tmp_path / "p.dcm", ds))
    assert [(w.center, w.width, w.explanation) for w in img.presets] == [
        (400.0, 800.0, "LUNG"), (2000.0, 4000.0, "BONE")]
    assert img.window == img.presets[0]
    np.testing.assert_array_equal(to_display(img, img.presets[1]),
                                  linear_by_hand(ramp16, 2000, 4000))


def test_sigmoid_function(tmp_path, ramp16):
    ds = make_dataset(ramp16, bits_stored=12, WindowCenter=2000, WindowWidth=1000,
                      VOILUTFunction="SIGMOID")
    img = load_image(write(tmp_path / "sig.dcm", ds))
    expected = 255.0 / (1 + np.exp(-4 * (ramp16.astype(float) - 2000) / 1000))
    np.testing.assert_array_equal(to_display(img), np.rint(expected).astype(np.uint8))


def test_voi_lut_sequence(tmp_path, ramp16):
    first, n = 100, 3000
    lut = (np.sqrt(np.arange(n) / (n - 1)) * 1023).astype(np.uint16)  # 10-bit output
    item = Dataset()
    item.LUTDescriptor = [n, first, 10]
    item.add_new(0x00283006, "US", lut.tolist())  # LUT Data as US values
    item.LUTExplanation = "SQRT"
    ds = make_dataset(ramp16, bits_stored=12, VOILUTSequence=Sequence([item]))
    img = load_image(write(tmp_path / "lut.dcm", ds))
    assert img.window.lut_index == 0 and img.window.explanation == "SQRT"
    idx = np.clip(ramp16.astype(int) - first, 0, n - 1)
    expected = np.rint(lut[idx] * 255.0 / 1023.0).astype(np.uint8)
    np.testing.assert_array_equal(to_display(img), expected)


def test_multiframe_picks_frame(tmp_path):
    frames = np.stack([np.full((20, 30), v, np.uint16) for v in (10, 500, 900)])
    ds = make_dataset(frames, bits_stored=12)
    path = write(tmp_path / "mf.dcm", ds)
    img = load_image(path)
    assert img.n_frames == 3 and img.frame == 0 and img.pixels.shape == (20, 30)
    assert img.pixels[0, 0] == 10
    assert load_image(path, frame=2).pixels[5, 5] == 900
    with pytest.raises(ImageLoadError, match="frame 4 does not exist"):
        load_image(path, frame=3)


def test_no_preamble_no_file_meta(tmp_path, ramp16):
    ds = make_dataset(ramp16, bits_stored=12)
    del ds.file_meta
    ds.preamble = None
    path = tmp_path / "acrnema.img"
    ds.save_as(path, enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert path.read_bytes()[128:132] != b"DICM"
    np.testing.assert_array_equal(load_image(path).pixels, ramp16)


def test_format_is_told_by_content_not_extension(tmp_path, ramp16):
    path = write(tmp_path / "looks_like.png", make_dataset(ramp16, bits_stored=12))
    assert load_image(path).source_format.startswith("DICOM")


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless])
def test_compressed_round_trip(tmp_path, ramp16, syntax):
    ds = make_dataset(ramp16, bits_stored=12)
    ds.compress(syntax)
    img = load_image(write(tmp_path / "c.dcm", ds))
    np.testing.assert_array_equal(img.pixels, ramp16)
    assert syntax.name in img.source_format


def test_deflated(tmp_path, ramp16):
    ds = make_dataset(ramp16, bits_stored=12)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = tmp_path / "deflate.dcm"
    ds.save_as(path, enforce_file_format=True)
    np.testing.assert_array_equal(load_image(path).pixels, ramp16)


def test_jpeg_baseline_wrapped_from_pillow(tmp_path):
    import io

    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    pix = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))
    buf = io.BytesIO()
    Image.fromarray(pix).save(buf, format="JPEG", quality=95)
    ds = make_dataset(pix, bits_stored=8)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].VR = "OB"
    img = load_image(write(tmp_path / "jpg.dcm", ds))
    assert img.pixels.shape == (48, 64)
    assert np.abs(img.pixels - pix).max() <= 8  # lossy, but close


# --- bad DICOM: each a clear message naming the file ---------------------------------------

def test_structured_report_holds_no_image(tmp_path):
    from pydicom.uid import BasicTextSRStorage

    ds = make_dataset(np.zeros((2, 2), np.uint16))
    del ds.PixelData
    ds.SOPClassUID = BasicTextSRStorage
    with pytest.raises(ImageLoadError, match=r"'sr.dcm'.*Basic Text SR.*holds no image"):
        load_image(write(tmp_path / "sr.dcm", ds))


def test_short_pixel_data(tmp_path, ramp16):
    ds = make_dataset(ramp16, bits_stored=12)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    with pytest.raises(ImageLoadError, match="shorter than the header says"):
        load_image(write(tmp_path / "short.dcm", ds))


def test_absurd_dimensions_rejected_before_decoding(tmp_path):
    import time
    import tracemalloc

    ds = make_dataset(np.zeros((4, 4), np.uint16))
    ds.Rows, ds.Columns = 60000, 60000
    path = write(tmp_path / "huge.dcm", ds)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ImageLoadError, match="megapixels"):
        load_image(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.perf_counter() - start < 1.0 and peak < 50e6


def test_undecodable_compressed_data(tmp_path, ramp16):
    from pydicom.encaps import encapsulate

    ds = make_dataset(ramp16, bits_stored=12)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x13" * 300])
    ds["PixelData"].VR = "OB"
    with pytest.raises(ImageLoadError, match="could not be decoded"):
        load_image(write(tmp_path / "bad_j2k.dcm", ds))


def test_metadata_marks_identifying_fields(tmp_path, ramp16):
    ds = make_dataset(ramp16, bits_stored=12, PatientBirthDate="19010101", PatientSex="F",
                      PixelSpacing=[0.139, 0.14])
    img = load_image(write(tmp_path / "meta.dcm", ds))
    meta = img.metadata
    assert meta["PatientName"].identifying and meta["PatientID"].identifying
    assert meta["PatientBirthDate"].identifying and meta["SOPInstanceUID"].identifying
    assert not meta["PatientSex"].identifying and not meta["Modality"].identifying
    visible = img.visible_metadata()
    assert "PHANTOM^TEST" not in " ".join(visible.values()) and visible["Modality"] == "DX"
    assert img.pixel_spacing == (0.139, 0.14)


def test_model_sees_the_display_pixels(tmp_path, ramp16):
    ds = make_dataset(ramp16, bits_stored=12, photometric="MONOCHROME1", WindowCenter=1500,
                      WindowWidth=2000)
    img = load_image(write(tmp_path / "mp.dcm", ds))
    np.testing.assert_array_equal(model_pixels(img), to_display(img))


def test_lookup_table_equals_direct_windowing(tmp_path, ramp16):
    from gradcam_viewer.imaging.display import apply_window

    ds = make_dataset(ramp16, bits_stored=12, RescaleSlope=1, RescaleIntercept=-7)
    img = load_image(write(tmp_path / "lut_fast.dcm", ds))
    assert img.indexed_pixels is not None
    for window in (Window(300, 700), Window(2000, 1, function="LINEAR"),
                   Window(1000, 50, function="SIGMOID"), Window(0, 9000, function="LINEAR_EXACT")):
        direct = np.clip(np.rint(apply_window(img.pixels, window, None)), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(to_display(img, window), direct)


# --- decoders and pydicom's own test corpus ------------------------------------------------

def test_every_transfer_syntax_has_a_bundlable_decoder():
    from pydicom.pixels import get_decoder
    from pydicom.uid import (
        JPEG2000,
        JPEGBaseline8Bit,
        JPEGExtended12Bit,
        JPEGLossless,
        JPEGLosslessSV1,
        JPEGLSNearLossless,
    )

    assert importlib.util.find_spec("libjpeg") is None, "pylibjpeg-libjpeg is GPLv3: keep it out"
    for uid in (JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1,
                JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, RLELossless):
        assert get_decoder(uid).available_plugins, uid.name


def _pydicom_corpus():
    from pydicom.data import get_testdata_files

    return sorted(p for p in get_testdata_files() if not p.endswith((".json", ".txt")))


LOSSY = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
         "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.203"}


def _stored_bounds(ds, bits: int) -> tuple[float, float]:
    """The values Bits Stored allows, through the rescale: what the pixels must lie in."""
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    ends = sorted((lo * slope + intercept, hi * slope + intercept))
    return ends[0], ends[1]


@pytest.mark.parametrize("path", _pydicom_corpus(), ids=lambda p: p.rsplit("/", 1)[-1])
def test_pydicom_corpus(path):
    """Whatever pydicom decodes, or GDCM where pydicom's decoders fail on compressed data, must
    open, with pydicom's values and a display that spans the range Bits Stored allows; what
    neither decodes is a clear, expected error."""
    ref, ds = pydicom_reference(path)
    if ref is None:
        decodable = (ds is not None and "PixelData" in ds
                     and ds.file_meta.get("TransferSyntaxUID", pydicom.uid.UID("")).is_compressed
                     and gdcm_decodes(path))
        if not decodable:
            with pytest.raises(ImageLoadError) as info:
                load_image(path)
            assert not info.value.unexpected, str(info.value)
            return
        img = load_image(path)  # GDCM decodes it: it must open (values: test_jpeg_extended_*)
        assert img.size == (int(ds.Rows), int(ds.Columns))
        assert np.unique(to_display(img)).size > 1
        return
    img = load_image(path)  # pydicom decodes it: a refusal fails here
    disp = to_display(img)
    assert disp.dtype == np.uint8 and disp.shape[:2] == ref.shape[:2]
    assert np.isfinite(img.pixels).all()
    syntax = str(ds.file_meta.TransferSyntaxUID)
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8)
    if img.is_color:
        if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
            ref = pydicom.pixels.apply_color_lut(ref, ds)
            bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        expected = ref[..., :3].astype(np.float64) * (255.0 / (2.0 ** bits - 1) if bits > 8 else 1)
        tolerance = 0 if syntax not in LOSSY else 16  # another plugin may decode lossy data
        assert np.abs(img.pixels - expected).max() <= tolerance + 1e-3 * 255
        assert np.abs(disp.astype(float) - expected).max() <= tolerance + 0.5 + 1e-3 * 255
        return
    expected = pydicom.pixels.apply_modality_lut(ref, ds).astype(np.float64)
    if syntax in LOSSY:
        span = max(float(np.ptp(expected)), 1.0)
        assert np.abs(img.pixels - expected).mean() <= 0.02 * span
    else:
        np.testing.assert_allclose(img.pixels, expected, rtol=1e-6)
    if "ModalityLUTSequence" not in ds and ref.dtype.kind in "iu":
        lo, hi = _stored_bounds(ds, bits)
        assert lo <= img.pixels.min() and img.pixels.max() <= hi, (lo, hi)
    if "WindowWidth" not in ds and "VOILUTSequence" not in ds and ref.dtype.kind in "iu":
        # no window in the file: the display spans at least the share of the stored range the
        # data spans (1-bit data black and white, 12-bit data not squeezed into a few greys)
        lo, hi = _stored_bounds(ds, bits)
        share = float(np.ptp(expected)) / max(hi - lo, 1e-9)
        assert float(np.ptp(disp)) >= np.floor(255 * share) - 1, (np.ptp(disp), share)

"""Real radiographs from ../shared, the fuzz test, and read-only loading."""

import hashlib
import random
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import UID

from dicom_factory import (
    gdcm_decodes,
    make_dataset,
    pydicom_reference,
    voi_lut_item,
    write,
    write_encoded,
)
from gradcam_viewer.imaging import ImageLoadError, load_image, to_display

# Files the shared MANIFEST describes as deliberately broken (absent from some snapshots).
EXPECTED_BROKEN = {"pydicom966.dcm", "WG04_RG3_JPLY.dcm",
                   "INVALID_orthanc_oob-monochrome-65535.dcm"}


def _decodable(path: Path) -> bool:
    """pydicom decodes it, or GDCM does where pydicom's decoders fail on compressed data."""
    ref, ds = pydicom_reference(path)
    if ref is not None:
        return True
    return (ds is not None and "PixelData" in ds
            and ds.file_meta.get("TransferSyntaxUID", UID("")).is_compressed
            and gdcm_decodes(path))


def test_every_shared_file_loads(shared_data):
    """Every real radiograph that pydicom or GDCM decodes opens, with a non-flat display;
    the deliberately broken ones give a clear, expected error."""
    files = sorted(p for p in shared_data.rglob("*") if p.suffix.lower() in (".png", ".dcm"))
    assert len(files) >= 60
    dicoms = 0
    for path in files:
        if path.name in EXPECTED_BROKEN:
            with pytest.raises(ImageLoadError) as info:
                load_image(path)
            assert not info.value.unexpected, str(info.value)
            continue
        if path.suffix.lower() == ".dcm":
            assert _decodable(path), f"{path.name}: neither pydicom nor GDCM decodes it"
            dicoms += 1
        img = load_image(path)  # a refusal of a decodable file fails here
        disp = to_display(img)
        assert disp.dtype == np.uint8 and disp.shape[:2] == img.size
        assert disp.std() > 5, f"{path.name} displays as a flat image"
    assert dicoms >= 5


def test_shared_monochrome1_chests_are_inverted(shared_data):
    for name in ("barre_CR-MONO1-10-chest.dcm", "pydicom966_fixed.dcm", "WG04_RG1_JLSN.dcm"):
        img = load_image(shared_data / "cxr-dicom" / name)
        assert img.invert, name
        disp = to_display(img)
        h, w = disp.shape
        # bright mediastinum/spine in the centre, darker lungs either side
        centre = disp[h // 3: 2 * h // 3, w // 2 - w // 16: w // 2 + w // 16].mean()
        lungs = np.mean([disp[h // 3: 2 * h // 3, w // 4 - w // 16: w // 4 + w // 16].mean(),
                         disp[h // 3: 2 * h // 3, 3 * w // 4 - w // 16: 3 * w // 4 + w // 16].mean()])
        assert centre > lungs, name


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_files_are_unchanged_by_loading(tmp_path, shared_data):
    files = [p for p in sorted(shared_data.rglob("*.dcm"))][:8]
    files += sorted(shared_data.rglob("*.png"))[:3]
    before = {p: _sha(p) for p in files}
    for p in files:
        load_image(p)
        to_display(load_image(p))
    assert before == {p: _sha(p) for p in files}


def test_own_files_are_unchanged_by_loading(tmp_path):
    pix = (np.arange(100 * 80).reshape(100, 80) % 4096).astype(np.uint16)
    paths = [write(tmp_path / "a.dcm", make_dataset(pix, bits_stored=12))]
    Image.fromarray((pix // 16).astype(np.uint8)).save(tmp_path / "b.png")
    paths.append(tmp_path / "b.png")
    before = [(_sha(p), p.stat().st_mtime_ns) for p in paths]
    for p in paths:
        load_image(p)
    assert before == [(_sha(p), p.stat().st_mtime_ns) for p in paths]


# --- fuzz ------------------------------------------------------------------------------------

def _seeds(tmp_path: Path) -> list[bytes]:
    from pydicom.uid import JPEG2000Lossless, RLELossless

    rng = np.random.default_rng(0)
    pix = (rng.random((64, 48)) * 4000).astype(np.uint16)
    out = []
    for syntax in (None, RLELossless, JPEG2000Lossless):
        ds = make_dataset(pix, bits_stored=12, WindowCenter=2000, WindowWidth=4000)
        if syntax:
            ds.compress(syntax)
        out.append(write(tmp_path / "seed.dcm", ds).read_bytes())
    from pydicom.data import get_testdata_file

    for name in ("SC_rgb_jpeg_gdcm.dcm", "JPGExtended.dcm",  # JPEG lossless / 12-bit: GDCM
                 "SC_ybr_full_422_uncompressed.dcm", "liver_1frame.dcm"):
        out.append(Path(get_testdata_file(name)).read_bytes())
    from pydicom.sequence import Sequence
    from pydicom.uid import ImplicitVRLittleEndian

    lut = (np.arange(4000) // 16).astype(np.uint16)
    ds = make_dataset(pix, bits_stored=12,
                      VOILUTSequence=Sequence([voi_lut_item(lut, 0, 8, "OW")]))
    out.append(write_encoded(tmp_path / "seed.dcm", ds, ImplicitVRLittleEndian).read_bytes())
    ds = make_dataset(pix, bits_stored=12)
    del ds.PixelData, ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    ds.BitsAllocated = 32
    ds.FloatPixelData = pix.astype(np.float32).tobytes()
    out.append(write(tmp_path / "seed.dcm", ds).read_bytes())
    grey = (pix // 16).astype(np.uint8)
    for fmt in ("PNG", "JPEG", "TIFF", "BMP"):
        Image.fromarray(grey).save(tmp_path / "seed.img", format=fmt)
        out.append((tmp_path / "seed.img").read_bytes())
    return out


def _mutate(data: bytes, rnd: random.Random) -> bytes:
    kind = rnd.randrange(5)
    buf = bytearray(data)
    if kind == 0:  # truncate
        return bytes(buf[: rnd.randrange(len(buf))])
    if kind == 1:  # flip bytes
        for _ in range(rnd.randint(1, 12)):
            buf[rnd.randrange(len(buf))] = rnd.randrange(256)
        return bytes(buf)
    if kind == 2:  # absurd numbers where sizes usually live (DICOM rows/cols, PNG IHDR ...)
        for _ in range(rnd.randint(1, 3)):
            pos = rnd.randrange(max(1, min(len(buf) - 4, 1200)))
            buf[pos: pos + 4] = rnd.choice([b"\xff\xff\xff\xff", b"\xff\xff\x00\x00",
                                            b"\x00\x00\x00\x00", b"\xff\x7f\xff\x7f"])
        return bytes(buf)
    if kind == 3:  # insert or delete a block
        pos = rnd.randrange(len(buf))
        if rnd.random() < 0.5:
            return bytes(buf[:pos] + bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 64)))
                         + buf[pos:])
        return bytes(buf[:pos] + buf[pos + rnd.randint(1, 64):])
    return bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 2048)))  # noise


def test_fuzz_only_clear_errors_and_fast(tmp_path):
    from pydicom.data import get_testdata_file

    from gradcam_viewer.imaging.gdcm_reader import gdcm_process_starts

    seeds = _seeds(tmp_path)
    rnd = random.Random(20261126)
    path = tmp_path / "fuzz.dcm"
    cases, errors, slowest, restarts = 2100, 0, 0.0, 0
    load_image(get_testdata_file("JPGExtended.dcm"))  # start the GDCM process once, untimed
    for i in range(cases):
        path.write_bytes(_mutate(rnd.choice(seeds), rnd))
        starts = gdcm_process_starts()
        start = time.perf_counter()
        try:
            img = load_image(path)
            for window in img.presets or [None]:  # every preset the viewer offers
                to_display(img, window)
        except ImageLoadError as exc:
            errors += 1
            assert "fuzz.dcm" in str(exc)
            assert not exc.unexpected, f"case {i} took the catch-all path: {exc}"
        elapsed = time.perf_counter() - start
        if gdcm_process_starts() > starts:  # GDCM aborted on the last case: a new process
            restarts += 1
            assert elapsed < 5.0, f"case {i} took {elapsed:.2f} s (GDCM process restarted)"
            continue
        slowest = max(slowest, elapsed)
        assert elapsed < 1.0, f"case {i} took {elapsed:.2f} s"
    assert 0 < errors < cases  # both outcomes occurred: the mutations really were exercised
    print(f"fuzz: {cases} cases, {errors} clear errors, slowest {slowest * 1e3:.0f} ms, "
          f"{restarts} GDCM process restarts")


def test_unforeseen_exception_is_marked_unexpected(tmp_path, monkeypatch, caplog):
    """The catch-all path: a clear message for the user, the details in the log, and a mark
    that the fuzz test can see (so "only ImageLoadError comes out" is not true by construction)."""
    import gradcam_viewer.imaging.loader as loader

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    path = write(tmp_path / "ok.dcm", make_dataset(np.zeros((8, 8), np.uint16)))
    assert not hasattr(load_image(path), "unexpected")  # opens normally
    monkeypatch.setattr(loader, "load_dicom", broken)
    with pytest.raises(ImageLoadError, match=r"'ok.dcm'.*KeyError.*log") as info:
        load_image(path)
    assert info.value.unexpected
    assert "a bug" in caplog.text  # the traceback went to the log
    with pytest.raises(ImageLoadError) as expected:
        load_image(tmp_path / "missing.dcm")
    assert not expected.value.unexpected


def test_raster_bug_is_unexpected_but_damaged_raster_is_not(tmp_path, monkeypatch):
    """Only exceptions raised inside Pillow count as damaged data; one from our own code is
    the catch-all (so the fuzz test would see it)."""
    import gradcam_viewer.imaging.raster as raster

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes((tmp_path / "ok.png").read_bytes()[:40])
    with pytest.raises(ImageLoadError, match="damaged or truncated") as damaged:
        load_image(tmp_path / "bad.png")
    assert not damaged.value.unexpected

    def broken(im):
        raise TypeError("a bug of ours")

    monkeypatch.setattr(raster, "_pixels", broken)
    with pytest.raises(ImageLoadError) as bug:
        load_image(tmp_path / "ok.png")
    assert bug.value.unexpected

"""DICOM through pydicom: header checks before any decoding, then the frame, the modality LUT
and the file's VOI presets. Decoders are pydicom plugins chosen for bundling (LICENSES.md)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import get_frame
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from gradcam_viewer.imaging.decode_processes import DecodeCancelled, Offload
from gradcam_viewer.imaging.errors import ImageLoadError, raised_in, short_reason as _short
from gradcam_viewer.imaging.gdcm_reader import (
    JPEG_EXTENDED,
    decode_12bit_jpeg,
    decode_with_pydicom_gdcm,
    gdcm_available,
    jpeg_precision,
)
from gradcam_viewer.imaging.image import LoadedImage, MetaField, VoiLuts, Window
from gradcam_viewer.imaging.phi import is_identifying

log = logging.getLogger(__name__)

# Which plugin decodes which syntax in this process. GDCM aborts the whole process on some
# corrupt streams, so it is used only where nothing else decodes (JPEG lossless and 12-bit
# extended), and then only in its own child process (gdcm_reader.py).
PREFERRED_PLUGIN = {
    "1.2.840.10008.1.2.4.50": "pillow",  # JPEG baseline
    "1.2.840.10008.1.2.4.51": "pillow",  # JPEG extended, 8-bit (12-bit: gdcm_reader.py)
    "1.2.840.10008.1.2.4.80": "pyjpegls",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81": "pyjpegls",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90": "pylibjpeg",  # JPEG 2000 lossless (OpenJPEG)
    "1.2.840.10008.1.2.4.91": "pylibjpeg",  # JPEG 2000 (OpenJPEG)
    "1.2.840.10008.1.2.4.201": "pylibjpeg",  # HTJ2K lossless
    "1.2.840.10008.1.2.4.202": "pylibjpeg",  # HTJ2K lossless RPCL
    "1.2.840.10008.1.2.4.203": "pylibjpeg",  # HTJ2K
    "1.2.840.10008.1.2.5": "pydicom",  # RLE lossless (pure Python, cannot crash the process)
}
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
MAX_FRAMES = 100_000


class _Header(TypedDict):
    """What the header checks found, for decoding and building the image."""

    rows: int
    cols: int
    frames: int
    photometric: str
    syntax: UID
    bits_stored: int


def load_dicom(path: Path, frame: int, max_pixels: int, sniffed: bool,
               offload: Offload | None = None) -> LoadedImage:
    """`sniffed`: the file has the DICM marker; otherwise it must parse as a bare dataset.
    `offload`: large compressed frames are decoded in its processes (and may be given up)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = _read(path, sniffed)
        header = _check_header(path, ds, frame, max_pixels)
        arr = _decode(path, ds, frame, header, offload)
        return _build(path, ds, arr, frame, header)


def _read(path: Path, sniffed: bool) -> Dataset:
    try:
        ds = pydicom.dcmread(path, force=True, defer_size="512 KB")
    except InvalidDicomError as exc:
        raise ImageLoadError(path, "it is not a DICOM file.") from exc
    except Exception as exc:  # pydicom raises many kinds on damaged headers
        if not raised_in(exc, "pydicom"):
            raise
        log.debug("header parse failed for %s", path.name, exc_info=True)
        raise ImageLoadError(path, f"its DICOM header is damaged ({_short(exc)}).") from exc
    if not sniffed and not _plausible(ds):
        raise ImageLoadError(path, "it is not an image file this program knows "
                                   "(PNG, JPEG, TIFF, BMP or DICOM).")
    return ds


def _plausible(ds: Dataset) -> bool:
    """A preamble-less file is taken as DICOM only if it has the elements of an image or SOP."""
    tags = set(ds.keys())  # the parsed tags: reading them cannot fail
    image = {0x00280010, 0x00280011} <= {int(t) for t in tags}
    return image or 0x00080016 in {int(t) for t in tags}


def _check_header(path: Path, ds: Dataset, frame: int, max_pixels: int) -> _Header:
    if not any(k in ds for k in PIXEL_KEYWORDS):
        raise ImageLoadError(path, f"it is a DICOM {_sop_name(ds)} and holds no image.")
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.BitsAllocated)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        stored = int(ds.get("BitsStored", bits) or bits)
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    except Exception as exc:
        raise ImageLoadError(path, "its image header (rows, columns, bits) is missing or "
                                   f"invalid ({_short(exc)}).") from exc
    if rows <= 0 or cols <= 0:
        raise ImageLoadError(path, f"its image size {cols} x {rows} is not valid.")
    if rows * cols > max_pixels:
        raise ImageLoadError(path, f"the image is {cols} x {rows} pixels "
                                   f"({rows * cols / 1e6:.0f} megapixels), more than the "
                                   f"{max_pixels / 1e6:.0f} megapixels this program opens.")
    if bits not in (1, 8, 16, 32, 64) or spp not in (1, 3, 4):
        raise ImageLoadError(path, f"{bits} bits allocated with {spp} samples per pixel is not "
                                   "a valid image layout.")
    if not 1 <= frames <= MAX_FRAMES:
        raise ImageLoadError(path, f"its number of frames ({frames}) is not valid.")
    if not 0 <= frame < frames:
        raise ImageLoadError(path, f"it has {frames} frame(s); frame {frame + 1} does not exist.")
    _ensure_transfer_syntax(ds)
    syntax = ds.file_meta.TransferSyntaxUID
    if not syntax.is_transfer_syntax:
        raise ImageLoadError(path, f"its transfer syntax '{str(syntax)[:64]}' is not one this "
                                   "program knows: the header is damaged or uses a private "
                                   "encoding.")
    keyword = next(k for k in PIXEL_KEYWORDS if k in ds)
    if not syntax.is_compressed:
        try:  # pydicom's own rule: YBR_FULL_422 is subsampled, 1-bit data is packed
            expected = get_expected_length(ds, unit="bytes")
            have = len(ds[keyword].value)
        except Exception as exc:
            raise ImageLoadError(path, f"its pixel data cannot be read ({_short(exc)}).") from exc
        if have < expected:
            raise ImageLoadError(path, f"the pixel data is shorter than the header says "
                                       f"({have:,} of {expected:,} bytes): the file is "
                                       "truncated or damaged.")
    return {"rows": rows, "cols": cols, "frames": frames, "photometric": photometric,
            "syntax": syntax, "bits_stored": stored if 1 <= stored <= bits else bits}


def _ensure_transfer_syntax(ds: Dataset) -> None:
    """Old ACR-NEMA files have no file meta: use the encoding the parser found."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit, _little = getattr(ds, "original_encoding", (True, True))
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian


def _decode(path: Path, ds: Dataset, frame: int, header: _Header,
            offload: Offload | None = None) -> np.ndarray:
    syntax: UID = header["syntax"]
    index = frame if header["frames"] > 1 else None
    plugin = _plugin_for(syntax)
    gdcm_last = _gdcm_may_decode(syntax, header)
    if syntax.is_compressed and not plugin:
        if "gdcm" in _available_plugins(syntax):  # pydicom's GDCM plugin, in GDCM's process
            return _checked(path, _in_gdcm_process(path, syntax, lambda: decode_with_pydicom_gdcm(
                str(path), index)), header)
        if not gdcm_last:
            raise ImageLoadError(path, f"no decoder for '{syntax.name}' is installed.")
    try:
        if offload is not None and offload.takes(syntax.is_compressed, plugin,
                                                 header["rows"] * header["cols"]):
            arr = offload.pool.decode(path, index, plugin, offload.cancelled)
        else:
            ds.pixel_array_options(index=index, decoding_plugin=plugin)
            arr = ds.pixel_array
    except MemoryError as exc:
        raise ImageLoadError(path, "there is not enough memory to decode it.") from exc
    except (KeyboardInterrupt, SystemExit, DecodeCancelled):
        raise
    except BaseException as exc:  # Rust decoders panic with a BaseException (pyo3)
        log.debug("decode failed for %s (%s)", path.name, syntax, exc_info=True)
        stream = _12bit_jpeg_frame(ds, frame, header) if gdcm_last else None
        if stream is None:
            kind = syntax.name if syntax.is_compressed else "uncompressed"
            raise ImageLoadError(path, f"its {kind} pixel data could not be decoded "
                                       f"({_short(exc)}).") from exc
        signed = _get(ds, "PixelRepresentation", 0) == 1
        arr = _in_gdcm_process(path, syntax, lambda: decode_12bit_jpeg(
            stream, header["rows"], header["cols"], signed))
    return _checked(path, arr, header)


def _checked(path: Path, arr: np.ndarray, header: _Header) -> np.ndarray:
    expected = (header["rows"], header["cols"])
    if tuple(arr.shape[:2]) != expected:
        raise ImageLoadError(path, f"the decoded image is {arr.shape[:2]}, not the "
                                   f"{expected} its header declares.")
    return arr


def _gdcm_may_decode(syntax: UID, header: _Header) -> bool:
    """GDCM only for what no plugin decodes: grey JPEG Extended with 12-bit samples."""
    return (str(syntax) == JPEG_EXTENDED and header["bits_stored"] > 8
            and header["photometric"].startswith("MONOCHROME") and gdcm_available())


def _12bit_jpeg_frame(ds: Dataset, frame: int, header: _Header) -> bytes | None:
    """The frame's JPEG stream if pydicom can unwrap it (a damaged encapsulation is refused
    here, not given to GDCM) and its frame header declares 12-bit samples."""
    try:
        stream = get_frame(ds.PixelData, frame, number_of_frames=header["frames"])
    except Exception:  # noqa: BLE001 - damaged encapsulation, of any kind: not given to GDCM
        return None
    return stream if jpeg_precision(stream) == 12 else None


def _in_gdcm_process(path: Path, syntax: UID, decode: Callable[[], np.ndarray]) -> np.ndarray:
    try:
        return decode()
    except MemoryError as exc:
        raise ImageLoadError(path, "there is not enough memory to decode it.") from exc
    except Exception as exc:
        log.debug("GDCM failed for %s (%s)", path.name, syntax, exc_info=True)
        raise ImageLoadError(path, f"its {syntax.name} pixel data could not be decoded "
                                   f"({_short(exc)}).") from exc


def _available_plugins(syntax: UID) -> tuple[str, ...]:
    """Installed decoders for `syntax`; none when pydicom has no decoder for it at all."""
    from pydicom.pixels import get_decoder

    try:
        return tuple(get_decoder(syntax).available_plugins)
    except NotImplementedError:  # pydicom has no decoder class for this syntax
        return ()


def _plugin_for(syntax: UID) -> str:
    """The plugin pydicom runs in this process: the preferred one, else any installed one that
    is not GDCM (GDCM runs only in its own process); "" when none is left."""
    available = _available_plugins(syntax)
    wanted = PREFERRED_PLUGIN.get(str(syntax), "")
    if wanted in available:
        return wanted
    return next((p for p in available if p != "gdcm"), "")


def _build(path: Path, ds: Dataset, arr: np.ndarray, frame: int,
           header: _Header) -> LoadedImage:
    photometric = header["photometric"]
    stored_integral = arr.dtype.kind in "iub"
    presets: list[Window]
    luts: VoiLuts | None
    if photometric == "PALETTE COLOR":
        try:
            rgb = apply_color_lut(arr, ds)
        except Exception as exc:
            raise ImageLoadError(path, f"its colour palette is damaged ({_short(exc)}).") from exc
        pixels = _to_8bit_range(rgb, _palette_bits(ds, arr))
        window, presets, luts, integral = None, [], None, True
    elif arr.ndim == 3:
        pixels = _to_8bit_range(arr[..., :3], header["bits_stored"])
        window, presets, luts, integral = None, [], None, True
    else:
        try:
            pixels = _finite(apply_modality_lut(arr, ds))
        except Exception as exc:
            raise ImageLoadError(path, "its rescale or modality LUT is damaged "
                                       f"({_short(exc)}).") from exc
        integral = stored_integral and bool(np.all(pixels == np.round(pixels))) \
            if pixels.dtype.kind == "f" else stored_integral
        presets, luts = _presets(path, ds, pixels)
        window = presets[0] if presets else None
    shape = _get(ds, "PresentationLUTShape", "IDENTITY")
    invert = photometric == "MONOCHROME1" or (photometric == "MONOCHROME2" and shape == "INVERSE")
    image = LoadedImage(
        path=path,
        pixels=np.ascontiguousarray(pixels, dtype=np.float32),
        source_format=f"DICOM, {header['syntax'].name}",
        window=window,
        presets=presets,
        invert=invert,
        n_frames=header["frames"],
        frame=frame,
        pixel_spacing=_spacing(ds),
        metadata=_metadata(ds),
        integral=integral,
        voi_luts=luts,
    )
    if image.window is None and not image.is_color:
        image.window = _default_window(ds, image, header["bits_stored"])
        image.presets = [image.window]
    for keyword in PIXEL_KEYWORDS:  # the dataset may live on for its VOI LUTs: free the bytes
        if keyword in ds:
            delattr(ds, keyword)
    return image


def _finite(pixels: np.ndarray) -> np.ndarray:
    """Float Pixel Data may hold NaN or infinities: shown as the lowest / highest finite value."""
    if pixels.dtype.kind != "f" or np.isfinite(pixels).all():
        return pixels
    finite = pixels[np.isfinite(pixels)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    replaced: np.ndarray = np.nan_to_num(pixels, nan=lo, posinf=hi, neginf=lo)
    return replaced


def _to_8bit_range(rgb: np.ndarray, bits: int) -> np.ndarray:
    """Colour is shown as stored: 0 .. 2**bits - 1 scaled to 0 .. 255 (not by its peak)."""
    if bits <= 8:
        return rgb
    scaled: np.ndarray = rgb.astype(np.float64) * (255.0 / float((1 << bits) - 1))
    return scaled


def _palette_bits(ds: Dataset, rgb: np.ndarray) -> int:
    try:
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
    except Exception:  # noqa: BLE001 - absent or damaged (any kind): the data's own depth
        bits = 0
    return bits if bits in (8, 16) else (8 if rgb.dtype.itemsize == 1 else 16)


def _default_window(ds: Dataset, image: LoadedImage, bits_stored: int) -> Window:
    """No VOI in the file: data of up to 8 bits without rescale is shown as stored (like a PNG,
    1-bit data as black and white); anything else gets the full range of its values."""
    from gradcam_viewer.imaging.display import full_range_window, stored_values

    plain = "RescaleSlope" not in ds and "ModalityLUTSequence" not in ds
    if plain and bits_stored <= 8 and image.value_range[0] >= 0:
        return stored_values(float((1 << bits_stored) - 1))
    return full_range_window(image)


def _presets(path: Path, ds: Dataset, pixels: np.ndarray) -> tuple[list[Window],
                                                                    VoiLuts | None]:
    """The file's windows, then its VOI LUTs. A VOI LUT is applied later with the original
    dataset (its file meta and encoding tell pydicom how to unpack OW LUT Data), so each is
    tried here once and left out, with a log line, if pydicom cannot apply it."""
    presets: list[Window] = []
    function = str(_get(ds, "VOILUTFunction", "LINEAR") or "LINEAR").upper()
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        function = "LINEAR"
    centers = _multi(_get(ds, "WindowCenter"))
    widths = _multi(_get(ds, "WindowWidth"))
    notes = [str(x) for x in _multi(_get(ds, "WindowCenterWidthExplanation"))]
    for i, (c, w) in enumerate(zip(centers, widths, strict=False)):  # extra values: no pair
        center, width = _number(c), _number(w)
        if center is not None and width is not None and width > 0:
            presets.append(Window(center, width, notes[i] if i < len(notes) else "", function))
    seq = _get(ds, "VOILUTSequence")
    if not seq or not isinstance(seq, pydicom.Sequence):
        return presets, None
    bits: list[int] = []
    for i, item in enumerate(seq):
        try:
            entries, first, depth = (int(v) for v in item.LUTDescriptor)
            if "LUTData" not in item or depth not in (8, 10, 11, 12, 13, 14, 15, 16):
                raise ValueError(f"no LUT Data or {depth} bits per entry")
            if depth == 8:  # pydicom (3.0.2) indexes 8-bit LUTs in uint8, which wraps after
                item.LUTDescriptor = [entries, first, 16]  # 255 entries: same values in uint16
            probe = np.array([np.floor(pixels.min()), np.ceil(pixels.max())], dtype=np.int64)
            apply_voi(probe, ds, index=i)
            note = str(item.get("LUTExplanation", "") or f"VOI LUT {i + 1}")
        except Exception as exc:  # noqa: BLE001 - damaged LUT, of any kind: left out, said in the log
            log.info("VOI LUT %d of %s left out: %s", i + 1, path.name, _short(exc))
            bits.append(0)
            continue
        bits.append(depth)
        presets.append(Window(0.0, 0.0, note, "LUT", lut_index=i))
    has_lut = any(b for b in bits)
    return presets, VoiLuts(ds, tuple(bits)) if has_lut else None


def _get(ds: Dataset, keyword: str, default: object = None) -> object:
    """An optional attribute; a damaged one (pydicom raises when converting it) counts as absent."""
    try:
        return ds.get(keyword, default)
    except Exception:
        log.debug("damaged %s ignored", keyword, exc_info=True)
        return default


def _multi(value: object) -> list[object]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return list(value)
    return [value]


def _number(value: object) -> float | None:
    """A DS/IS value (or its text) as a float; None when it is not a number."""
    if not isinstance(value, (int, float, str, bytes)):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _spacing(ds: Dataset) -> tuple[float, float] | None:
    """(row, column) spacing in mm; None (unknown) when absent, zero, negative or not a number."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = _multi(_get(ds, keyword))
        if len(values) == 2:
            row, col = _number(values[0]), _number(values[1])
            if row is not None and col is not None and row > 0 and col > 0 \
                    and np.isfinite(row) and np.isfinite(col):
                return row, col
    return None


def _metadata(ds: Dataset) -> dict[str, MetaField]:
    fields: dict[str, MetaField] = {}
    for tag in list(ds.keys()):
        if tag.group in (0x7FE0, 0xFFFE) or tag.group == 0x0002:
            continue
        try:
            elem = ds[tag]
            keyword = elem.keyword or str(tag)
            if elem.VR == "SQ":
                value = f"[{len(elem.value)} item(s)]"
            elif elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
                value = f"[{len(elem.value or b'')} bytes]"
            else:
                value = str(elem.value)
            if len(value) > 200:
                value = value[:197] + "..."
            fields[keyword] = MetaField(keyword, elem.name, value,
                                        is_identifying(keyword, elem.VR, tag.is_private))
        except Exception:  # noqa: BLE001 - a damaged element (any kind) is left out of the list
            continue
    return fields


def _sop_name(ds: Dataset) -> str:
    uid = _get(ds, "SOPClassUID")  # a damaged element counts as absent
    if uid is None:
        return "file"
    name = UID(str(uid)).name
    return f"'{name}' object" if name and name != str(uid) else "object"

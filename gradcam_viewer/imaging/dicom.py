"""DICOM through pydicom: header checks before any decoding, then the frame, the modality LUT
and the file's VOI presets. Decoders are pydicom plugins chosen for bundling (LICENSES.md)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, UID

from gradcam_viewer.imaging.errors import ImageLoadError
from gradcam_viewer.imaging.image import LoadedImage, MetaField, Window
from gradcam_viewer.imaging.phi import is_identifying

log = logging.getLogger(__name__)

# Which plugin decodes which syntax. GDCM aborts the whole process on some corrupt streams,
# so it is used only where nothing else decodes (JPEG lossless and 12-bit extended).
PREFERRED_PLUGIN = {
    "1.2.840.10008.1.2.4.50": "pillow",  # JPEG baseline
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


def load_dicom(path: Path, frame: int, max_pixels: int, sniffed: bool) -> LoadedImage:
    """`sniffed`: the file has the DICM marker; otherwise it must parse as a bare dataset."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = _read(path, sniffed)
        header = _check_header(path, ds, frame, max_pixels)
        arr = _decode(path, ds, frame, header)
        return _build(path, ds, arr, frame, header)


def _read(path: Path, sniffed: bool) -> Dataset:
    try:
        ds = pydicom.dcmread(path, force=True, defer_size="512 KB")
    except InvalidDicomError as exc:
        raise ImageLoadError(path, "it is not a DICOM file.") from exc
    except Exception as exc:  # pydicom raises many kinds on damaged headers
        log.debug("header parse failed for %s", path.name, exc_info=True)
        raise ImageLoadError(path, f"its DICOM header is damaged ({_short(exc)}).") from exc
    if not sniffed and not _plausible(ds):
        raise ImageLoadError(path, "it is not an image file this program knows "
                                   "(PNG, JPEG, TIFF, BMP or DICOM).")
    return ds


def _plausible(ds: Dataset) -> bool:
    """A preamble-less file is taken as DICOM only if it has the elements of an image or SOP."""
    try:
        tags = set(ds.keys())
    except Exception:
        return False
    image = {0x00280010, 0x00280011} <= {int(t) for t in tags}
    return image or 0x00080016 in {int(t) for t in tags}


def _check_header(path: Path, ds: Dataset, frame: int, max_pixels: int) -> dict[str, Any]:
    if not any(k in ds for k in PIXEL_KEYWORDS):
        raise ImageLoadError(path, f"it is a DICOM {_sop_name(ds)} and holds no image.")
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.BitsAllocated)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
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
    if not syntax.is_compressed:
        expected = (rows * cols * spp * bits * frames + 7) // 8
        try:
            have = len(ds.PixelData)
        except Exception as exc:
            raise ImageLoadError(path, f"its pixel data cannot be read ({_short(exc)}).") from exc
        if have < expected:
            raise ImageLoadError(path, f"the pixel data is shorter than the header says "
                                       f"({have:,} of {expected:,} bytes): the file is "
                                       "truncated or damaged.")
    return {"rows": rows, "cols": cols, "frames": frames, "photometric": photometric,
            "syntax": syntax}


def _ensure_transfer_syntax(ds: Dataset) -> None:
    """Old ACR-NEMA files have no file meta: use the encoding the parser found."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit, _little = getattr(ds, "original_encoding", (True, True))
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian


def _decode(path: Path, ds: Dataset, frame: int, header: dict[str, Any]) -> np.ndarray:
    syntax: UID = header["syntax"]
    if syntax.is_compressed and not _available_plugins(syntax):
        raise ImageLoadError(path, f"no decoder for '{syntax.name}' is installed.")
    try:
        ds.pixel_array_options(index=frame if header["frames"] > 1 else None,
                               decoding_plugin=_plugin_for(syntax))
        arr = ds.pixel_array
    except MemoryError as exc:
        raise ImageLoadError(path, "there is not enough memory to decode it.") from exc
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # Rust decoders panic with a BaseException (pyo3)
        log.debug("decode failed for %s (%s)", path.name, syntax, exc_info=True)
        kind = syntax.name if syntax.is_compressed else "uncompressed"
        raise ImageLoadError(path, f"its {kind} pixel data could not be decoded "
                                   f"({_short(exc)}).") from exc
    expected = (header["rows"], header["cols"])
    if tuple(arr.shape[:2]) != expected:
        raise ImageLoadError(path, f"the decoded image is {arr.shape[:2]}, not the "
                                   f"{expected} its header declares.")
    return arr


def _available_plugins(syntax: UID) -> tuple[str, ...]:
    """Installed decoders for `syntax`; none when pydicom has no decoder for it at all."""
    from pydicom.pixels import get_decoder

    try:
        return tuple(get_decoder(syntax).available_plugins)
    except Exception:  # pydicom raises for syntaxes it has no decoder class for
        return ()


def _plugin_for(syntax: UID) -> str:
    wanted = PREFERRED_PLUGIN.get(str(syntax), "")
    return wanted if wanted and wanted in _available_plugins(syntax) else ""


def _build(path: Path, ds: Dataset, arr: np.ndarray, frame: int,
           header: dict[str, Any]) -> LoadedImage:
    photometric = header["photometric"]
    stored_integral = arr.dtype.kind in "iub"
    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(arr, ds)
        window, presets, luts, integral = None, [], None, True
    elif arr.ndim == 3:
        pixels = arr[..., :3]
        window, presets, luts, integral = None, [], None, True
    else:
        pixels = apply_modality_lut(arr, ds)
        integral = stored_integral and bool(np.all(pixels == np.round(pixels))) \
            if pixels.dtype.kind == "f" else stored_integral
        presets, luts = _presets(ds)
        window = presets[0] if presets else None
    shape = ds.get("PresentationLUTShape", "IDENTITY")
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
        image.window = _default_window(ds, image)
        image.presets = [image.window]
    return image


def _default_window(ds: Dataset, image: LoadedImage) -> Window:
    """No VOI in the file: 8-bit data without rescale is shown as stored (like a PNG);
    anything else gets the full range of its values."""
    from gradcam_viewer.imaging.display import full_range_window, stored_values

    plain = "RescaleSlope" not in ds and "ModalityLUTSequence" not in ds
    if plain and int(ds.get("BitsStored", 16) or 16) <= 8 and image.value_range[0] >= 0:
        return stored_values()
    return full_range_window(image)


def _presets(ds: Dataset) -> tuple[list[Window], Dataset | None]:
    presets: list[Window] = []
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        function = "LINEAR"
    centers = _multi(ds.get("WindowCenter"))
    widths = _multi(ds.get("WindowWidth"))
    notes = [str(x) for x in _multi(ds.get("WindowCenterWidthExplanation"))]
    for i, (c, w) in enumerate(zip(centers, widths)):
        try:
            c, w = float(c), float(w)
        except (TypeError, ValueError):
            continue
        if w > 0:
            presets.append(Window(c, w, notes[i] if i < len(notes) else "", function))
    luts = None
    seq = ds.get("VOILUTSequence")
    if seq:
        luts = Dataset()
        luts.VOILUTSequence = seq
        luts.PhotometricInterpretation = "MONOCHROME2"
        for i, item in enumerate(seq):
            if "LUTDescriptor" in item and "LUTData" in item:
                note = str(item.get("LUTExplanation", "") or f"VOI LUT {i + 1}")
                presets.append(Window(0.0, 0.0, note, "LUT", lut_index=i))
    return presets, luts


def _multi(value: Any) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return list(value)
    return [value]


def _spacing(ds: Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        try:
            if value is not None and len(value) == 2:
                return float(value[0]), float(value[1])
        except (TypeError, ValueError):
            continue
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
        except Exception:
            continue
    return fields


def _sop_name(ds: Dataset) -> str:
    uid = ds.get("SOPClassUID")
    if uid is None:
        return "file"
    name = UID(str(uid)).name
    return f"'{name}' object" if name and name != str(uid) else "object"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]

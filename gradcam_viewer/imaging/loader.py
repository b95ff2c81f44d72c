"""One entry point for every file a radiologist may drop on the window."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from gradcam_viewer.imaging.decode_processes import DecodeCancelled, Offload
from gradcam_viewer.imaging.dicom import load_dicom
from gradcam_viewer.imaging.errors import ImageLoadError, raised_in
from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.imaging.raster import load_raster, sniff_raster

log = logging.getLogger(__name__)

MAX_PIXELS = 100_000_000  # per frame; checked from the header, before anything is decoded
MAX_FILE_BYTES = 4 << 30


def load_image(path: str | os.PathLike[str], frame: int = 0,
               offload: Offload | None = None) -> LoadedImage:
    """Load one frame. Raises only `ImageLoadError`, whose message names file and reason, or
    DecodeCancelled when `offload` was given and said the frame was no longer wanted
    (large compressed frames are then decoded in its processes: decode_processes.py)."""
    p = Path(path)
    try:
        return _load(p, frame, offload)
    except ImageLoadError:
        raise
    except MemoryError as exc:
        raise ImageLoadError(p, "there is not enough memory to open it.") from exc
    except (KeyboardInterrupt, SystemExit, DecodeCancelled):
        raise
    except BaseException as exc:  # a bug or a library surprise (even a Rust panic): clear text
        log.warning("unexpected failure opening %s", p.name, exc_info=True)
        raise ImageLoadError(p, f"it could not be read ({type(exc).__name__}; details are in "
                                "the log).", unexpected=True) from exc


def _load(p: Path, frame: int, offload: Offload | None) -> LoadedImage:
    if not p.exists():
        raise ImageLoadError(p, "the file does not exist.")
    if p.is_dir():
        raise ImageLoadError(p, "it is a folder, not an image file.")
    size = p.stat().st_size
    if size == 0:
        raise ImageLoadError(p, "the file is empty.")
    if size > MAX_FILE_BYTES:
        raise ImageLoadError(p, f"the file is {size / 2**30:.1f} GB, larger than this program "
                                "opens.")
    try:
        with open(p, "rb") as f:
            head = f.read(132)
    except OSError as exc:
        raise ImageLoadError(p, f"it cannot be read ({exc.strerror or exc}).") from exc
    if head[128:132] == b"DICM":
        return load_dicom(p, frame, MAX_PIXELS, sniffed=True, offload=offload)
    raster = sniff_raster(head)
    if raster:
        try:
            return load_raster(p, frame, MAX_PIXELS)
        except ImageLoadError:
            raise
        except Exception as exc:
            if not raised_in(exc, "PIL"):  # not Pillow refusing the data: a bug of ours
                raise
            log.debug("raster decode failed for %s", p.name, exc_info=True)
            raise ImageLoadError(p, f"the {raster} data is damaged or truncated "
                                    f"({type(exc).__name__}).") from exc
    if size < 8 or head.strip(b"\x00") == b"":
        raise ImageLoadError(p, "it is not an image file this program knows (PNG, JPEG, TIFF, "
                                "BMP or DICOM).")
    return load_dicom(p, frame, MAX_PIXELS, sniffed=False, offload=offload)

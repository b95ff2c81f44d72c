"""GDCM (BSD) in a child process: the syntaxes only GDCM decodes, never in the viewer's process.

GDCM decodes JPEG Lossless (pydicom's GDCM plugin) and 12-bit JPEG Extended (its own codec, which
pydicom's plugin refuses and no other bundled decoder reads). The fuzz test found that GDCM
aborts the whole process (an uncaught C++ exception) on some damaged JPEG 2000, JPEG Lossless and
12-bit JPEG streams, so GDCM runs only in a separate, long-lived process: an abort there becomes a
clear error here, and the next file starts a fresh process. It also found `gdcm.ImageReader`
spending 5-11 s re-parsing damaged headers, so 12-bit JPEG reaches GDCM as the frame's stream,
after pydicom has parsed the file and unwrapped the frame and the stream's frame header
(`jpeg_precision`) has declared 12-bit samples.

The child is the decoding processes' own (`decode_processes._Child`), started with
multiprocessing's "spawn", without the caller's main module: spawn would otherwise run a script's
top-level code again in the child (a script without `if __name__ == "__main__":` that opened a
JPEG Lossless file ran itself a second time and the decode timed out). The frozen entry point
calls `freeze_support`.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable

import numpy as np

from gradcam_viewer.imaging.decode_processes import ChildDecodeError, _Child, frame_here

JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"  # Process 2 & 4; GDCM for its 12-bit samples
TIMEOUT_S = 30.0  # the first call also starts the process


class GdcmReadError(Exception):
    """GDCM could not decode the frame; the message is plain text for the user."""


def gdcm_available() -> bool:
    try:
        import gdcm  # noqa: F401 - imported only to learn whether it imports
    except ImportError:
        return False
    return True


def gdcm_process_starts() -> int:
    """How many GDCM processes were started (the first use, then one after each abort)."""
    return _SERVER.starts


def jpeg_precision(stream: bytes) -> int | None:
    """Sample precision from a JPEG stream's frame header (SOFn), None if it has none."""
    if not stream.startswith(b"\xff\xd8"):
        return None
    pos = 2
    for _ in range(64):  # a few tables precede the frame header
        if pos + 5 > len(stream) or stream[pos] != 0xFF:
            return None
        marker = stream[pos + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return stream[pos + 4]
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        pos += 2 + int.from_bytes(stream[pos + 2: pos + 4], "big")
    return None


def decode_12bit_jpeg(stream: bytes, rows: int, cols: int, signed: bool) -> np.ndarray:
    """One grey 12-bit JPEG frame as int16/uint16 [rows, cols], decoded in the GDCM process."""
    data = _SERVER.request(_decode_here, stream, rows, cols, signed)
    if data.nbytes != rows * cols * 2:
        raise GdcmReadError("GDCM returned a frame of the wrong size")
    arr = data.view(np.int16 if signed else np.uint16).reshape(rows, cols)
    if signed:  # sign-extend from 12 bits (a no-op if GDCM already did)
        arr = ((arr.astype(np.int32) << 20) >> 20).astype(np.int16)
    return arr


def decode_with_pydicom_gdcm(path: str, frame: int | None) -> np.ndarray:
    """pydicom's own decoding with its GDCM plugin (JPEG Lossless), in the GDCM process."""
    return _SERVER.request(frame_here, path, frame, "gdcm")


def _decode_here(stream: bytes, rows: int, cols: int, signed: bool) -> np.ndarray:
    """In the child: GDCM's codec on an in-memory frame (what pydicom's GDCM plugin does, at
    12 bits), the frame's bytes."""
    import gdcm

    gdcm.Trace.WarningOff()
    gdcm.Trace.ErrorOff()
    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(stream)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetValue(fragments.__ref__())
    image = gdcm.Image()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((cols, rows, 1))
    image.SetDataElement(element)
    pi = gdcm.PhotometricInterpretation.GetPIType("MONOCHROME2")
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(pi))
    ts = gdcm.TransferSyntax.GetTSType("1.2.840.10008.1.2.4.51")
    image.SetTransferSyntax(gdcm.TransferSyntax(ts))
    image.SetPixelFormat(gdcm.PixelFormat(1, 16, 12, 11, 1 if signed else 0))
    buffer = image.GetBuffer()  # GDCM hands back char* as str, None on failure
    if buffer is None:
        raise GdcmReadError("GDCM could not decode the JPEG data")
    return np.frombuffer(buffer.encode("utf-8", "surrogateescape"), np.uint8)


class _Server:
    """One child process, started on first use and again after it dies; one request at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self.starts = 0

    def request(self, function: Callable[..., np.ndarray], *args: object) -> np.ndarray:
        with self._lock:
            if self._child is None or not self._child.process.is_alive():
                self._stop()
                self.starts += 1
                # "spawn": no fork of a process with Qt threads (only a started child is kept)
                self._child = _Child.start(multiprocessing.get_context("spawn"),
                                           "gradcam-viewer-gdcm")
            try:
                return self._child.ask(function, args, timeout=TIMEOUT_S)
            except ChildDecodeError as exc:
                raise GdcmReadError(str(exc)) from None
            except TimeoutError:
                self._stop()
                raise GdcmReadError(f"GDCM took more than {TIMEOUT_S:.0f} s") from None
            except (EOFError, OSError) as exc:  # the process died: GDCM aborted on this data
                self._stop()
                raise GdcmReadError("GDCM stopped on damaged data") from exc
            except BaseException:  # an interrupt, no memory for the pixels: the reply is unread
                self._stop()
                raise

    def _stop(self) -> None:
        if self._child is not None:
            self._child.stop()
        self._child = None


_SERVER = _Server()

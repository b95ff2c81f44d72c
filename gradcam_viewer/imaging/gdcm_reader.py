"""GDCM (BSD) in a child process: the syntaxes only GDCM decodes, never in the viewer's process.

GDCM decodes JPEG Lossless (pydicom's GDCM plugin) and 12-bit JPEG Extended (its own codec, which
pydicom's plugin refuses and no other bundled decoder reads). The fuzz test found that GDCM
aborts the whole process (an uncaught C++ exception) on some damaged JPEG 2000, JPEG Lossless and
12-bit JPEG streams, so GDCM runs only in a separate, long-lived process: an abort there becomes a
clear error here, and the next file starts a fresh process. It also found `gdcm.ImageReader`
spending 5-11 s re-parsing damaged headers, so 12-bit JPEG reaches GDCM as the frame's stream,
after pydicom has parsed the file and unwrapped the frame and the stream's frame header
(`jpeg_precision`) has declared 12-bit samples.

The child is started with multiprocessing's "spawn", without the caller's main module: it needs
only this module, and spawn would otherwise run a script's top-level code again in the child (a
script without `if __name__ == "__main__":` that opened a JPEG Lossless file ran itself a second
time and the decode timed out). The frozen entry point calls `freeze_support`.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import cast

import numpy as np

from gradcam_viewer.imaging.errors import short_reason

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
    data = cast(bytes, _SERVER.request(("jpeg12", stream, rows, cols, signed)))  # _decode_here
    if len(data) != rows * cols * 2:
        raise GdcmReadError("GDCM returned a frame of the wrong size")
    arr = np.frombuffer(data, np.int16 if signed else np.uint16).reshape(rows, cols).copy()
    if signed:  # sign-extend from 12 bits (a no-op if GDCM already did)
        arr = ((arr.astype(np.int32) << 20) >> 20).astype(np.int16)
    return arr


def decode_with_pydicom_gdcm(path: str, frame: int | None) -> np.ndarray:
    """pydicom's own decoding with its GDCM plugin (JPEG Lossless), in the GDCM process."""
    data, dtype, shape = cast(tuple[bytes, str, tuple[int, ...]],  # what _pydicom_here returns
                              _SERVER.request(("pydicom", path, frame)))
    return np.frombuffer(data, dtype).reshape(shape).copy()


def _pydicom_here(path: str, frame: int | None) -> tuple[bytes, str, tuple[int, ...]]:
    import warnings

    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
        ds.pixel_array_options(index=frame, decoding_plugin="gdcm")
        arr = ds.pixel_array
    return arr.tobytes(), arr.dtype.str, arr.shape


def _decode_here(stream: bytes, rows: int, cols: int, signed: bool) -> bytes:
    """GDCM's codec on an in-memory frame (what pydicom's GDCM plugin does, at 12 bits)."""
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
    encoded: bytes = buffer.encode("utf-8", "surrogateescape")
    return encoded


def _serve(conn: Connection) -> None:
    """The child process: decode requests until the parent closes the pipe. GDCM and libjpeg
    print to stderr (and an abort prints the C++ exception): the parent reports instead."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    except OSError:
        pass
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        kind, *args = request
        try:
            conn.send(("ok", (_decode_here if kind == "jpeg12" else _pydicom_here)(*args)))
        except GdcmReadError as exc:
            conn.send(("error", str(exc)))
        except MemoryError:
            conn.send(("error", "there is not enough memory to decode it"))
        except Exception as exc:  # noqa: BLE001 - the parent turns this into a clear message
            conn.send(("error", short_reason(exc)))


class _Server:
    """One child process, started on first use and again after it dies; one request at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self.starts = 0

    def request(self, request: tuple[object, ...]) -> object:
        with self._lock:
            if self._process is None or not self._process.is_alive() or self._conn is None:
                self._conn = self._start()
            try:
                self._conn.send(request)
                if not self._conn.poll(TIMEOUT_S):
                    self._stop()
                    raise GdcmReadError(f"GDCM took more than {TIMEOUT_S:.0f} s")
                kind, payload = self._conn.recv()
            except (EOFError, OSError) as exc:  # the process died: GDCM aborted on this data
                self._stop()
                raise GdcmReadError("GDCM stopped on damaged data") from exc
        if kind != "ok":
            raise GdcmReadError(payload)
        return payload

    def _start(self) -> Connection:
        self._stop()
        self.starts += 1
        context = multiprocessing.get_context("spawn")  # no fork of a process with Qt threads
        conn, child = context.Pipe()
        process = context.Process(target=_serve, args=(child,), daemon=True,
                                  name="gradcam-viewer-gdcm")
        try:
            with _main_module_hidden():
                process.start()
        finally:
            child.close()
        self._conn, self._process = conn, process  # only a started process is kept
        return conn

    def _stop(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
        if self._process is not None:
            self._process.join(5)
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """While spawn records what the child must import first: nothing of the caller's `__main__`
    (spawn reads its `__spec__` and `__file__` inside `Process.start`, on this thread)."""
    main = sys.modules.get("__main__")
    if main is None or getattr(sys, "frozen", False):
        yield
        return
    saved: dict[str, object] = {key: main.__dict__[key] for key in ("__spec__", "__file__")
                                if key in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


_SERVER = _Server()

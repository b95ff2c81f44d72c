"""Large compressed frames decoded in child processes, so that a decode holds neither the
viewer's GIL nor its threads, and can be given up.

pylibjpeg-openjpeg holds the GIL for a whole decode (it reads the stream through Python
callbacks): a 14 MP JPEG 2000 radiograph takes 1-3 s, during which the window and the
explanation of the image on screen would stand still (`benchmarks/bench_reading.py --gil`
measures it). Here pydicom decodes the frame, with the plugin the viewer would use, in a
long-lived child process; the caller waits without the GIL and hands on the pixels. A decode
whose caller says it is no longer wanted (`cancelled()`) is given up at once: its process is
killed and a fresh one started in the background, so paging fast never waits for a file it
has left. A child that dies on damaged data becomes a clear error here (as GDCM's does,
`gdcm_reader.py`, whose children these are not: GDCM's syntaxes still go there).

Children are forked from multiprocessing's fork server where there is one (else spawned),
with nothing of the caller's `__main__`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradcam_viewer.imaging.errors import short_reason
from gradcam_viewer.imaging.gdcm_reader import main_module_hidden

if TYPE_CHECKING:  # ForkServerContext does not exist on Windows
    from multiprocessing.context import ForkServerContext, SpawnContext

log = logging.getLogger(__name__)

MIN_PIXELS = 2_000_000  # per frame: smaller frames decode in a few ms, in the caller's thread
TIMEOUT_S = 120.0
POLL_S = 0.02  # how often a waiting caller asks whether the decode is still wanted
OFFLOADED_PLUGINS = ("pylibjpeg", "pyjpegls", "pillow", "pydicom")  # not GDCM: its own process


class DecodeCancelled(Exception):  # noqa: N818 - a signal to stop, not an error for the user
    """The caller no longer wanted the frame: the decode was given up."""


class ChildDecodeError(Exception):
    """The child could not decode the frame; the message is plain text for the user."""


def _never() -> bool:
    return False


@dataclass(frozen=True)
class Offload:
    """How `load_image` may decode: large compressed frames in `pool`, given up once
    `cancelled()` says so (then `load_image` raises DecodeCancelled)."""

    pool: DecodePool
    cancelled: Callable[[], bool] = field(default=_never)

    def takes(self, compressed: bool, plugin: str, pixels: int) -> bool:
        return compressed and plugin in OFFLOADED_PLUGINS and pixels >= self.pool.min_pixels


_Reply = tuple[str, str, tuple[int, ...]]  # ("ok", dtype, shape) or ("error", reason, ())


@dataclass
class _Child:
    process: BaseProcess
    conn: Connection


class DecodePool:
    """Up to `keep` idle children, started on first use; any number busy at once."""

    def __init__(self, keep: int = 2, min_pixels: int = MIN_PIXELS) -> None:
        self.keep = keep
        self.min_pixels = min_pixels
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self._closed = False
        self.starts = 0  # children started (the first use, then one for each given up or dead)
        self.given_up = 0  # decodes given up because their caller no longer wanted them

    def decode(self, path: Path, index: int | None, plugin: str,
               cancelled: Callable[[], bool] = _never) -> np.ndarray:
        """The frame `index` (None: the only one) of `path`, as pydicom's `pixel_array` with
        `plugin`. Raises DecodeCancelled, or ChildDecodeError with a reason for the user."""
        if cancelled():
            raise DecodeCancelled
        child = self._take()
        try:
            child.conn.send((str(path), index, plugin))
            reply = self._wait(child, cancelled)  # a child given up or timed out is gone
            if reply[0] == "ok":
                _, dtype, shape = reply
                arr = np.empty(shape, np.dtype(dtype))
                child.conn.recv_bytes_into(arr.data.cast("B"))
        except (EOFError, OSError) as exc:  # the child died: the decoder stopped on this data
            self._discard(child)
            raise ChildDecodeError("the decoder stopped on damaged data") from exc
        except (DecodeCancelled, ChildDecodeError):
            raise
        except BaseException:  # no memory for the pixels, an interrupt: the reply is unread
            self._discard(child)
            raise
        self._give_back(child)
        if reply[0] != "ok":
            raise ChildDecodeError(reply[1])  # the reason
        return arr

    def warm(self) -> None:
        """Start the idle children now, in the background (the first large decode then finds
        one ready)."""
        threading.Thread(target=self._refill, name="decode-warm", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for child in idle:
            _stop(child)

    # ------------------------------------------------------------------ children ----
    def _wait(self, child: _Child, cancelled: Callable[[], bool]) -> _Reply:
        deadline = time.monotonic() + TIMEOUT_S
        while not child.conn.poll(POLL_S):
            if not child.process.is_alive():
                raise EOFError
            if cancelled():
                self.given_up += 1
                self._discard(child)
                raise DecodeCancelled
            if time.monotonic() > deadline:
                self._discard(child)
                raise ChildDecodeError(f"decoding took more than {TIMEOUT_S:.0f} s")
        reply: _Reply = child.conn.recv()
        return reply

    def _take(self) -> _Child:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.process.is_alive():
                    return child
                _stop(child)
        return self._start()

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.keep:
                self._idle.append(child)
                return
        _stop(child)

    def _discard(self, child: _Child) -> None:
        """Kill `child` (given up, dead or confused) and start a replacement meanwhile."""
        _stop(child)
        if not self._closed:
            self.warm()

    def _refill(self) -> None:
        while True:
            with self._lock:
                if self._closed or len(self._idle) >= self.keep:
                    return
            try:
                child = self._start()
            except Exception:
                log.warning("a decoding process could not be started", exc_info=True)
                return
            self._give_back(child)

    def _start(self) -> _Child:
        context = _context()
        conn, child_end = context.Pipe()
        process = context.Process(target=_serve, args=(child_end,), daemon=True,
                                  name="gradcam-viewer-decode")
        try:
            with main_module_hidden():
                process.start()
        finally:
            child_end.close()
        with self._lock:
            self.starts += 1
        return _Child(process, conn)


def _context() -> SpawnContext | ForkServerContext:
    """"forkserver" where there is one (a child in ~10 ms, forked from a clean process that has
    the decoders imported: paging fast replaces a child per key), else "spawn" (Windows, the
    packaged program). Never a plain fork of this process: it has Qt threads."""
    if getattr(sys, "frozen", False) or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "pydicom", "pydicom.pixels", "pylibjpeg",
                                    "openjpeg", "rle", "jpeg_ls"])
    return context


def _stop(child: _Child) -> None:
    if child.process.is_alive():
        child.process.kill()
    child.process.join(5)
    child.conn.close()


def _serve(conn: Connection) -> None:
    """The child: decode requests until the parent closes the pipe. Decoders may print to
    stderr; the parent reports instead."""
    import warnings

    import pydicom

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    except OSError:
        pass
    while True:
        try:
            path, index, plugin = conn.recv()
        except (EOFError, OSError):
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, force=True)
                ds.pixel_array_options(index=index, decoding_plugin=plugin)
                arr = np.ascontiguousarray(ds.pixel_array)
        except MemoryError:
            conn.send(("error", "there is not enough memory to decode it", ()))
            continue
        except Exception as exc:  # noqa: BLE001 - the parent turns this into a clear message
            conn.send(("error", short_reason(exc), ()))
            continue
        conn.send(("ok", arr.dtype.str, arr.shape))
        conn.send_bytes(arr.data.cast("B"))

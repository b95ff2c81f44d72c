"""Large compressed frames decoded in child processes, so that a decode holds neither the
viewer's GIL nor its threads, and can be given up.

pylibjpeg-openjpeg holds the GIL for a whole decode (it reads the stream through Python
callbacks): a 14 MP JPEG 2000 radiograph takes 1-3 s, during which the window and the
explanation of the image on screen would stand still (`benchmarks/bench_reading.py --gil`
measures it). Here pydicom decodes the frame, with the plugin the viewer would use, in a
long-lived child process; the caller waits without the GIL and hands on the pixels. A decode
whose caller says it is no longer wanted (`cancelled()`) is given up at once: its process is
killed and a fresh one started in the background, so paging fast never waits for a file it
has left. A child that dies on damaged data becomes a clear error here.

The child process itself (`_Child`: start, one request at a time, stop; `_serve`, its loop) is
also GDCM's (`gdcm_reader.py` keeps one such child for the syntaxes only GDCM decodes): a
request names a function of this package and its arguments, and the child answers with the
array it returns, or the reason it failed.

Pool children are forked from multiprocessing's fork server where there is one (else spawned),
with nothing of the caller's `__main__`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradcam_viewer.imaging.errors import short_reason

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
    """A long-lived child process that runs `_serve`: one request at a time."""

    process: BaseProcess
    conn: Connection

    @classmethod
    def start(cls, context: SpawnContext | ForkServerContext, name: str) -> _Child:
        conn, child_end = context.Pipe()
        process = context.Process(target=_serve, args=(child_end,), daemon=True, name=name)
        try:
            with main_module_hidden():
                process.start()
        finally:
            child_end.close()
        return cls(process, conn)

    def ask(self, function: Callable[..., np.ndarray], args: tuple[object, ...],
            cancelled: Callable[[], bool] = _never, timeout: float = TIMEOUT_S) -> np.ndarray:
        """`function(*args)` run in the child (a function of this package: it is sent by
        name). Raises ChildDecodeError with the child's reason (the child is fine), or, after
        which the child must be stopped: DecodeCancelled (`cancelled()` said so while it
        ran), TimeoutError, EOFError or OSError (it died, as a decoder that aborts on damaged
        data makes it)."""
        self.conn.send((function, args))
        deadline = time.monotonic() + timeout
        while not self.conn.poll(POLL_S):
            if not self.process.is_alive():
                raise EOFError
            if cancelled():
                raise DecodeCancelled
            if time.monotonic() > deadline:
                raise TimeoutError
        reply: _Reply = self.conn.recv()
        if reply[0] != "ok":
            raise ChildDecodeError(reply[1])  # the reason
        _, dtype, shape = reply
        arr = np.empty(shape, np.dtype(dtype))
        self.conn.recv_bytes_into(arr.data.cast("B"))
        return arr

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class DecodePool:
    """Up to `keep` idle children, started on first use; any number busy at once.
    `start_method`: "spawn" (as on Windows and in the packaged program), or None: the fork
    server where there is one."""

    def __init__(self, keep: int = 2, min_pixels: int = MIN_PIXELS,
                 start_method: str | None = None) -> None:
        self.keep = keep
        self.min_pixels = min_pixels
        self.start_method = start_method
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self._refilling = False  # a refill is under way (one at a time)
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
            arr = child.ask(frame_here, (str(path), index, plugin), cancelled)
        except ChildDecodeError:
            self._give_back(child)
            raise
        except DecodeCancelled:
            self.given_up += 1
            self._discard(child)
            raise
        except TimeoutError as exc:
            self._discard(child)
            raise ChildDecodeError(f"decoding took more than {TIMEOUT_S:.0f} s") from exc
        except (EOFError, OSError) as exc:  # the child died: the decoder stopped on this data
            self._discard(child)
            raise ChildDecodeError("the decoder stopped on damaged data") from exc
        except BaseException:  # no memory for the pixels, an interrupt: the reply is unread
            self._discard(child)
            raise
        self._give_back(child)
        return arr

    def warm(self) -> None:
        """Start the idle children now, in the background (the first large decode then finds
        one ready); nothing if a refill is under way already."""
        with self._lock:
            if self._closed or self._refilling:
                return
            self._refilling = True
        threading.Thread(target=self._refill, name="decode-warm", daemon=True).start()

    def close(self) -> None:
        """Stop the idle children; no child is started from now on (a decode given up is
        not replaced)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for child in idle:
            child.stop()

    # ------------------------------------------------------------------ children ----
    def _take(self) -> _Child:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.process.is_alive():
                    return child
                child.stop()
        return self._start()

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.keep:
                self._idle.append(child)
                return
        child.stop()

    def _discard(self, child: _Child) -> None:
        """Kill `child` (given up, dead or confused) and start a replacement meanwhile."""
        child.stop()
        self.warm()

    def _refill(self) -> None:
        while True:
            with self._lock:  # the check and the end of the refill in one step
                if self._closed or len(self._idle) >= self.keep:
                    self._refilling = False
                    return
            try:
                child = self._start()
            except Exception as exc:
                if not isinstance(exc, DecodeCancelled):  # that: closed meanwhile
                    log.warning("a decoding process could not be started", exc_info=True)
                with self._lock:
                    self._refilling = False
                return
            self._give_back(child)

    def _start(self) -> _Child:
        with self._lock:
            if self._closed:
                raise DecodeCancelled  # closing: no child any more
        child = _Child.start(_context(self.start_method), "gradcam-viewer-decode")
        with self._lock:
            self.starts += 1
        return child


def _context(start_method: str | None = None) -> SpawnContext | ForkServerContext:
    """"forkserver" where there is one (a child in ~10 ms, forked from a clean process that has
    the decoders imported: paging fast replaces a child per key), else "spawn" (Windows, the
    packaged program; or when `start_method` says so). Never a plain fork of this process: it
    has Qt threads."""
    if (start_method == "spawn" or getattr(sys, "frozen", False)
            or "forkserver" not in multiprocessing.get_all_start_methods()):
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "pydicom", "pydicom.pixels", "pylibjpeg",
                                    "openjpeg", "rle", "jpeg_ls"])
    return context


def frame_here(path: str, index: int | None, plugin: str) -> np.ndarray:
    """In a child: pydicom's decoding of a frame with `plugin`."""
    import warnings

    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
        ds.pixel_array_options(index=index, decoding_plugin=plugin)
        return np.ascontiguousarray(ds.pixel_array)


def _serve(conn: Connection) -> None:
    """The child: run requests until the parent closes the pipe. Decoders (GDCM, libjpeg)
    may print to stderr, and an abort prints the C++ exception: the parent reports instead.
    Nothing of a request is kept once answered (an idle child holds no frame)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    except OSError:
        pass
    while True:
        try:
            function, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            arr = function(*args)
        except MemoryError:
            conn.send(("error", "there is not enough memory to decode it", ()))
            continue
        except Exception as exc:  # noqa: BLE001 - the parent turns this into a clear message
            conn.send(("error", short_reason(exc), ()))
            continue
        conn.send(("ok", arr.dtype.str, arr.shape))
        conn.send_bytes(arr.data.cast("B"))
        del arr


@contextmanager
def main_module_hidden() -> Iterator[None]:
    """While spawn records what the child must import first: nothing of the caller's `__main__`
    (spawn reads its `__spec__` and `__file__` inside `Process.start`, on this thread)."""
    main = sys.modules.get("__main__")
    if main is None or getattr(sys, "frozen", False):
        yield
        return
    with _HIDING:  # children start from several threads
        saved: dict[str, object] = {key: main.__dict__[key] for key in ("__spec__", "__file__")
                                    if key in main.__dict__}
        main.__dict__.pop("__file__", None)
        main.__dict__["__spec__"] = None
        try:
            yield
        finally:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


_HIDING = threading.Lock()

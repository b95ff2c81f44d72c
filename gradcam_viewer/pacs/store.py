"""Where retrieved objects land: a study's folder (in the per-user cache, or the folder
`gradcam-viewer retrieve --out` names), written one object at a time, atomically, under the
SOP Instance UID once it is checked to be one; objects of another study (or series) than the
one asked for are refused. The cache keeps one folder per Study Instance UID, readable by the
user only, within a size limit (oldest studies go first)."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from gradcam_viewer.outputs.safe_write import write_atomic
from gradcam_viewer.pacs.query import is_uid

log = logging.getLogger(__name__)

DEFAULT_CACHE_MB = 4096
SUFFIX = ".dcm"
_PRIVATE = stat.S_IRWXU  # 0o700: folders the user alone can read
CANCELLED = "the retrieve was cancelled"  # an object refused after Cancel: not a failure


class NotStoredError(Exception):
    """An object that is not written, and why (for the count of failures, never with patient
    data)."""


def private_folder(folder: Path) -> Path:
    """`folder` (and the parents it needs) created readable by the user only."""
    missing = []
    probe = Path(folder)
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for path in reversed(missing):
        path.mkdir(mode=_PRIVATE, exist_ok=True)
        os.chmod(path, _PRIVATE)  # mkdir's mode passes through the umask
    return Path(folder)


@dataclass
class Stored:
    path: Path
    study_uid: str
    series_uid: str
    sop_uid: str


class StudyStore:
    """One retrieve's destination: objects of `study_uid` (and `series_uid` if given) only.
    `put` is called from the network threads (several at once for C-MOVE)."""

    def __init__(self, folder: Path, study_uid: str, series_uid: str = "") -> None:
        if not is_uid(study_uid):
            raise ValueError(f"'{study_uid}' is not a Study Instance UID")
        if series_uid and not is_uid(series_uid):
            raise ValueError(f"'{series_uid}' is not a Series Instance UID")
        self.folder = Path(folder)
        self.study_uid, self.series_uid = study_uid, series_uid
        self.closed = False  # after a cancel: nothing more is written
        self._lock = threading.Lock()
        self.refused: dict[str, int] = {}  # reason -> count

    def close(self) -> None:
        """After a cancel: objects still arriving are refused, not written."""
        self.closed = True

    def check(self, ds: Dataset) -> str:
        """The file name `ds` is written under; NotStoredError when it must not be written."""
        if self.closed:
            raise NotStoredError(CANCELLED)
        study = str(ds.get("StudyInstanceUID", "") or "").strip()
        if study != self.study_uid:
            raise NotStoredError("an object of another study than the one asked for")
        series = str(ds.get("SeriesInstanceUID", "") or "").strip()
        if self.series_uid and series != self.series_uid:
            raise NotStoredError("an object of another series than the one asked for")
        sop = str(ds.get("SOPInstanceUID", "") or "").strip()
        if not is_uid(sop):
            raise NotStoredError("an object whose SOP Instance UID is not a UID")
        return sop + SUFFIX

    def put(self, ds: Dataset, write: Callable[[Path], object]) -> Stored:
        """`write(tmp)` writes the object; it is renamed into place only when complete.
        NotStoredError (counted) when the object must not be written."""
        try:
            name = self.check(ds)
        except NotStoredError as exc:
            self._count(str(exc))
            raise
        private_folder(self.folder)
        path = write_atomic(self.folder / name, write, overwrite=True)
        return Stored(path, self.study_uid, str(ds.SeriesInstanceUID), name[:-len(SUFFIX)])

    def put_encoded(self, ds: Dataset, encoded: bytes) -> Stored:
        """An object as it came over the network (preamble, file meta, data set)."""
        return self.put(ds, lambda tmp: tmp.write_bytes(encoded))

    def put_dataset(self, ds: Dataset) -> Stored:
        """An object decoded by its reader (DICOMweb): written back as a DICOM file."""
        return self.put(ds, lambda tmp: ds.save_as(tmp, enforce_file_format=True))

    def _count(self, reason: str) -> None:
        with self._lock:
            self.refused[reason] = self.refused.get(reason, 0) + 1

    def files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir()
                      if p.suffix == SUFFIX and is_uid(p.stem) and p.is_file())


def default_cache_dir() -> Path:
    env = os.environ.get("GRADCAM_VIEWER_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("gradcam-viewer", appauthor=False)) / "studies"


class RetrieveCache:
    """Retrieved studies, one folder per Study Instance UID."""

    def __init__(self, root: Path | None = None, limit_mb: int = DEFAULT_CACHE_MB) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.limit = max(0, int(limit_mb)) << 20

    def study_folder(self, study_uid: str) -> Path:
        if not is_uid(study_uid):
            raise ValueError(f"'{study_uid}' is not a Study Instance UID")
        return self.root / study_uid

    def store(self, study_uid: str, series_uid: str = "") -> StudyStore:
        """A study's store; its folder's time says it was used now (eviction goes by it)."""
        folder = private_folder(self.study_folder(study_uid))
        os.utime(folder)
        return StudyStore(folder, study_uid, series_uid)

    def studies(self) -> list[Path]:
        """The study folders, oldest use first."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.iterdir() if p.is_dir() and is_uid(p.name)]
        return sorted(found, key=lambda p: p.stat().st_mtime)

    def size(self) -> int:
        return sum(_folder_size(p) for p in self.studies())

    def evict(self, keep: tuple[str, ...] = ()) -> list[str]:
        """Remove the oldest studies until the cache is within its limit; the studies in
        `keep` (being read or retrieved) stay whatever their age. Returns the UIDs removed."""
        sizes = [(p, _folder_size(p)) for p in self.studies()]
        total = sum(s for _, s in sizes)
        removed: list[str] = []
        for folder, size in sizes:
            if total <= self.limit:
                break
            if folder.name in keep:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
            removed.append(folder.name)
        if removed:
            log.info("retrieve cache: %d study folder(s) removed to stay within %d MB",
                     len(removed), self.limit >> 20)
        return removed

    def clear(self) -> None:
        """Every retrieved study goes (Keep retrieved studies is off, at exit)."""
        for folder in self.studies():
            shutil.rmtree(folder, ignore_errors=True)


def _folder_size(folder: Path) -> int:
    total = 0
    for p in folder.iterdir():
        try:
            total += p.stat().st_size
        except OSError:  # removed meanwhile
            pass
    return total


def touch(folder: Path) -> None:
    """Mark a study as used now (opened from the cache)."""
    try:
        os.utime(folder, (time.time(), time.time()))
    except OSError:
        pass

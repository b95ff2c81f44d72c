"""Where marks are kept: one JSON file per image frame in the user's data folder
(`platformdirs.user_data_dir("gradcam-viewer")/marks`, or `GRADCAM_VIEWER_MARKS` when set),
never beside the image: inputs stay read-only.

An image is found again by what it is, not where it is: a DICOM file by its SOP Instance UID
(the same object on a CD, in a PACS export or retrieved again has the same marks), any other
file by the SHA-256 of its bytes (a copied or renamed PNG keeps its marks). Hashing a file is
done once per (path, size, modification time) in a process.

File names hold the SOP Instance UID: the log never names a marks file (UIDs are identifiers).

Every change is written at once and atomically (a temporary file in the same folder, flushed
and fsync'ed, then `os.replace`, then the folder fsync'ed where the system allows it): a viewer
killed at any moment leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from gradcam_viewer.launch.requests import is_uid
from gradcam_viewer.marks.shapes import ImageKey, ImageMarks
from gradcam_viewer.outputs.safe_write import write_atomic

log = logging.getLogger(__name__)
ENV_FOLDER = "GRADCAM_VIEWER_MARKS"  # tests and shared set-ups point the store elsewhere
SUFFIX = ".marks.json"


def marks_dir() -> Path:
    folder = os.environ.get(ENV_FOLDER)
    if folder:
        return Path(folder)
    from platformdirs import user_data_dir

    return Path(user_data_dir("gradcam-viewer", appauthor=False)) / "marks"


class FileHashes:
    """SHA-256 of files, computed once per (path, size, mtime): reopening a file costs nothing,
    and a file changed in place is hashed again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[str, int, int], str] = {}

    def sha256(self, path: Path) -> str:
        st = os.stat(path)
        key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
        with self._lock:
            found = self._known.get(key)
        if found is not None:
            return found
        digest = hashlib.sha256()
        with open(path, "rb") as f:  # read-only, in 1 MiB pieces
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        value = digest.hexdigest()
        with self._lock:
            self._known[key] = value
        return value


HASHES = FileHashes()


def image_key(path: Path, frame: int = 0, sop_instance_uid: str | None = None,
              hashes: FileHashes = HASHES) -> ImageKey:
    """The key of an image: its SOP Instance UID when it has one (a valid UID: `is_uid`, as
    `marks export` checks it), else its file's SHA-256."""
    uid = (sop_instance_uid or "").strip()
    if is_uid(uid):
        return ImageKey("sop", uid, frame)
    return ImageKey("sha256", hashes.sha256(path), frame)


def _write_durably(path: Path, data: bytes) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    write_atomic(path, write, overwrite=True)
    try:  # the rename itself survives a power cut once the folder is synced (POSIX)
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open a folder; NTFS journals the rename
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _why(exc: Exception) -> str:
    """What went wrong, without the file's name: a UID is an identifier, never logged."""
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__ if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"


class MarkStore:
    """The marks of every image the user marked, one file each."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else marks_dir()

    def path_of(self, key: ImageKey) -> Path:
        return self.folder / f"{key.stem}{SUFFIX}"

    def load(self, key: ImageKey, name: str = "", size: tuple[int, int] = (0, 0)) -> ImageMarks:
        """The image's marks (none yet: an empty `ImageMarks` with `name` and `size`). A file
        that cannot be read is logged and treated as none: it is left where it is, and the
        first change writes over it."""
        path = self.path_of(key)
        try:
            data = json.loads(path.read_text("utf-8"))
            marks = ImageMarks.from_json(data)
        except FileNotFoundError:
            return ImageMarks(key, (), name, size)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("a marks file cannot be read (%s)", _why(exc))
            return ImageMarks(key, (), name, size)
        if marks.key != key:
            log.warning("a marks file names another image than its file name; ignored")
            return ImageMarks(key, (), name, size)
        return ImageMarks(key, marks.marks, name or marks.name,
                          size if size != (0, 0) else marks.size)

    def save(self, marks: ImageMarks) -> Path:
        """Write the image's marks at once (an image left with no marks keeps an empty file:
        "had marks, all deleted" is a state too). Raises OSError when the folder is not
        writable; the caller tells the user."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path_of(marks.key)
        text = json.dumps(marks.to_json(), indent=1, ensure_ascii=False)
        _write_durably(path, text.encode("utf-8"))
        return path

    def __iter__(self) -> Iterator[ImageMarks]:
        """Every image's marks in the store (unreadable files skipped, logged)."""
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            try:
                yield ImageMarks.from_json(json.loads(path.read_text("utf-8")))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("a marks file cannot be read (%s)", _why(exc))

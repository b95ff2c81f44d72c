"""Writes that never leave a partial file and never overwrite without permission."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


class OutputExistsError(FileExistsError):
    pass


def write_atomic(path: Path, write: Callable[[Path], object], overwrite: bool = False) -> Path:
    """Call `write(tmp)` on a temporary file in the same folder, then rename it into place
    (what `write` returns is not used)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"'{path.name}' already exists")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix + ".part",
                                    dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: Path, data: bytes, overwrite: bool = False) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_bytes(data), overwrite)

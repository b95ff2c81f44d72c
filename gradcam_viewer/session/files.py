"""The files opened together (several files or a folder), for Page Up / Page Down."""

from __future__ import annotations

from pathlib import Path

# "" : DICOM files from a PACS export often have no extension at all
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom", ".ima",
                  ".img", ""}


class FileList:
    """An ordered list of files and the position in it."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.index = -1

    def set(self, paths: list[Path], current: int = 0) -> None:
        self.paths = list(paths)
        self.index = current if self.paths else -1

    def step(self, delta: int) -> Path | None:
        if not self.paths:
            return None
        new = self.index + delta
        if not 0 <= new < len(self.paths):
            return None
        self.index = new
        return self.paths[new]

    @property
    def current(self) -> Path | None:
        return self.paths[self.index] if 0 <= self.index < len(self.paths) else None

    def position(self) -> str:
        return f"{self.index + 1} / {len(self.paths)}" if len(self.paths) > 1 else ""


def expand_paths(paths: list[Path]) -> list[Path]:
    """Folders become their files (sorted; hidden files skipped)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir()
                              if q.is_file() and not q.name.startswith(".")
                              and q.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out

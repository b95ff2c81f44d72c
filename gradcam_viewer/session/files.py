"""The files opened together (several files, a folder or a medium), for Page Up / Page Down.
Folders are scanned by `gradcam_viewer.imaging.scanner` (the Studies panel)."""

from __future__ import annotations

from pathlib import Path


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


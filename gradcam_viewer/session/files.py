"""The files opened together (several files, a folder, a medium or a retrieved study), in
reading order, and the position in it, for Page Up / Page Down. Folders are scanned by
`gradcam_viewer.imaging.scanner` (the Studies panel).

A list may still be growing: a folder is being scanned, or a study arrives file by file. `begin`
starts such a list, `update` gives the files known so far (in reading order: a later update may
put files before the current one), `finish` the complete list. No key is lost meanwhile:
- a step moves within the files known; a step past the last known file is kept (`pending`) and
  taken as soon as files arrive there, and dropped only if the complete list has none;
- steps pressed before any file is known count from the file the list starts at;
- the current file is kept by name through every update, whatever its new place.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class FileList:
    """An ordered list of files, the current one, and whether the list is complete."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.index = -1
        self.complete = True
        self.pending = 0  # steps past the last known file, kept while the list grows
        self._early: list[int] = []  # steps before the list's first file is known, in order
        self._first: Path | None = None  # where a growing list starts, once it has that file
        self._before: tuple[list[Path], int] | None = None  # the list a growing one replaces

    @property
    def current(self) -> Path | None:
        return self.paths[self.index] if 0 <= self.index < len(self.paths) else None

    def set(self, paths: Sequence[Path], current: int = 0) -> None:
        """A complete list, at `current`."""
        self.paths = [Path(p) for p in paths]
        self.index = current if self.paths else -1
        self.complete, self.pending, self._first, self._before = True, 0, None, None
        self._early = []

    def begin(self, first: Path | None = None) -> None:
        """A list that will grow (a scan or a retrieve starts); it starts at `first` once that
        file is known (None: at the first file known)."""
        self._before = (self.paths, self.index) if self.complete else self._before
        self.paths, self.index = [], -1
        self.complete, self.pending, self._early = False, 0, []
        self._first = Path(first) if first is not None else None

    def update(self, paths: Sequence[Path]) -> bool:
        """The files known so far. True when the current file changed (it is to be opened)."""
        return self._replace(paths, complete=False)

    def finish(self, paths: Sequence[Path]) -> bool:
        """The complete list. True when the current file changed. An empty list puts back the
        list this one was to replace (nothing was found: nothing changes)."""
        if not paths and self._before is not None:
            self.paths, self.index = self._before
            self.complete, self.pending, self._first, self._before = True, 0, None, None
            self._early = []
            return False
        return self._replace(paths, complete=True)

    def choose(self, path: Path) -> None:
        """The user picked `path` (in the Studies list): steps go on from there."""
        path = Path(path)
        if path in self.paths:
            self.index = self.paths.index(path)
            self.pending, self._early = 0, []

    def step(self, delta: int) -> Path | None:
        """Move by `delta`; the new current file, or None when it did not change."""
        if self.current is None:
            if not self.complete:
                self._early.append(delta)  # taken from where the list starts, once known
            return None
        wanted = max(0, self.index + self.pending + delta)
        if self.complete:
            if wanted >= len(self.paths) or self.index + delta < 0:
                return None
            return self._move(wanted)
        self.pending = max(0, wanted - (len(self.paths) - 1))
        return self._move(wanted - self.pending)

    def position(self) -> str:
        """"3 / 10" ("3 / 10+" while the list grows); empty for a single complete file."""
        if self.current is None:
            return "" if self.complete or not self.paths else f"- / {len(self.paths)}+"
        more = "" if self.complete else "+"
        return f"{self.index + 1} / {len(self.paths)}{more}" if len(self.paths) > 1 or more \
            else ""

    def _move(self, index: int) -> Path | None:
        if index == self.index:
            return None
        self.index = index
        return self.paths[index]

    def _replace(self, paths: Sequence[Path], complete: bool) -> bool:
        before = self.current
        self.paths = [Path(p) for p in paths]
        self.complete = complete
        if complete:
            self._before = None
        if before is not None and before in self.paths:
            self.index = self.paths.index(before)
        elif before is not None:  # the current file left the list: stay near its place
            self.index = min(self.index, len(self.paths) - 1)
        else:
            self.index = self._start()
            if self.index >= 0 and self._early:  # the keys so far, one by one from the start
                position = self.index
                for delta in self._early:
                    position = max(0, position + delta)
                self.pending, self._early = position - self.index, []
        if self.index >= 0 and self.pending:
            wanted = self.index + self.pending
            self.index = min(wanted, len(self.paths) - 1)
            self.pending = 0 if complete else wanted - self.index
        if complete:
            self.pending, self._first = 0, None
        return self.current != before

    def _start(self) -> int:
        """Where a list without a current file starts: its first file, or `first` once known
        (the complete list starts at its first file if `first` is not in it)."""
        if not self.paths:
            return -1
        if self._first is None:
            return 0
        if self._first in self.paths:
            return self.paths.index(self._first)
        return 0 if self.complete else -1

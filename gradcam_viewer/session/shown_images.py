"""Which images the window showed on their own must be added to the Studies list, whatever
the order of "scan starts / image shown / scan finishes".

A scan's result replaces the list (opening a folder replaces what was listed), so an image
shown while a scan runs cannot be added to the list that scan will replace: it waits, and is
asked for when the scan finishes if the scan did not list it. Outside a scan it is asked for at
once. Each image is asked for once per scan, so one the scanner cannot list is not asked again.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path


class ShownImages:
    def __init__(self) -> None:
        self.scanning = False
        self._asked: set[Path] = set()  # since the last scan started
        self._waiting: list[Path] = []  # shown during the running scan

    def scan_started(self) -> None:
        """A new scan: what was shown before it is no longer to be listed."""
        self.scanning = True
        self._asked, self._waiting = set(), []

    def shown(self, path: Path, listed: bool) -> list[Path]:
        """The window shows `path` (`listed`: the list has it): the images to add now."""
        path = Path(path)
        if self.scanning:
            if path not in self._waiting:
                self._waiting.append(path)
            return []
        if listed or path in self._asked:
            return []
        self._asked.add(path)
        return [path]

    def scan_finished(self, listed: Collection[Path]) -> list[Path]:
        """The scan listed `listed`: the images shown during it that it did not list."""
        listed = {Path(p) for p in listed}
        self.scanning = False
        add = [p for p in self._waiting if p not in listed and p not in self._asked]
        self._asked.update(add)
        self._waiting = []
        return add

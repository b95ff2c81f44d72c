"""A study being retrieved, as the window follows it: progress, the images on disk so far in
reading order, and whether it still feeds the reading list. No Qt, no network, no threads: the
window forwards what the retrieve reports and hands `listing()` to the session
(`SessionController.listing`) and the Studies panel.

The rules:
- every object on disk that is an image is listed once, in the scanner's reading order (the
  same as opening the study's folder);
- the first image is listed at once (`arrived` says so), later ones may wait for the next
  `listing()`; the last listing after the end says `complete`;
- Cancel is sent once; objects that were already written still arrive and are listed;
- once the user opens something else (`detach`), the retrieve goes on into the cache but no
  longer changes what is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from gradcam_viewer.imaging.studies import Catalogue, DicomInfo, ImageRef

Entry = tuple[ImageRef, DicomInfo | None]


class RetrieveState(Enum):
    RUNNING = "running"
    CANCELLING = "cancelling"
    DONE = "done"  # the PACS's final status came (some objects may have failed)
    FAILED = "failed"  # nothing could be retrieved, or the connection was lost
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Listing:
    catalogue: Catalogue
    complete: bool  # the retrieve is over: nothing more will arrive
    first: bool  # the first listing of this retrieve

    @property
    def paths(self) -> list[Path]:
        return self.catalogue.paths()


class StudyRetrieval:
    def __init__(self, source: str, study_uid: str, series_uid: str = "") -> None:
        self.source, self.study_uid, self.series_uid = source, study_uid, series_uid
        self.state = RetrieveState.RUNNING
        self.completed = self.failed = 0
        self.remaining: int | None = None
        self.attached = True
        self.summary = ""  # "N objects retrieved, M failed", at the end
        self.problem = ""
        self._entries: dict[Path, Entry] = {}
        self._changed = False
        self._listed = False

    # ------------------------------------------------------------------ events ----
    def arrived(self, entries: list[Entry]) -> bool:
        """Objects written to disk (their scanner entries: images only). True when the first
        image just arrived: the window should show it now rather than at the next tick."""
        first = not self._entries
        for ref, info in entries:
            if ref.path not in self._entries:
                self._entries[ref.path] = (ref, info)
                self._changed = True
        return first and bool(self._entries)

    def progressed(self, completed: int, remaining: int | None, failed: int) -> None:
        self.completed, self.remaining, self.failed = completed, remaining, failed

    def cancel(self) -> bool:
        """The user pressed Cancel: True when C-CANCEL must be sent (once)."""
        if self.state is not RetrieveState.RUNNING:
            return False
        self.state = RetrieveState.CANCELLING
        return True

    def finished(self, summary: str, failed: int, problem: str, cancelled: bool) -> None:
        self.summary, self.failed, self.problem = summary, failed, problem
        if cancelled or self.state is RetrieveState.CANCELLING:
            self.state = RetrieveState.CANCELLED
        elif problem and not self._entries:
            self.state = RetrieveState.FAILED
        else:
            self.state = RetrieveState.DONE
        self._changed = True

    def detach(self) -> None:
        """The user opened something else: the retrieve no longer feeds what is shown."""
        self.attached = False

    # ------------------------------------------------------------------ queries ----
    @property
    def running(self) -> bool:
        return self.state in (RetrieveState.RUNNING, RetrieveState.CANCELLING)

    @property
    def received(self) -> int:
        return len(self._entries)

    def listing(self) -> Listing | None:
        """What to show if it changed since the last call (and the retrieve still feeds the
        reading list), else None."""
        if not self._changed or not self.attached:
            return None
        self._changed = False
        first, self._listed = not self._listed, True
        return Listing(Catalogue.build(list(self._entries.values())), not self.running, first)

    def status_text(self) -> str:
        """One line for the status bar (no patient data: counts only)."""
        if self.state is RetrieveState.CANCELLING:
            return f"Cancelling the retrieve from {self.source}..."
        if self.running:
            total = (self.completed + self.failed + self.remaining
                     if self.remaining is not None else None)
            done = f"{self.completed} of {total}" if total else f"{self.completed}"
            failed = f", {self.failed} failed" if self.failed else ""
            return f"Retrieving from {self.source}: {done} object(s){failed}"
        return f"Retrieve from {self.source}: {self.summary}"

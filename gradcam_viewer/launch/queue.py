"""The order in which the window carries out what it is asked from outside.

Requests are carried out in the order they came. A study from a link waits for the user's yes
(one question at a time); what came after it waits behind it, so what was asked last is what
the window shows last. A no drops that study and nothing else."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from gradcam_viewer.launch.requests import LaunchRequest, OpenStudy


@dataclass(frozen=True)
class Steps:
    run: tuple[LaunchRequest, ...] = ()  # carry these out now, in this order
    ask: OpenStudy | None = None  # then ask the user about this one


class LaunchQueue:
    def __init__(self) -> None:
        self._waiting: deque[LaunchRequest] = deque()
        self._asking: OpenStudy | None = None

    @property
    def asking(self) -> OpenStudy | None:
        """The link the user is being asked about, if any."""
        return self._asking

    def __len__(self) -> int:
        return len(self._waiting)

    def push(self, request: LaunchRequest) -> Steps:
        self._waiting.append(request)
        return self._next() if self._asking is None else Steps()

    def answer(self, yes: bool) -> Steps:
        """The user's answer about `asking` (an answer when nothing is asked is ignored)."""
        asked, self._asking = self._asking, None
        if asked is None:
            return Steps()
        later = self._next()
        return Steps(((asked,) if yes else ()) + later.run, later.ask)

    def _next(self) -> Steps:
        run: list[LaunchRequest] = []
        while self._waiting:
            request = self._waiting.popleft()
            if isinstance(request, OpenStudy) and request.confirm:
                self._asking = request
                return Steps(tuple(run), request)
            run.append(request)
        return Steps(tuple(run))

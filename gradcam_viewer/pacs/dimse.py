"""DIMSE query/retrieve plumbing shared by C-FIND, C-GET and C-MOVE: an association with the
node's timeouts, the words for every way a PACS can refuse (naming what its administrator must
add), and a C-CANCEL that aborts the association when no final answer follows in time.

Nothing here logs patient data: pynetdicom's own logging of identifiers is switched off, and
our log lines hold UIDs and counts only."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from gradcam_viewer.pacs.nodes import PacsNode
from gradcam_viewer.pacs.query import (
    SeriesMatch,
    StudyList,
    StudyMatch,
    StudyQuery,
    series_identifier,
    sort_studies,
    study_identifier,
)

if TYPE_CHECKING:
    from pynetdicom import AE
    from pynetdicom.association import Association
    from pynetdicom.events import EventHandlerType
    from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation

log = logging.getLogger(__name__)

FIND_MODEL = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve Information Model - FIND
GET_MODEL = "1.2.840.10008.5.1.4.1.2.2.3"
MOVE_MODEL = "1.2.840.10008.5.1.4.1.2.2.2"
CANCEL_GRACE = 5.0  # seconds between C-CANCEL and aborting the association

# A-ASSOCIATE-RJ reasons (PS3.8 9.3.4), service-user source
_CALLING_UNKNOWN, _CALLED_UNKNOWN = 3, 7


class PacsError(Exception):
    """A query or retrieve that failed as a whole; the message is for the user."""


def quiet_pynetdicom() -> None:
    """pynetdicom logs whole identifiers (names, IDs) at INFO: never, whoever configures
    logging."""
    from pynetdicom import _config

    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False


def make_ae(node: PacsNode) -> AE:
    from pynetdicom import AE

    quiet_pynetdicom()
    ae = AE(ae_title=node.calling_ae_title)
    ae.connection_timeout = node.connect_timeout
    ae.acse_timeout = node.acse_timeout
    ae.dimse_timeout = node.dimse_timeout
    ae.network_timeout = max(node.dimse_timeout, node.acse_timeout)
    ae.maximum_pdu_size = 0  # no limit from our side: large images in fewer PDUs
    return ae


def admin_hint(node: PacsNode, host: str, what: str = "query and retrieve") -> str:
    """What the PACS administrator must add for this viewer."""
    return (f"Its administrator must add this viewer as a DICOM node: AE title "
            f"{node.calling_ae_title}, host {host or 'this computer'}, port {node.move_port} "
            f"(the C-MOVE port), allowed to {what}.")


@dataclass
class Connection:
    """An established association, and the address this computer has on it (the one the PACS
    must know)."""

    assoc: Association
    local_host: str


def associate(node: PacsNode, ae: AE, what: str, handlers: Sequence[EventHandlerType] = (),
              roles: Sequence[SCP_SCU_RoleSelectionNegotiation] = ()) -> Connection:
    """An association with `node`; PacsError in words when there is none."""
    from pynetdicom import evt

    opened: list[bool] = []
    events: list[EventHandlerType] = [(evt.EVT_CONN_OPEN, lambda event: opened.append(True)),
                                      *handlers]
    try:
        assoc = ae.associate(node.host, node.port, ae_title=node.ae_title,
                             ext_neg=list(roles) or None, evt_handlers=events)
    except Exception as exc:
        raise PacsError(f"cannot reach {node.label}: {exc}") from exc
    local = _local_host(assoc)
    if assoc.is_established:
        return Connection(assoc, local)
    if not opened:
        raise PacsError(f"no answer from {node.host}:{node.port} (the host is unreachable or "
                        "the port closed)")
    if assoc.is_rejected:
        reason = getattr(assoc.acceptor.primitive, "diagnostic", None)
        if reason == _CALLED_UNKNOWN:
            raise PacsError(f"{node.label} does not answer to the AE title {node.ae_title}: check "
                            "the PACS's AE title in Settings > PACS nodes.")
        why = " (calling AE title not recognised)" if reason == _CALLING_UNKNOWN else ""
        raise PacsError(f"{node.label} rejected this viewer's association{why}. "
                        f"{admin_hint(node, local, what)}")
    if assoc.is_aborted:
        raise PacsError(f"{node.label} aborted the association. {admin_hint(node, local, what)}")
    raise PacsError(f"no answer from {node.label} to the association request within "
                    f"{node.acse_timeout:g} s")


def _local_host(assoc: Association) -> str:
    try:
        return str(assoc.requestor.address)
    except Exception:  # noqa: BLE001 - not connected: no address to tell
        return ""


def accepted(assoc: Association, model: str) -> bool:
    return any(cx.abstract_syntax == model for cx in assoc.accepted_contexts)


class Canceller:
    """Sends C-CANCEL for a request once, then aborts the association if no final status
    came within `grace` seconds (`done` says it came)."""

    def __init__(self, assoc: Association, model: str, msg_id: int = 1,
                 grace: float = CANCEL_GRACE) -> None:
        self.assoc, self.model, self.msg_id, self.grace = assoc, model, msg_id, grace
        self._lock = threading.Lock()
        self.sent = False
        self._finished = threading.Event()
        self.aborted = False

    def cancel(self) -> None:
        with self._lock:
            if self.sent or self._finished.is_set():
                return
            self.sent = True
        try:
            if self.assoc.is_established:
                self.assoc.send_c_cancel(self.msg_id, query_model=self.model)
        except Exception:
            log.debug("C-CANCEL not sent", exc_info=True)
        threading.Thread(target=self._abort_late, daemon=True, name="gradcam-pacs-cancel").start()

    def _abort_late(self) -> None:
        if not self._finished.wait(self.grace) and self.assoc.is_established:
            log.info("no final status %.0f s after C-CANCEL: association aborted", self.grace)
            self.aborted = True
            self.assoc.abort()
            # the thread reading the responses waits on pynetdicom's message queue until the
            # DIMSE timeout; (None, None) is what it reads when an association ends
            self.assoc.dimse.msg_queue.put((None, None))

    def done(self) -> None:
        self._finished.set()


def status_code(status: Dataset) -> int | None:
    value = status.get("Status") if status is not None else None
    return int(value) if value is not None else None


def is_pending(code: int | None) -> bool:
    return code in (0xFF00, 0xFF01)


def aborted(assoc: Association, wait: float = 1.0) -> bool:
    """Whether the peer aborted the association. pynetdicom ends a request's responses as
    soon as the A-ABORT arrives, a moment before it marks the association aborted."""
    deadline = time.monotonic() + wait
    while not assoc.is_aborted and time.monotonic() < deadline:
        if not assoc.is_established and not assoc.is_aborted:
            return False  # released or never there
        time.sleep(0.01)
    return bool(assoc.is_aborted)


def lost(node: PacsNode, assoc: Association, local: str, what: str,
         waited: float) -> tuple[str, str]:
    """A request left without a final answer after `waited` seconds, in words, and what the
    PACS administrator must do ("" if nothing): the PACS aborted (what PACS do to a caller
    they do not know), or nothing came in time (pynetdicom then aborts the association)."""
    if waited < node.dimse_timeout * 0.9 and aborted(assoc):
        return (f"{node.label} ended the association when asked to {what} (it aborted): it "
                "does not allow this viewer to.", admin_hint(node, local))
    return (f"no answer from {node.label} within {node.dimse_timeout:g} s when asked to "
            f"{what}, or the connection was lost", "")


def find_failure(node: PacsNode, code: int, local: str, comment: str = "") -> str:
    """A C-FIND failure status in words."""
    extra = f" ({comment})" if comment else ""
    if code in (0x0124, 0xA700) or 0xC000 <= code <= 0xCFFF:
        return (f"{node.label} refused the query (status 0x{code:04X}{extra}). "
                f"{admin_hint(node, local)}")
    if code == 0x0122:
        return f"{node.label} does not offer Study Root queries (status 0x0122)"
    return f"{node.label} could not answer the query (status 0x{code:04X}{extra})"


def _find(node: PacsNode, identifier: Dataset, limit: int | None) -> tuple[list[Dataset], bool]:
    """C-FIND: the matches (at most `limit`) and whether there were more."""
    ae = make_ae(node)
    ae.add_requested_context(FIND_MODEL)
    conn = associate(node, ae, "query and retrieve")
    assoc = conn.assoc
    found: list[Dataset] = []
    more = False
    try:
        if not accepted(assoc, FIND_MODEL):
            raise PacsError(f"{node.label} does not offer Study Root queries (C-FIND). "
                            f"{admin_hint(node, conn.local_host)}")
        canceller = Canceller(assoc, FIND_MODEL)
        responses: Iterator[tuple[Dataset, Dataset | None]] = assoc.send_c_find(
            identifier, FIND_MODEL)
        last = time.monotonic()
        for status, match in responses:
            code = status_code(status)
            if code is None:
                if canceller.aborted:
                    break
                reason, hint = lost(node, assoc, conn.local_host, "query",
                                    time.monotonic() - last)
                raise PacsError(f"{reason} {hint}".strip())
            last = time.monotonic()
            if is_pending(code):
                if match is None:
                    continue
                if limit is not None and len(found) >= limit:
                    more = True
                    canceller.cancel()  # the rest is not read
                    continue
                found.append(match)
                continue
            canceller.done()
            if code in (0x0000, 0xFE00):
                break
            raise PacsError(find_failure(node, code, conn.local_host,
                                         str(status.get("ErrorComment", "") or "")))
        canceller.done()
    finally:
        if assoc.is_established:
            assoc.release()
    return found, more


def find_studies(node: PacsNode, query: StudyQuery) -> StudyList:
    """The studies matching `query`, newest first; PacsError in words on failure."""
    query.check()
    matches, more = _find(node, study_identifier(query), query.limit)
    studies = [StudyMatch.of(ds) for ds in matches]
    studies = [s for s in studies if s.study_uid]
    log.info("C-FIND: %d stud(ies)%s", len(studies), " (limit reached)" if more else "")
    return StudyList(sort_studies(studies), more, query.limit)


def find_series(node: PacsNode, study_uid: str) -> list[SeriesMatch]:
    matches, _ = _find(node, series_identifier(study_uid), None)
    series = [SeriesMatch.of(ds) for ds in matches]
    return sorted((s for s in series if s.series_uid),
                  key=lambda s: (s.number is None, s.number or 0, s.series_uid))

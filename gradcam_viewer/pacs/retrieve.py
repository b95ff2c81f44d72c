"""Retrieving a study or a series: C-GET (one outbound association; the PACS sends the objects
back on it, so it needs nothing configured for our address), C-MOVE (the PACS opens an
association to a temporary Storage SCP of ours, on the node's C-MOVE port), or Auto: C-GET,
then C-MOVE when C-GET is refused or none of its objects arrive.

`Retrieval.run()` blocks (call it on a worker thread); `cancel()`, from any thread, sends
C-CANCEL and aborts the association when no final status follows within 5 s. Objects go to a
`StudyStore` (checked, written atomically); `on_progress` gets the PACS's counts from each
pending response, `on_stored` each object as soon as it is on disk."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    BasicTextSRStorage,
    Comprehensive3DSRStorage,
    ComprehensiveSRStorage,
    DeflatedExplicitVRLittleEndian,
    EnhancedSRStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ExtensibleSRStorage,
    ImplicitVRLittleEndian,
    KeyObjectSelectionDocumentStorage,
)

from gradcam_viewer.pacs.dimse import (
    GET_MODEL,
    MOVE_MODEL,
    Canceller,
    Connection,
    PacsError,
    accepted,
    admin_hint,
    associate,
    is_pending,
    lost,
    make_ae,
    status_code,
)
from gradcam_viewer.pacs.nodes import PacsNode
from gradcam_viewer.pacs.store import CANCELLED, NotStoredError, Stored, StudyStore

if TYPE_CHECKING:
    from pynetdicom.events import Event
    from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation

log = logging.getLogger(__name__)

MAX_CONTEXTS = 128  # pynetdicom's (and the standard's) limit of presentation contexts
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                ExplicitVRBigEndian)

# Radiographs and the captures made of them: every transfer syntax the bundled decoders read
# gets a presentation context of its own, so the PACS sends each object as it stores it
# (no transcoding, never a lossy one).
RADIOGRAPHS = (
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray Image Storage - For Processing
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
)
# The reports that travel with a study: structured reports (other readers' marks, as TID 1500
# in an Enhanced, Comprehensive or Comprehensive 3D SR, which the viewer reads from the study
# folder; text reports) and key object selections (a study's key images). Without a context
# for them a PACS fails their sub-operations, and Orthanc then fails the whole retrieve. One
# context each, uncompressed (deflated is common for SR).
REPORTS = (BasicTextSRStorage, EnhancedSRStorage, ComprehensiveSRStorage, Comprehensive3DSRStorage,
           ExtensibleSRStorage, KeyObjectSelectionDocumentStorage)
# The other image storage classes the viewer opens: one context each, uncompressed (a PACS
# decompresses for it), within the 128 contexts an association may hold.
OTHER_IMAGES = (
    "1.2.840.10008.5.1.4.1.1.1.2", "1.2.840.10008.5.1.4.1.1.1.2.1",  # mammography
    "1.2.840.10008.5.1.4.1.1.1.3", "1.2.840.10008.5.1.4.1.1.1.3.1",  # intra-oral
    "1.2.840.10008.5.1.4.1.1.7.1", "1.2.840.10008.5.1.4.1.1.7.2",  # multi-frame SC
    "1.2.840.10008.5.1.4.1.1.7.3", "1.2.840.10008.5.1.4.1.1.7.4",
    "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1",  # CT
    "1.2.840.10008.5.1.4.1.1.2.2",
    "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1",  # MR
    "1.2.840.10008.5.1.4.1.1.4.3", "1.2.840.10008.5.1.4.1.1.4.4",
    "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.3.1",  # ultrasound
    "1.2.840.10008.5.1.4.1.1.12.1", "1.2.840.10008.5.1.4.1.1.12.1.1",  # angiography
    "1.2.840.10008.5.1.4.1.1.12.2", "1.2.840.10008.5.1.4.1.1.12.2.1",  # fluoroscopy
    "1.2.840.10008.5.1.4.1.1.13.1.3", "1.2.840.10008.5.1.4.1.1.13.1.4",  # breast
    "1.2.840.10008.5.1.4.1.1.13.1.5",
    "1.2.840.10008.5.1.4.1.1.20",  # nuclear medicine
    "1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.130",  # PET
    "1.2.840.10008.5.1.4.1.1.128.1",
    "1.2.840.10008.5.1.4.1.1.481.1",  # RT image
    "1.2.840.10008.5.1.4.1.1.77.1.1", "1.2.840.10008.5.1.4.1.1.77.1.2",  # visible light
    "1.2.840.10008.5.1.4.1.1.77.1.3", "1.2.840.10008.5.1.4.1.1.77.1.4",
    "1.2.840.10008.5.1.4.1.1.77.1.5.1", "1.2.840.10008.5.1.4.1.1.77.1.5.2",
)


def decodable_syntaxes() -> tuple[str, ...]:
    """The compressed transfer syntaxes pydicom's installed plugins (pylibjpeg, OpenJPEG,
    pyjpegls, GDCM, Pillow) decode, in pydicom's order."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import AllTransferSyntaxes

    found = []
    for syntax in AllTransferSyntaxes:
        uid = UID(syntax)
        if not uid.is_compressed:
            continue
        try:
            if get_decoder(uid).is_available:
                found.append(str(uid))
        except NotImplementedError:  # pydicom has no decoder for it at all (video, JPIP)
            continue
    return tuple(found)


def storage_contexts() -> list[tuple[str, list[str]]]:
    """(SOP class, transfer syntaxes) of each presentation context a C-GET proposes for the
    objects sent back, after its query model's. Most needed first, since what does not fit in
    the 128 contexts is left out from the end: each radiograph class uncompressed (a PACS can
    always send it so), the report classes, the other image classes (one uncompressed context
    each: without a context for a class in the study the PACS fails its objects), and then the
    radiographs' compressed syntaxes, which only spare the PACS a decompression."""
    uncompressed = [str(s) for s in UNCOMPRESSED]
    contexts = [(sop_class, uncompressed) for sop_class in RADIOGRAPHS]
    contexts += [(str(sop_class), uncompressed) for sop_class in (*REPORTS, *OTHER_IMAGES)]
    compressed = decodable_syntaxes()
    contexts += [(sop_class, [syntax]) for sop_class in RADIOGRAPHS for syntax in compressed]
    return contexts[:MAX_CONTEXTS - 1]


def scp_roles(contexts: list[tuple[str, list[str]]]) -> list[SCP_SCU_RoleSelectionNegotiation]:
    """SCP/SCU role selection items: for C-GET we are the storage SCP of each class."""
    from pynetdicom import build_role

    return [build_role(c, scp_role=True) for c in dict.fromkeys(c for c, _ in contexts)]


@dataclass
class Progress:
    """The PACS's counts of sub-operations (from its pending responses) and ours."""

    completed: int = 0
    remaining: int | None = None  # None until the PACS says
    failed: int = 0
    warning: int = 0
    received: int = 0  # objects written here

    @property
    def total(self) -> int | None:
        if self.remaining is None:
            return None
        return self.completed + self.failed + self.warning + self.remaining


@dataclass
class RetrieveReport:
    method: str = ""  # "C-GET", "C-MOVE", "WADO-RS"
    stored: list[Path] = field(default_factory=list)
    failed: int = 0
    problem: str = ""  # why the retrieve failed or stopped ("" when it went through)
    cancelled: bool = False
    refused: dict[str, int] = field(default_factory=dict)  # our refusals, by reason

    @property
    def ok(self) -> bool:
        return not self.problem and not self.failed and not self.cancelled

    def summary(self) -> str:
        text = f"{len(self.stored)} objects retrieved, {self.failed} failed"
        if self.cancelled:
            text += " (cancelled)"
        return text

    def details(self) -> list[str]:
        """One line per problem, for the user."""
        lines = [self.problem] if self.problem else []
        lines += [f"{n} refused: {reason}" for reason, n in sorted(self.refused.items())]
        return lines


class _NoObjectsError(Exception):
    """Nothing could be retrieved this way (Auto then tries C-MOVE): the reason in words, and
    what the PACS administrator must do about it ("" when nothing)."""

    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(reason)
        self.reason, self.hint = reason, hint

    def __str__(self) -> str:
        return f"{self.reason} {self.hint}".strip()


class Retrieval:
    """One retrieve of a study (or one of its series) from a DIMSE node into `store`."""

    def __init__(self, node: PacsNode, store: StudyStore, method: str = "",
                 on_progress: Callable[[Progress], object] | None = None,
                 on_stored: Callable[[Stored], object] | None = None) -> None:
        self.node, self.store = node, store
        self.method = method or node.retrieve_method
        self.on_progress, self.on_stored = on_progress, on_stored
        self.progress = Progress()
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._canceller: Canceller | None = None

    # ------------------------------------------------------------------ control ----
    def cancel(self) -> None:
        """Stop: nothing more is written; C-CANCEL, then abort if the PACS goes on."""
        self._cancelled.set()
        self.store.close()
        with self._lock:
            canceller = self._canceller
        if canceller is not None:
            canceller.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def run(self) -> RetrieveReport:
        report = RetrieveReport()
        try:
            if self.method in ("auto", "get"):
                try:
                    self._run(report, "C-GET")
                except _NoObjectsError as exc:
                    if self.method == "get" or self.cancelled:
                        report.problem = str(exc)
                    else:
                        log.info("C-GET retrieved nothing; trying C-MOVE")
                        self._reset(report)
                        try:
                            self._run(report, "C-MOVE")
                        except _NoObjectsError as exc2:
                            hints = dict.fromkeys(h for h in (exc.hint, exc2.hint) if h)
                            report.problem = "\n".join([f"C-GET: {exc.reason}",
                                                        f"C-MOVE: {exc2.reason}", *hints])
            else:
                try:
                    self._run(report, "C-MOVE")
                except _NoObjectsError as exc:
                    report.problem = str(exc)
        except PacsError as exc:
            report.problem = str(exc)
        report.cancelled = self.cancelled
        if report.cancelled and not report.problem:
            report.problem = "cancelled: the objects that had arrived are kept"
        report.refused = dict(self.store.refused)
        after_cancel = report.refused.pop(CANCELLED, 0)  # refused on purpose: not failures
        report.failed = max(report.failed - after_cancel, sum(report.refused.values()), 0)
        log.info("%s: %d object(s) retrieved, %d failed%s", report.method, len(report.stored),
                 report.failed, " (cancelled)" if report.cancelled else "")
        return report

    def _reset(self, report: RetrieveReport) -> None:
        self.progress = Progress()
        self.store.refused.clear()
        report.failed = 0

    # ------------------------------------------------------------------ DIMSE ----
    def _run(self, report: RetrieveReport, method: str) -> None:
        report.method = method
        if method == "C-GET":
            self._get(report)
        else:
            self._move(report)

    def _identifier(self) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = "SERIES" if self.store.series_uid else "STUDY"
        ds.StudyInstanceUID = self.store.study_uid
        if self.store.series_uid:
            ds.SeriesInstanceUID = self.store.series_uid
        return ds

    def _get(self, report: RetrieveReport) -> None:
        from pynetdicom import evt

        ae = make_ae(self.node)
        ae.add_requested_context(GET_MODEL)
        contexts = storage_contexts()
        for sop_class, syntaxes in contexts:
            ae.add_requested_context(sop_class, syntaxes)
        conn = associate(self.node, ae, "retrieve with C-GET",
                         handlers=[(evt.EVT_C_STORE, lambda event: self._store(event, report))],
                         roles=scp_roles(contexts))
        assoc = conn.assoc
        try:
            if not accepted(assoc, GET_MODEL):
                raise _NoObjectsError(f"{self.node.label} does not offer C-GET (Study Root).",
                                    admin_hint(self.node, conn.local_host))
            if not any(cx.as_scp for cx in assoc.accepted_contexts
                       if cx.abstract_syntax != GET_MODEL):
                raise _NoObjectsError(
                    f"{self.node.label} accepted none of the storage roles C-GET needs (SCP/SCU "
                    "role selection), so it cannot send the images back on the association. "
                    "Use C-MOVE for this node, or ask its administrator to allow C-GET for this "
                    "viewer.", admin_hint(self.node, conn.local_host))
            self._responses(conn, GET_MODEL, assoc.send_c_get(self._identifier(), GET_MODEL),
                            report)
        finally:
            if assoc.is_established:
                assoc.release()

    def _move(self, report: RetrieveReport) -> None:
        from pynetdicom import AE, evt

        ae = make_ae(self.node)
        ae.add_requested_context(MOVE_MODEL)
        conn = associate(self.node, ae, "retrieve with C-MOVE")
        assoc = conn.assoc
        server = None
        try:
            if not accepted(assoc, MOVE_MODEL):
                raise _NoObjectsError(f"{self.node.label} does not offer C-MOVE (Study Root).",
                                    admin_hint(self.node, conn.local_host))
            scp = AE(ae_title=self.node.calling_ae_title)
            scp.network_timeout = scp.dimse_timeout = self.node.dimse_timeout
            scp.acse_timeout = self.node.acse_timeout
            scp.maximum_pdu_size = 0
            for sop_class in dict.fromkeys(c for c, _ in storage_contexts()):
                scp.add_supported_context(sop_class, [*map(str, UNCOMPRESSED),
                                                      *decodable_syntaxes()])
            try:
                # every interface: the PACS may know this computer by another address
                server = scp.start_server(("", self.node.move_port), block=False,
                                          evt_handlers=[(evt.EVT_C_STORE,
                                                         lambda event: self._store(event, report))])
            except OSError as exc:
                raise PacsError(f"this viewer cannot listen on port {self.node.move_port} for "
                                f"C-MOVE ({exc.strerror or exc}): choose another C-MOVE port in "
                                "Settings > PACS nodes, and tell the PACS administrator") from exc
            self._responses(conn, MOVE_MODEL,
                            assoc.send_c_move(self._identifier(), self.node.calling_ae_title,
                                              MOVE_MODEL), report)
        finally:
            if assoc.is_established:
                assoc.release()
            if server is not None:
                _drain(server, self.node.dimse_timeout)
                server.shutdown()

    def _responses(self, conn: Connection, model: str,
                   responses: Iterator[tuple[Dataset, Dataset | None]],
                   report: RetrieveReport) -> None:
        """Read the pending responses (progress) up to the final status."""
        canceller = Canceller(conn.assoc, model)
        with self._lock:
            self._canceller = canceller
        if self.cancelled:
            canceller.cancel()
        final: int | None = None
        status = Dataset()
        last = time.monotonic()
        try:
            for status, _identifier in responses:
                code = status_code(status)
                if code is None:
                    break
                last = time.monotonic()
                self._count(status)
                if is_pending(code):
                    continue
                final = code
                break
        finally:
            canceller.done()
            with self._lock:
                self._canceller = None
        report.failed = self.progress.failed
        if final is None:
            if self.cancelled:
                return  # aborted after C-CANCEL went unanswered
            if report.stored:
                raise PacsError(f"the connection with {self.node.label} was lost or timed out "
                                f"(no answer within {self.node.dimse_timeout:g} s) after "
                                f"{len(report.stored)} object(s)")
            raise _NoObjectsError(*lost(self.node, conn.assoc, conn.local_host,
                                        f"retrieve with {report.method}",
                                        time.monotonic() - last))
        self._final(final, status, conn, report)

    def _final(self, code: int, status: Dataset, conn: Connection,
               report: RetrieveReport) -> None:
        node, method = self.node, report.method
        comment = str(status.get("ErrorComment", "") or "")
        said = f"status 0x{code:04X}{': ' + comment if comment else ''}"
        if code == 0xFE00 or self.cancelled:
            return
        if method == "C-MOVE" and (code == 0xA801 or 0xC000 <= code <= 0xCFFF):
            # Orthanc answers 0xC000 where the standard has 0xA801 (move destination unknown)
            where = f"{node.calling_ae_title} at {conn.local_host}:{node.move_port}"
            why = ("it does not know the move destination" if code == 0xA801 else
                   "most often it does not know the move destination, or cannot connect to it")
            raise _NoObjectsError(f"{node.label} refused the C-MOVE ({said}): {why} ({where}).",
                                admin_hint(node, conn.local_host))
        if code in (0x0000, 0xB000) and report.stored:
            return
        if code == 0x0000 and self.progress.completed == 0 and self.progress.failed == 0:
            return  # nothing matched: an empty study or series
        if code in (0x0000, 0xB000, 0xA702) or 0xA700 <= code <= 0xA7FF:
            why = (f"none of its {self.progress.failed or 'requested'} object(s) reached this "
                   f"viewer ({said})")
            if method == "C-MOVE":
                why += (f"; the PACS may have this viewer with another host or port than "
                        f"{conn.local_host}:{node.move_port}")
            raise _NoObjectsError(f"{node.label}: {why}.", admin_hint(node, conn.local_host))
        if code == 0x0124 or 0xC000 <= code <= 0xCFFF:
            raise _NoObjectsError(f"{node.label} refused the {method} ({said}).",
                                admin_hint(node, conn.local_host))
        raise _NoObjectsError(f"{node.label} could not perform the {method} ({said})")

    def _count(self, status: Dataset) -> None:
        def value(keyword: str) -> int | None:
            v = status.get(keyword)
            return int(v) if v is not None else None

        with self._lock:
            p = self.progress
            completed = value("NumberOfCompletedSuboperations")
            remaining = value("NumberOfRemainingSuboperations")
            failed = value("NumberOfFailedSuboperations")
            warning = value("NumberOfWarningSuboperations")
            p.completed = completed if completed is not None else p.completed
            p.remaining = remaining if remaining is not None else p.remaining
            p.failed = failed if failed is not None else p.failed
            p.warning = warning if warning is not None else p.warning
            snapshot = Progress(p.completed, p.remaining, p.failed, p.warning, p.received)
        if self.on_progress is not None:
            self.on_progress(snapshot)

    # ------------------------------------------------------------------ C-STORE ----
    def _store(self, event: Event, report: RetrieveReport) -> int | Dataset:
        """Each object the PACS sends: checked, written, announced. Runs on the C-GET
        association's thread, or on one of the Storage SCP's threads (C-MOVE)."""
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
            stored = self.store.put_encoded(ds, _encoded(event))
        except NotStoredError as exc:
            return _refusal(0xC000, str(exc))
        except OSError as exc:
            log.warning("a retrieved object could not be written (%s)", exc.strerror or exc)
            return _refusal(0xA700, "the viewer could not write the object")
        except Exception as exc:  # noqa: BLE001 - a data set pynetdicom/pydicom cannot read
            log.warning("a retrieved object could not be read (%s)", type(exc).__name__)
            return _refusal(0xC000, "the object could not be read")
        with self._lock:
            report.stored.append(stored.path)
            self.progress.received += 1
        if self.on_stored is not None:
            self.on_stored(stored)
        return 0x0000


def _encoded(event: Event) -> bytes:
    """The object as it came (preamble, file meta and the data set's own bytes)."""
    data: bytes = event.encoded_dataset(include_meta=True)
    return data


def _refusal(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment[:64]
    return status


def _drain(server: object, timeout: float) -> None:
    """Let the PACS's associations to our Storage SCP finish (the last objects may still be
    on their way when the C-MOVE's final status comes)."""
    deadline = time.monotonic() + min(timeout, 10.0)
    while time.monotonic() < deadline and getattr(server, "active_associations", []):
        time.sleep(0.05)

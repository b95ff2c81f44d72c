"""Query and retrieve over HTTP for archives that only speak DICOMweb: QIDO-RS searches and
WADO-RS retrieves with `dicomweb-client`, into the same `StudyStore` as C-GET and C-MOVE.

The bearer token, when the node has one, is read from the file it names each time it is used:
never kept in the settings, never logged (the library's own debug logging, which prints request
headers and queries, is kept off)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from gradcam_viewer.pacs.dimse import PacsError
from gradcam_viewer.pacs.nodes import PacsNode
from gradcam_viewer.pacs.query import (
    SeriesMatch,
    StudyList,
    StudyMatch,
    StudyQuery,
    sort_studies,
)
from gradcam_viewer.pacs.retrieve import Progress, RetrieveReport
from gradcam_viewer.pacs.store import CANCELLED, NotStoredError, Stored, StudyStore

if TYPE_CHECKING:
    import requests
    from dicomweb_client.api import DICOMwebClient

log = logging.getLogger(__name__)

STUDY_FIELDS = ("StudyInstanceUID", "StudyDate", "StudyTime", "StudyDescription",
                "AccessionNumber", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
                "NumberOfStudyRelatedInstances", "PatientName", "PatientID", "PatientBirthDate",
                "PatientSex")
SERIES_FIELDS = ("SeriesInstanceUID", "SeriesNumber", "Modality", "SeriesDescription",
                 "NumberOfSeriesRelatedInstances")
ANY_SYNTAX = (("application/dicom", "*"),)  # objects as stored: no transcoding by the server


def read_token(node: PacsNode) -> str:
    """The bearer token from the node's token file ("" without one)."""
    if not node.token_file:
        return ""
    try:
        token = Path(node.token_file).expanduser().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise PacsError(f"the token file of {node.title} cannot be read "
                        f"({getattr(exc, 'strerror', None) or type(exc).__name__})") from exc
    if not token or any(c in token for c in "\r\n"):
        raise PacsError(f"the token file of {node.title} must hold the token on one line")
    return token


def _session() -> requests.Session:
    """A requests session that sends `*` and `,` (QIDO-RS wildcards and value lists) as they
    are in query strings: RFC 3986 allows them there, and some servers (Orthanc 1.10 with its
    DICOMweb plugin 1.7) do not decode `%2A`, so a wildcard sent encoded matches nothing."""
    import requests

    class Session(requests.Session):
        def request(self, method: str | bytes, url: str | bytes,
                    *args: object, **kwargs: object) -> requests.Response:
            if isinstance(url, str) and "?" in url:
                path, _, query = url.partition("?")
                url = path + "?" + query.replace("%2A", "*").replace("%2C", ",")
            return super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]

    return Session()


def client(node: PacsNode) -> DICOMwebClient:
    from dicomweb_client.api import DICOMwebClient

    logging.getLogger("dicomweb_client").setLevel(logging.WARNING)
    token = read_token(node)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    web = DICOMwebClient(node.url, session=_session(), headers=headers,
                         timeout=(node.connect_timeout, node.dimse_timeout))
    web.set_http_retry_params(retry=False)  # the user sees the failure and can try again
    return web


def http_problem(node: PacsNode, exc: Exception, what: str) -> PacsError:
    """An HTTP or network failure in words (status codes the user can act on)."""
    import requests

    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    if code in (401, 403):
        return PacsError(f"{node.label} refused to {what} (HTTP {code}): the token is missing, "
                         "wrong or expired; check the node's token file, or ask the archive's "
                         "administrator to give this viewer access")
    if code is not None:
        return PacsError(f"{node.label} could not {what} (HTTP {code})")
    if isinstance(exc, requests.Timeout):
        return PacsError(f"no answer from {node.label} within {node.dimse_timeout:g} s")
    if isinstance(exc, requests.ConnectionError):
        return PacsError(f"cannot reach {node.label} (the host is unreachable or the port "
                         "closed)")
    return PacsError(f"{node.label} could not {what} ({type(exc).__name__})")


def _filters(query: StudyQuery, modality: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for key, value in (("PatientID", query.patient_id.strip()),
                       ("PatientName", query.name_pattern),
                       ("AccessionNumber", query.accession.strip()),
                       ("StudyDate", query.study_date),
                       ("StudyDescription", query.description_pattern),
                       ("StudyInstanceUID", query.study_uid.strip()),
                       ("ModalitiesInStudy", modality)):
        if value:
            found[key] = value
    return found


def find_studies(node: PacsNode, query: StudyQuery) -> StudyList:
    """QIDO-RS, one search per modality (servers differ on lists of modalities), merged."""
    query.check()
    web = client(node)
    studies: dict[str, StudyMatch] = {}
    more = False
    for modality in query.modalities or ("",):
        try:
            found = web.search_for_studies(search_filters=_filters(query, modality),
                                           fields=list(STUDY_FIELDS), limit=query.limit + 1)
        except Exception as exc:
            raise http_problem(node, exc, "answer the query") from exc
        more = more or len(found) > query.limit
        for item in found:
            match = StudyMatch.of(Dataset.from_json(item))
            if match.study_uid:
                studies[match.study_uid] = match
    ordered = sort_studies(list(studies.values()))
    more = more or len(ordered) > query.limit
    log.info("QIDO-RS: %d stud(ies)%s", min(len(ordered), query.limit),
             " (limit reached)" if more else "")
    return StudyList(ordered[:query.limit], more, query.limit)


def find_series(node: PacsNode, study_uid: str) -> list[SeriesMatch]:
    try:
        found = client(node).search_for_series(study_instance_uid=study_uid,
                                               fields=list(SERIES_FIELDS))
    except Exception as exc:
        raise http_problem(node, exc, "list the series") from exc
    series = []
    for item in found:
        ds = Dataset.from_json(item)
        if "StudyInstanceUID" not in ds:
            ds.StudyInstanceUID = study_uid
        series.append(SeriesMatch.of(ds))
    return sorted((s for s in series if s.series_uid),
                  key=lambda s: (s.number is None, s.number or 0, s.series_uid))


class WebRetrieval:
    """A WADO-RS retrieve of a study or series into `store`; the same interface as the DIMSE
    `Retrieval` (run on a worker thread, cancel from any)."""

    def __init__(self, node: PacsNode, store: StudyStore,
                 on_progress: Callable[[Progress], object] | None = None,
                 on_stored: Callable[[Stored], object] | None = None) -> None:
        self.node, self.store = node, store
        self.on_progress, self.on_stored = on_progress, on_stored
        self.progress = Progress()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()
        self.store.close()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _expected(self, web: DICOMwebClient) -> int | None:
        """How many objects to expect (QIDO-RS), for the progress; None if not said."""
        try:
            if self.store.series_uid:
                found = web.search_for_series(
                    study_instance_uid=self.store.study_uid,
                    search_filters={"SeriesInstanceUID": self.store.series_uid},
                    fields=["NumberOfSeriesRelatedInstances"])
                keyword = "NumberOfSeriesRelatedInstances"
            else:
                found = web.search_for_studies(
                    search_filters={"StudyInstanceUID": self.store.study_uid},
                    fields=["NumberOfStudyRelatedInstances"])
                keyword = "NumberOfStudyRelatedInstances"
            value = Dataset.from_json(found[0]).get(keyword) if found else None
            return int(value) if value is not None else None
        except Exception:
            log.debug("no instance count from QIDO-RS", exc_info=True)
            return None

    def run(self) -> RetrieveReport:
        report = RetrieveReport(method="WADO-RS")
        node = self.node
        try:
            web = client(node)
            total = self._expected(web)
            self.progress.remaining = total
            objects: Iterator[Dataset]
            if self.store.series_uid:
                objects = web.iter_series(self.store.study_uid, self.store.series_uid,
                                          media_types=ANY_SYNTAX)
            else:
                objects = web.iter_study(self.store.study_uid, media_types=ANY_SYNTAX)
            for ds in objects:
                if self.cancelled:
                    break
                self._put(ds, report, total)
        except PacsError as exc:
            report.problem = str(exc)
        except Exception as exc:  # noqa: BLE001 - HTTP, network and parsing failures: in words
            if not self.cancelled:
                report.problem = str(http_problem(node, exc, "send the study"))
        report.cancelled = self.cancelled
        if report.cancelled and not report.problem:
            report.problem = "cancelled: the objects that had arrived are kept"
        report.refused = dict(self.store.refused)
        report.refused.pop(CANCELLED, None)
        report.failed = sum(report.refused.values())
        log.info("WADO-RS: %d object(s) retrieved, %d failed%s", len(report.stored),
                 report.failed, " (cancelled)" if report.cancelled else "")
        return report

    def _put(self, ds: Dataset, report: RetrieveReport, total: int | None) -> None:
        p = self.progress
        try:
            stored = self.store.put_dataset(ds)
        except NotStoredError:
            p.failed += 1
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            log.warning("a retrieved object could not be written (%s)", type(exc).__name__)
            self.store.refused["the object could not be written"] = (
                self.store.refused.get("the object could not be written", 0) + 1)
            p.failed += 1
        else:
            report.stored.append(stored.path)
            p.completed += 1
            p.received += 1
            if self.on_stored is not None:
                self.on_stored(stored)
        if total is not None:
            p.remaining = max(0, total - p.completed - p.failed)
        if self.on_progress is not None:
            self.on_progress(Progress(p.completed, p.remaining, p.failed, p.warning,
                                      p.received))

"""Query/retrieve whatever the node speaks: DIMSE (C-FIND, C-GET, C-MOVE) or DICOMweb (QIDO-RS,
WADO-RS). The dialog, the window and the command line call these and never look at the kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gradcam_viewer.launch.requests import StudyRequest
from gradcam_viewer.pacs import dicomweb, dimse
from gradcam_viewer.pacs.dimse import PacsError
from gradcam_viewer.pacs.network import EchoResult, echo
from gradcam_viewer.pacs.nodes import PacsNode
from gradcam_viewer.pacs.query import QueryError, SeriesMatch, StudyList, StudyMatch, StudyQuery
from gradcam_viewer.pacs.retrieve import Progress, Retrieval, RetrieveReport
from gradcam_viewer.pacs.store import Stored, StudyStore


def check(node: PacsNode) -> EchoResult:
    """Settings > PACS nodes' Test connection: a C-ECHO, or a QIDO-RS search for one study."""
    if node.kind != "dicomweb":
        return echo(node, timeout=node.acse_timeout)
    try:
        dicomweb.client(node).search_for_studies(limit=1, fields=["StudyInstanceUID"])
    except PacsError as exc:
        return EchoResult(False, str(exc))
    except Exception as exc:  # noqa: BLE001 - HTTP and network failures: in words
        return EchoResult(False, str(dicomweb.http_problem(node, exc, "answer a search")))
    return EchoResult(True, f"{node.label} answered a QIDO-RS search")


def find_studies(node: PacsNode, query: StudyQuery) -> StudyList:
    """QueryError for a query that must not be sent, PacsError when the node fails."""
    if node.kind == "dicomweb":
        return dicomweb.find_studies(node, query)
    return dimse.find_studies(node, query)


def find_series(node: PacsNode, study_uid: str) -> list[SeriesMatch]:
    if node.kind == "dicomweb":
        return dicomweb.find_series(node, study_uid)
    return dimse.find_series(node, study_uid)


class Retriever(Protocol):
    """What a retrieve offers its caller, whatever the node speaks."""

    def run(self) -> RetrieveReport: ...

    def cancel(self) -> None: ...


def retrieval(node: PacsNode, store: StudyStore, method: str = "",
              on_progress: Callable[[Progress], object] | None = None,
              on_stored: Callable[[Stored], object] | None = None) -> Retriever:
    """A retrieve of `store`'s study (or series) from `node`, ready to `run()`."""
    if node.kind == "dicomweb":
        return dicomweb.WebRetrieval(node, store, on_progress, on_stored)
    return Retrieval(node, store, method, on_progress, on_stored)


def resolve(node: PacsNode, request: StudyRequest) -> StudyMatch:
    """The one study `request` names, found on `node` (any modality); PacsError when the node
    has none or several. (A StudyRequest is checked when it is made.)"""
    query = StudyQuery(patient_id=request.patient_id, accession=request.accession,
                       study_uid=request.study_uid, modalities=(), limit=2)
    found = find_studies(node, query).studies
    if not found and request.study_uid:
        raise PacsError(f"{node.title} does not have the study {request.study_uid}")
    if not found:
        raise PacsError(f"{node.title} has no study with this accession number"
                        + (" and patient ID" if request.patient_id else ""))
    if len(found) > 1:
        raise PacsError(f"{node.title} has several studies with this accession number; give the "
                        "patient ID as well, or the Study Instance UID")
    return found[0]


__all__ = ["PacsError", "QueryError", "Retriever", "StudyRequest", "check", "find_series",
           "find_studies", "resolve", "retrieval"]

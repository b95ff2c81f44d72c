"""What the viewer can be asked to open from outside: files and folders, or a study on a
configured PACS node (by Study Instance UID, or by accession number with an optional patient ID).

A `StudyRequest` checks its values when made, whoever makes it (the `open` command, a
gradcam-viewer:// link, a message from another process): a UID is digits and dots, the others
are short DICOM strings without wildcards or control characters, so a request can name one study
and nothing else (no `*` that would match every study, no path, no host)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# PS3.5 9.1: digits and dots, no empty component. (PS3.5 also forbids leading zeros in a
# component, but some modalities write them and PACS store them: such a study must still open.)
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
MAX_UID = 64
MAX_ACCESSION = 16  # SH
MAX_PATIENT_ID = 64  # LO
MAX_NODE_NAME = 64
_WILDCARDS = "*?"


class RequestError(ValueError):
    """A request that names no study, or names it with a value that cannot be one; the message
    is for the user."""


def is_uid(text: str) -> bool:
    """A UID as a query or a file name may use it: digits and dots, no empty component, at
    most 64 characters."""
    return len(text) <= MAX_UID and bool(_UID.fullmatch(text))


def check_uid(value: str, what: str = "study UID") -> str:
    if not is_uid(value):
        raise RequestError(f"the {what} is not a DICOM UID (digits and dots, at most {MAX_UID} "
                           "characters)")
    return value


def _check_text(value: str, what: str, limit: int) -> str:
    """A DICOM SH/LO value that names one thing: printable, no backslash (the value
    separator), no wildcard, not blank, within its length."""
    if not value.strip():
        raise RequestError(f"the {what} is empty")
    if len(value) > limit:
        raise RequestError(f"the {what} is longer than {limit} characters")
    if any(not ch.isprintable() for ch in value) or "\\" in value:
        raise RequestError(f"the {what} holds control characters or a backslash")
    if any(ch in value for ch in _WILDCARDS):
        raise RequestError(f"the {what} holds a wildcard (* or ?): it must name one study")
    return value


def check_node_name(value: str) -> str:
    """A node's name as the user gave it in Settings > PACS nodes (looked up in that list
    later): never a host, a path or an address, so none of '/', ':' or '@' (a node named with
    them must be renamed to be opened this way)."""
    _check_text(value, "node name", MAX_NODE_NAME)
    if any(ch in value for ch in "/:@"):
        raise RequestError("the node name holds '/', ':' or '@': name a node configured in "
                           "Settings > PACS nodes, not an address or a path")
    return value


@dataclass(frozen=True)
class StudyRequest:
    """One study on one configured node: by `study_uid`, or by `accession` (with `patient_id`
    when the accession number alone is not unique on that PACS)."""

    node: str
    study_uid: str = ""
    accession: str = ""
    patient_id: str = ""

    def __post_init__(self) -> None:
        check_node_name(self.node)
        if bool(self.study_uid) == bool(self.accession):
            raise RequestError("name the study by its study UID or by its accession number "
                               "(one of the two)")
        if self.study_uid:
            check_uid(self.study_uid)
            if self.patient_id:
                raise RequestError("a patient ID goes with an accession number, not with a "
                                   "study UID")
        else:
            _check_text(self.accession, "accession number", MAX_ACCESSION)
            if self.patient_id:
                _check_text(self.patient_id, "patient ID", MAX_PATIENT_ID)

    def describe(self) -> str:
        """The study as the user is shown it (the patient ID included: it helps them recognise
        the study; never written to the log, see `log_text`)."""
        if self.study_uid:
            return f"the study with Study Instance UID {self.study_uid}"
        patient = f" (patient ID {self.patient_id})" if self.patient_id else ""
        return f"the study with accession number {self.accession}{patient}"

    def log_text(self) -> str:
        """What the log may hold: the node and the UID, never an accession number or an ID."""
        return (f"node {self.node!r}, study {self.study_uid}" if self.study_uid
                else f"node {self.node!r}, study by accession number")


@dataclass(frozen=True)
class ModelChoice:
    """A model named on the command line: kind ("keras" or "chexnet"), its path, and the
    reference images folder of a CheXNet preset ("" for none)."""

    kind: str
    path: Path
    reference_images: Path | None = None


@dataclass(frozen=True)
class OpenFiles:
    """Images, folders or DICOMDIRs (absolute paths), and the model to use if one was named."""

    paths: tuple[Path, ...]
    model: ModelChoice | None = None


@dataclass(frozen=True)
class OpenStudy:
    """A study to retrieve from a node and open. `confirm`: it came from a gradcam-viewer://
    link (a web page or another program may have made it), so the user says yes first."""

    study: StudyRequest
    confirm: bool = False


@dataclass(frozen=True)
class BadLink:
    """A gradcam-viewer:// link that was refused: the window says why (a link comes from a
    browser or a worklist, with no terminal to print on)."""

    reason: str


LaunchRequest = OpenFiles | OpenStudy | BadLink

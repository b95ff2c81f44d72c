"""What a query asks and what it finds, as plain values (no network here): the study query of
File > Open from PACS and `gradcam-viewer query`, its DICOM identifier, and the studies and
series a PACS answers, decoded as pydicom decodes them (the answer's Specific Character Set).

Names, IDs and query strings are patient data: nothing here logs them, and `StudyMatch` keeps
them apart (`identifying`) so that a list can leave them out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from gradcam_viewer.launch.requests import is_uid  # digits and dots, <= 64: also file names

UTF8 = "ISO_IR 192"  # the Specific Character Set of every query we send
DEFAULT_MODALITIES = ("CR", "DX")
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
DATE_PRESETS = ("any", "today", "yesterday", "last 7 days", "last 30 days", "range")
_DATE = re.compile(r"^\d{8}$")


class QueryError(ValueError):
    """A query that cannot be sent, in words for the user."""


def date_range(preset: str, today: date, start: date | None = None,
               end: date | None = None) -> str:
    """The Study Date matching key for a preset of the dialog ("" for any date)."""
    if preset == "any":
        return ""
    if preset == "today":
        return today.strftime("%Y%m%d")
    if preset == "yesterday":
        return (today - timedelta(days=1)).strftime("%Y%m%d")
    if preset in ("last 7 days", "last 30 days"):
        days = 7 if preset == "last 7 days" else 30
        return f"{(today - timedelta(days=days - 1)):%Y%m%d}-{today:%Y%m%d}"
    if preset == "range":
        if start is None or end is None:
            raise QueryError("a date range needs a first and a last day")
        if start > end:
            start, end = end, start
        return f"{start:%Y%m%d}-{end:%Y%m%d}"
    raise QueryError(f"unknown date preset '{preset}'")


def _check_date(text: str) -> None:
    parts = text.split("-")
    ok = 1 <= len(parts) <= 2 and all(_DATE.match(p) for p in parts if p) and any(parts)
    if ok:
        try:
            for p in parts:
                if p:
                    date(int(p[:4]), int(p[4:6]), int(p[6:]))
        except ValueError:
            ok = False
    if not ok:
        raise QueryError(f"the study date '{text}' is not YYYYMMDD or YYYYMMDD-YYYYMMDD")


@dataclass(frozen=True)
class StudyQuery:
    """A STUDY-level query. Empty fields are not matched on; at least one of patient ID,
    name, accession, date, description or study UID must be given (a PACS-wide query of every
    CR and DX study is refused)."""

    patient_id: str = ""
    patient_name: str = ""  # * and ? are wildcards; without them, names starting with it
    accession: str = ""
    study_date: str = ""  # YYYYMMDD, YYYYMMDD-YYYYMMDD, YYYYMMDD- or -YYYYMMDD
    modalities: tuple[str, ...] = DEFAULT_MODALITIES  # () for any
    description: str = ""  # words in the study description (case as the PACS matches)
    study_uid: str = ""
    limit: int = DEFAULT_LIMIT

    def check(self) -> None:
        """QueryError when the query must not be sent."""
        if not any(s.strip() for s in (self.patient_id, self.patient_name, self.accession,
                                       self.study_date, self.description, self.study_uid)):
            raise QueryError("give a patient ID, a name, an accession number, a study date or a "
                             "description: a query of the whole PACS is refused")
        for what, value, longest in (("patient ID", self.patient_id, 64),
                                     ("patient name", self.patient_name, 64),
                                     ("accession number", self.accession, 16),
                                     ("description", self.description, 64)):
            if "\\" in value:
                raise QueryError(f"the {what} must not contain a backslash")
            if len(value) > longest:
                raise QueryError(f"the {what} is longer than {longest} characters")
        if self.study_date:
            _check_date(self.study_date)
        if self.study_uid and not is_uid(self.study_uid):
            raise QueryError(f"'{self.study_uid}' is not a Study Instance UID")
        for m in self.modalities:
            if not re.fullmatch(r"[A-Z0-9_ ]{1,16}", m):
                raise QueryError(f"'{m}' is not a modality (CR, DX, ...)")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise QueryError(f"the limit must be between 1 and {MAX_LIMIT}")

    @property
    def name_pattern(self) -> str:
        name = self.patient_name.strip()
        if name and not any(c in name for c in "*?"):
            name += "*"
        return name

    @property
    def description_pattern(self) -> str:
        text = self.description.strip()
        if text and not any(c in text for c in "*?"):
            text = f"*{text}*"
        return text


def study_identifier(query: StudyQuery) -> Dataset:
    """The C-FIND identifier: matching keys from the query, return keys for the list."""
    ds = Dataset()
    ds.SpecificCharacterSet = UTF8
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = query.study_uid.strip()
    ds.PatientName = query.name_pattern
    ds.PatientID = query.patient_id.strip()
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.AccessionNumber = query.accession.strip()
    ds.StudyDate = query.study_date
    ds.StudyTime = ""
    ds.StudyDescription = query.description_pattern
    ds.ModalitiesInStudy = list(query.modalities) if query.modalities else ""
    ds.NumberOfStudyRelatedSeries = ""
    ds.NumberOfStudyRelatedInstances = ""
    return ds


def series_identifier(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = UTF8
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = ""
    ds.SeriesNumber = ""
    ds.Modality = ""
    ds.SeriesDescription = ""
    ds.NumberOfSeriesRelatedInstances = ""
    return ds


def _text(ds: Dataset, keyword: str) -> str:
    """A value as text, decoded by pydicom with the answer's character set ("" if absent or
    damaged: one bad value must not lose the whole answer)."""
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001 - a value pydicom cannot convert reads as empty
        return ""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _count(ds: Dataset, keyword: str) -> int | None:
    text = _text(ds, keyword)
    try:
        return int(text) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Identifying:
    """A study's patient fields: shown only when the user asks, never logged."""

    patient_name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    sex: str = ""

    @property
    def display_name(self) -> str:
        return self.patient_name.replace("^", " ").strip()


@dataclass(frozen=True)
class StudyMatch:
    study_uid: str
    date: str = ""
    time: str = ""
    description: str = ""
    modalities: tuple[str, ...] = ()
    accession: str = ""
    n_series: int | None = None
    n_instances: int | None = None
    identifying: Identifying = field(default_factory=Identifying)

    @classmethod
    def of(cls, ds: Dataset) -> StudyMatch:
        modalities = tuple(m for m in _text(ds, "ModalitiesInStudy").split("\\") if m)
        return cls(_text(ds, "StudyInstanceUID"), _text(ds, "StudyDate"),
                   _text(ds, "StudyTime"), _text(ds, "StudyDescription"), modalities,
                   _text(ds, "AccessionNumber"), _count(ds, "NumberOfStudyRelatedSeries"),
                   _count(ds, "NumberOfStudyRelatedInstances"),
                   Identifying(_text(ds, "PatientName"), _text(ds, "PatientID"),
                               _text(ds, "PatientBirthDate"), _text(ds, "PatientSex")))

    def record(self, show_identifying: bool) -> dict[str, object]:
        """As `query --json` prints it: DICOM keywords; patient fields only when asked."""
        out: dict[str, object] = {
            "StudyInstanceUID": self.study_uid, "StudyDate": self.date,
            "StudyTime": self.time, "StudyDescription": self.description,
            "ModalitiesInStudy": list(self.modalities), "AccessionNumber": self.accession,
            "NumberOfStudyRelatedSeries": self.n_series,
            "NumberOfStudyRelatedInstances": self.n_instances}
        if show_identifying:
            out.update(PatientName=self.identifying.patient_name,
                       PatientID=self.identifying.patient_id,
                       PatientBirthDate=self.identifying.birth_date)
        return out


@dataclass(frozen=True)
class SeriesMatch:
    study_uid: str
    series_uid: str
    number: int | None = None
    modality: str = ""
    description: str = ""
    n_instances: int | None = None

    @classmethod
    def of(cls, ds: Dataset) -> SeriesMatch:
        return cls(_text(ds, "StudyInstanceUID"), _text(ds, "SeriesInstanceUID"),
                   _count(ds, "SeriesNumber"), _text(ds, "Modality"),
                   _text(ds, "SeriesDescription"), _count(ds, "NumberOfSeriesRelatedInstances"))


@dataclass
class StudyList:
    """What a study query found: at most `limit` studies; `more` when the PACS had more."""

    studies: list[StudyMatch] = field(default_factory=list)
    more: bool = False
    limit: int = DEFAULT_LIMIT

    def note(self) -> str:
        if not self.more:
            return ""
        return (f"Only the first {self.limit} studies are listed: the PACS has more. Narrow the "
                "query (a date, a name, an accession number).")


def sort_studies(studies: list[StudyMatch]) -> list[StudyMatch]:
    """Newest first, as a worklist reads."""
    return sorted(studies, key=lambda s: (s.date, s.time, s.study_uid), reverse=True)

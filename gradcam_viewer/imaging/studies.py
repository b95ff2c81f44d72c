"""Patients, studies, series and images found by the scanner, in reading order. No Qt.

The Studies panel draws this tree and Page Up / Page Down walks `Catalogue.images()`, so the
panel, the file list and `scan()` agree on one order:
patients by their earliest study; studies by date, time and UID; series by Series Number and
UID; images by Instance Number, then natural path order (IM2 before IM10). Files without DICOM
study information (PNG, JPEG, ...) come after, in the order given and then natural path order.
Patient names and IDs are kept here for the panel only; nothing in this module logs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[int | str, ...]:
    """'IM2' before 'IM10': digit runs compare as numbers, the rest case-insensitively."""
    parts = _DIGITS.split(text)
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts))


@dataclass
class ImageRef:
    """One image file, with what its header or directory record says about it."""

    path: Path
    instance: int | None = None
    frames: int | None = None  # None: not known until the file is opened
    rank: int = 0  # position of the input (file, folder, medium) it came from

    def sort_key(self) -> tuple[bool, int, tuple[int | str, ...]]:
        return (self.instance is None, self.instance or 0, natural_key(str(self.path)))


@dataclass
class Series:
    uid: str
    number: int | None = None
    modality: str = ""
    description: str = ""
    images: list[ImageRef] = field(default_factory=list)

    def sort_key(self) -> tuple[bool, int, str]:
        return (self.number is None, self.number or 0, self.uid)


@dataclass
class Study:
    uid: str
    date: str = ""  # DICOM DA, YYYYMMDD
    time: str = ""
    description: str = ""
    series: list[Series] = field(default_factory=list)

    def sort_key(self) -> tuple[bool, str, str, str]:
        return (not self.date, self.date, self.time, self.uid)

    def n_images(self) -> int:
        return sum(len(s.images) for s in self.series)


@dataclass
class Patient:
    """Name and ID are identifying: shown only when the user asks, never logged."""

    name: str
    patient_id: str
    studies: list[Study] = field(default_factory=list)

    def sort_key(self) -> tuple[tuple[bool, str, str, str], str, str]:
        first = min((s.sort_key() for s in self.studies), default=(True, "", "", ""))
        return (first, self.patient_id, self.name)

    def label(self, number: int, show_identifying: bool) -> str:
        if not show_identifying:
            return f"Patient {number}"
        name = self.name.replace("^", " ").strip() or "(no name)"
        return f"{name} ({self.patient_id})" if self.patient_id else name


@dataclass
class DicomInfo:
    """The header (or DICOMDIR record) fields the catalogue sorts and groups by."""

    patient_name: str = ""
    patient_id: str = ""
    study_uid: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    series_uid: str = ""
    series_number: int | None = None
    modality: str = ""
    series_description: str = ""
    instance: int | None = None
    frames: int | None = None


@dataclass
class Catalogue:
    """What a scan found: DICOM images as a tree, other images as a flat list."""

    patients: list[Patient] = field(default_factory=list)
    others: list[ImageRef] = field(default_factory=list)
    # inputs, folders or listed files that could not be read: `explain` fails (exit 1)
    warnings: list[str] = field(default_factory=list)
    # told, not failed: the depth limit reached, a DICOMDIR replaced by a search of its folder
    notices: list[str] = field(default_factory=list)
    skipped: int = 0  # files that are not images (CSVs, text, ...) nor structured reports
    # structured reports found beside the images: they may hold marks (marks/sr_read.py)
    reports: list[Path] = field(default_factory=list)

    @classmethod
    def build(cls, entries: list[tuple[ImageRef, DicomInfo | None]]) -> Catalogue:
        """Group and sort; `None` info means a file without DICOM study information."""
        cat = cls()
        patients: dict[tuple[str, str], Patient] = {}
        studies: dict[tuple[tuple[str, str], str], Study] = {}
        series: dict[tuple[tuple[tuple[str, str], str], str], Series] = {}
        for ref, info in entries:
            if info is None:
                cat.others.append(ref)
                continue
            pkey = (info.patient_id, info.patient_name)
            patient = patients.get(pkey)
            if patient is None:
                patient = patients[pkey] = Patient(info.patient_name, info.patient_id)
            skey = (pkey, info.study_uid)
            study = studies.get(skey)
            if study is None:
                study = studies[skey] = Study(info.study_uid, info.study_date, info.study_time,
                                              info.study_description)
                patient.studies.append(study)
            rkey = (skey, info.series_uid)
            group = series.get(rkey)
            if group is None:
                group = series[rkey] = Series(info.series_uid, info.series_number,
                                              info.modality, info.series_description)
                study.series.append(group)
            ref.instance, ref.frames = info.instance, info.frames
            group.images.append(ref)
        for group in series.values():
            group.images.sort(key=ImageRef.sort_key)
        for study in studies.values():
            study.series.sort(key=Series.sort_key)
        for patient in patients.values():
            patient.studies.sort(key=Study.sort_key)
        cat.patients = sorted(patients.values(), key=Patient.sort_key)
        cat.others.sort(key=lambda r: (r.rank, natural_key(str(r.path))))
        return cat

    def entries(self) -> list[tuple[ImageRef, DicomInfo | None]]:
        """Every image with the fields it was grouped by: `build`'s input again."""
        found: list[tuple[ImageRef, DicomInfo | None]] = []
        for p in self.patients:
            for st in p.studies:
                for se in st.series:
                    found.extend((ref, DicomInfo(
                        p.name, p.patient_id, st.uid, st.date, st.time, st.description, se.uid,
                        se.number, se.modality, se.description, ref.instance, ref.frames))
                        for ref in se.images)
        return found + [(ref, None) for ref in self.others]

    def adding(self, other: Catalogue) -> Catalogue:
        """This catalogue with the images of `other` it lacks (an image opened on its own),
        regrouped and sorted; new non-DICOM images come after the others."""
        known = {ref.path for ref in self.images()}
        rank = 1 + max((ref.rank for ref in self.others), default=-1)
        new = [(replace(ref, rank=rank), info) for ref, info in other.entries()
               if ref.path not in known]
        merged = Catalogue.build(self.entries() + new)
        merged.warnings = self.warnings + other.warnings
        merged.notices = self.notices + other.notices
        merged.skipped = self.skipped + other.skipped
        merged.reports = self.reports + [p for p in other.reports if p not in self.reports]
        return merged

    def all_series(self) -> list[Series]:
        return [s for p in self.patients for st in p.studies for s in st.series]

    def images(self) -> list[ImageRef]:
        """Every image in reading order: the order of the tree, then the other images."""
        return [ref for s in self.all_series() for ref in s.images] + list(self.others)

    def paths(self) -> list[Path]:
        return [ref.path for ref in self.images()]

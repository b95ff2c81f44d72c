"""DICOM media written by the tests with pydicom: a DICOMDIR file-set, a UID-named export,
a lower-case copy, and folders with CSVs and text beside the images."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.fileset import FileSet
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

from dicom_factory import make_dataset

SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless,
            DeflatedExplicitVRLittleEndian]


@dataclass(frozen=True)
class Planned:
    """One image as planned: where it must land in reading order."""

    patient: str
    study_date: str
    series_number: int
    instance: int
    frames: int
    sop_uid: str
    syntax: str


# (patient name, patient id, study date, [(series number, modality, description, n images)])
# Dates and numbers are written out of order on purpose: the reader must sort them.
PLAN = [
    ("ALPHA^ANN", "PID-A", "20210305", [(2, "DX", "PA chest", 2), (1, "CR", "Lateral", 1)]),
    ("BETA^BOB", "PID-B", "20190711", [(1, "DX", "AP portable", 3)]),
    ("ALPHA^ANN", "PID-A", "20200102", [(7, "DX", "Follow-up PA", 2), (3, "CR", "Cine", 1)]),
]


def study_datasets(seed: int = 0):
    """2 patients, 3 studies, 5 series, 9 images (one 3-frame), four transfer syntaxes."""
    rng = np.random.default_rng(seed)
    out, planned, k = [], [], 0
    for name, pid, date, series in PLAN:
        study_uid = generate_uid()
        for number, modality, description, count in series:
            series_uid = generate_uid()
            for j in range(count):
                instance = count - j  # written in reverse instance order
                frames = 3 if description == "Cine" else 1
                shape = (frames, 24, 20) if frames > 1 else (24, 20)
                pixels = rng.integers(0, 4096, shape).astype(np.uint16)
                ds = make_dataset(pixels, bits_stored=12, PatientName=name, PatientID=pid,
                                  StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid,
                                  StudyDate=date, StudyTime="101500", StudyID="1",
                                  AccessionNumber="", Modality=modality,
                                  SeriesDescription=description, SeriesNumber=number,
                                  InstanceNumber=instance)
                syntax = SYNTAXES[k % len(SYNTAXES)]
                k += 1
                if syntax == RLELossless:
                    ds.compress(RLELossless, encoding_plugin="pydicom")
                else:
                    ds.file_meta.TransferSyntaxUID = syntax
                out.append(ds)
                planned.append(Planned(name, date, number, instance, frames,
                                       str(ds.SOPInstanceUID), str(syntax)))
    order = sorted(planned, key=lambda p: (min(q.study_date for q in planned
                                               if q.patient == p.patient),
                                           p.study_date, p.series_number, p.instance))
    return out, order


def write_fileset(root: Path, seed: int = 0) -> tuple[Path, list[Planned]]:
    """A DICOM file-set written by pydicom: root/DICOMDIR and root/PT*/ST*/SE*/IM*."""
    datasets, order = study_datasets(seed)
    fs = FileSet()
    for ds in datasets:
        fs.add(ds)
    root.mkdir(parents=True, exist_ok=True)
    fs.write(root)
    return root / "DICOMDIR", order


def write_uid_export(root: Path, seed: int = 1) -> tuple[Path, list[Planned]]:
    """A PACS export: nested folders and files named by UIDs (no extension), with a CSV, a
    text file and a DICOM SR-like non-image beside them."""
    datasets, order = study_datasets(seed)
    for ds in datasets:
        folder = root / str(ds.StudyInstanceUID) / str(ds.SeriesInstanceUID)
        folder.mkdir(parents=True, exist_ok=True)
        ds.save_as(folder / str(ds.SOPInstanceUID), enforce_file_format=True)
    add_clutter(root)
    return root, order


def add_clutter(folder: Path) -> None:
    """Files that are not images: a CSV, notes, an empty file, hidden files and a report."""
    (folder / "worklist.csv").write_text("accession,finding\n1,none\n")
    (folder / "README.txt").write_text("Exported by a PACS.\n")
    (folder / "1.2.840.113619.2.55.3.999.txt").write_text("a text file named like a UID\n")
    (folder / "empty").write_bytes(b"")
    hidden = folder / ".thumbs"
    hidden.mkdir(exist_ok=True)
    first = next(p for p in sorted(folder.rglob("*")) if p.is_file() and p.stat().st_size > 200)
    shutil.copy(first, hidden / "cached")
    report = make_dataset(np.zeros((2, 2), np.uint16), Modality="SR")
    for keyword in ("Rows", "Columns", "PixelData", "BitsAllocated", "BitsStored", "HighBit",
                    "SamplesPerPixel", "PhotometricInterpretation", "PixelRepresentation"):
        delattr(report, keyword)
    report.save_as(folder / "report", enforce_file_format=True)


def lower_case_copy(src: Path, dst: Path) -> Path:
    """Copy a tree with every name lower-cased, as some systems mount ISO 9660 media."""
    for path in sorted(src.rglob("*")):
        rel = Path(*[part.lower() for part in path.relative_to(src).parts])
        target = dst / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    return dst

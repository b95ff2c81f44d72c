"""Studies the query/retrieve tests seed into a PACS: chest radiographs (CR, DX) and a
Secondary Capture, in several transfer syntaxes, with patient fields in more than one
character set. Written with pydicom by the tests themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from dicom_factory import make_dataset, write_encoded

CLASSES = {"CR": ComputedRadiographyImageStorage, "DX": DigitalXRayImageStorageForPresentation,
           "OT": SecondaryCaptureImageStorage}


@dataclass
class SeedStudy:
    patient_name: str
    patient_id: str
    accession: str
    date: str
    description: str
    modality: str = "CR"
    series: int = 1
    per_series: int = 1
    syntax: str = ExplicitVRLittleEndian
    charset: str = "ISO_IR 192"
    size: int = 64
    study_uid: str = field(default_factory=generate_uid)
    files: list[Path] = field(default_factory=list)

    def write(self, folder: Path) -> list[Path]:
        rng = np.random.default_rng(abs(hash(self.study_uid)) % 2**32)
        folder.mkdir(parents=True, exist_ok=True)
        for s in range(self.series):
            series_uid = generate_uid()
            for i in range(self.per_series):
                pixels = rng.integers(0, 4096, (self.size, self.size))
                ds = make_dataset(pixels, bits_stored=12)
                sop_class = CLASSES[self.modality]
                ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
                ds.SpecificCharacterSet = self.charset
                ds.PatientName = self.patient_name
                ds.PatientID = self.patient_id
                ds.PatientBirthDate = "19700101"
                ds.PatientSex = "O"
                ds.AccessionNumber = self.accession
                ds.StudyDate = self.date
                ds.StudyTime = "101500"
                ds.StudyDescription = self.description
                ds.StudyInstanceUID = self.study_uid
                ds.StudyID = "1"
                ds.SeriesInstanceUID = series_uid
                ds.SeriesNumber = s + 1
                ds.SeriesDescription = f"series {s + 1}"
                ds.Modality = self.modality
                ds.InstanceNumber = i + 1
                ds.ReferringPhysicianName = ""
                name = f"{self.accession}_{s + 1}_{i + 1}.dcm"
                self.files.append(write_encoded(folder / name, ds, self.syntax))
        return self.files


def standard_studies() -> list[SeedStudy]:
    """Five studies of three patients; names in UTF-8 and Latin-1, several syntaxes."""
    return [
        SeedStudy("Müller^Jürgen", "QR-001", "ACC1001", "20240105", "Chest PA and lateral",
                  "CR", series=2, per_series=2),
        SeedStudy("Müller^Jürgen", "QR-001", "ACC1002", "20240312", "Chest follow-up", "DX",
                  syntax=JPEG2000Lossless),
        SeedStudy("Smith^Anna", "QR-002", "ACC2001", "20240312", "Chest AP bedside", "DX",
                  syntax=RLELossless, charset="ISO_IR 100"),
        SeedStudy("Smith^Anna", "QR-002", "ACC2002", "20230720", "Knee", "OT",
                  syntax=ImplicitVRLittleEndian),
        SeedStudy("O'Brien^Seán", "QR-003", "ACC3001", "20240601", "Chest PA", "CR",
                  charset="ISO_IR 100"),
    ]


QR_AET = "GCV_VIEWER"  # the viewer's AE title, registered in the test PACS


@dataclass
class QrPacs:
    """A running Orthanc set up as a hospital PACS (only registered AE titles may query and
    retrieve), seeded by REST with `studies` and a 40-instance study `big`."""

    server: object
    move_port: int
    studies: list[SeedStudy]
    big: SeedStudy
    dicomweb: bool

    def node(self, method: str = "auto", calling: str = QR_AET, **changes):
        from gradcam_viewer.pacs.nodes import PacsNode
        from orthanc_server import AET

        return PacsNode(AET, "127.0.0.1", self.server.dicom_port, calling, "Test PACS",
                        query_retrieve=True, retrieve_method=method, move_port=self.move_port,
                        **changes)

    def web_node(self, **changes):
        from gradcam_viewer.pacs.nodes import PacsNode

        return PacsNode("", "", 0, name="Test DICOMweb", kind="dicomweb",
                        url=self.server.dicomweb_url, send=False, query_retrieve=True,
                        **changes)

    def study(self, accession: str) -> SeedStudy:
        return next(s for s in [*self.studies, self.big] if s.accession == accession)


def start_qr_pacs(folder: Path) -> QrPacs:
    from orthanc_server import DICOMWEB_PLUGIN, free_port, modality, start_orthanc

    move_port = free_port()
    dicomweb = DICOMWEB_PLUGIN.exists()
    server = start_orthanc(folder / "orthanc",
                           {"viewer": modality(QR_AET, move_port),
                            "noget": modality("GCV_NOGET", move_port, AllowGet=False)},
                           dicomweb=dicomweb)
    studies = standard_studies()
    big = SeedStudy("Many^Images", "QR-040", "ACC4000", "20240910", "Chest series", "DX",
                    series=2, per_series=20, size=512)
    for study in [*studies, big]:
        for path in study.write(folder / "seed" / study.accession):
            server.upload(path)
    return QrPacs(server, move_port, studies, big, dicomweb)

"""Sample phantoms for the viewer, as 8-bit PNG and as 16-bit DX DICOM with a made-up patient."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, generate_uid

from gradcam_viewer.demo.phantoms import LABELS, draw_phantom

# (file stem, findings in LABELS order, seed)
SAMPLES = (
    ("phantom_01_normal", (0, 0, 0, 0, 0, 0), 101),
    ("phantom_02_cardiomegaly_effusion", (1, 1, 0, 0, 0, 0), 102),
    ("phantom_03_nodule", (0, 0, 1, 0, 0, 0), 103),
    ("phantom_04_mass_consolidation", (0, 0, 0, 1, 0, 1), 104),
    ("phantom_05_pneumothorax", (0, 0, 0, 0, 1, 0), 105),
)
SAMPLE_SIZE = 768
PIXEL_SPACING_MM = 0.5


def write_samples(folder: Path, size: int = SAMPLE_SIZE) -> list[dict]:
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for stem, findings, seed in SAMPLES:
        img, _ = draw_phantom(np.random.default_rng(seed), size, tuple(bool(f) for f in findings))
        Image.fromarray(np.rint(img * 255).astype(np.uint8)).save(folder / f"{stem}.png",
                                                                  optimize=True)
        write_dicom(folder / f"{stem}.dcm", np.rint(img * 4095).astype(np.uint16), seed)
        index.append({"stem": stem, "findings": [n for n, f in zip(LABELS, findings, strict=True) if f]})
    (folder / "samples.json").write_text(json.dumps(
        {"note": "Synthetic phantoms made by gradcam_viewer.demo; no real patient.",
         "samples": index}, indent=2) + "\n", encoding="utf-8")
    return index


def write_dicom(path: Path, stored: np.ndarray, seed: int) -> None:
    """DX For Presentation, MONOCHROME2, 12 bits stored in 16, window = the full 12-bit range
    (so the display equals the PNG), patient PHANTOM^DEMO, with every Type 1 and 2 attribute of
    the DX image, study and series modules that `dciodvfy` (dicom3tools) checks."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    uid = generate_uid(entropy_srcs=[f"gradcam-viewer-phantom-{seed}"])
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[f"study-{seed}"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[f"series-{seed}"])
    ds.Modality = "DX"
    ds.PatientName = "PHANTOM^DEMO"
    ds.PatientID = f"PHANTOM-{seed:04d}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = ds.SeriesDate = datetime.date(2026, 1, 1).strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = "120000"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.StudyDescription = "Synthetic chest phantom (gradcam-viewer demo)"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.ViewCodeSequence = Sequence([_code("399348003", "SCT", "postero-anterior")])
    ds.AnatomicRegionSequence = Sequence([_code("43799004", "SCT", "Chest")])
    ds.ImageLaterality = "U"  # the chest is unpaired
    ds.PatientOrientation = ["L", "F"]  # a PA chest seen as usual: patient's left to the right
    ds.PixelIntensityRelationship, ds.PixelIntensityRelationshipSign = "LIN", 1
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    ds.DetectorType = ""
    ds.PositionerType = ""
    ds.AcquisitionContextSequence = Sequence()
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.Manufacturer = "gradcam-viewer synthetic phantom"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = ds.ImagerPixelSpacing = [PIXEL_SPACING_MM, PIXEL_SPACING_MM]
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.WindowCenterWidthExplanation = "FULL RANGE"
    ds.VOILUTFunction = "LINEAR"
    ds.PresentationLUTShape = "IDENTITY"
    ds.PixelData = stored.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item

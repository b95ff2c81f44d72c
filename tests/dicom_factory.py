"""DICOM files written by the tests themselves, with pydicom, and the decoders the tests
compare against (pydicom itself, GDCM in a child process)."""

import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def make_dataset(pixels: np.ndarray, bits_stored: int = 16, signed: bool = False,
                 photometric: str = "MONOCHROME2", **attrs) -> Dataset:
    pixels = np.asarray(pixels)
    frames = pixels.shape[0] if pixels.ndim == 3 and photometric.startswith("MONO") else 1
    rows, cols = pixels.shape[-2:] if photometric.startswith("MONO") else pixels.shape[:2]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.PatientName = "PHANTOM^TEST"
    ds.PatientID = "TEST-0001"
    ds.Rows, ds.Columns = int(rows), int(cols)
    ds.SamplesPerPixel = 1 if photometric.startswith("MONO") else 3
    ds.PhotometricInterpretation = photometric
    bits_alloc = 8 if bits_stored <= 8 else 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits_alloc, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    dtype = {(8, False): np.uint8, (8, True): np.int8, (16, False): np.uint16,
             (16, True): np.int16}[(bits_alloc, signed)]
    ds.PixelData = np.ascontiguousarray(pixels.astype(dtype)).tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def write_multiframe(path: Path, frames: int = 3, size: int = 64) -> tuple[Path, Dataset]:
    """A multi-frame grey Secondary Capture (12 bits of noise per frame) with a study."""
    pixels = (np.random.default_rng(3).random((frames, size, size)) * 4000).astype(np.uint16)
    ds = make_dataset(pixels, bits_stored=12, StudyInstanceUID=generate_uid(),
                      SeriesInstanceUID=generate_uid())
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = \
        pydicom.uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    return write(path, ds), ds


def write(path: Path, ds: Dataset, **kwargs) -> Path:
    ds.save_as(path, enforce_file_format=kwargs.pop("enforce", True), **kwargs)
    return path


def voi_lut_item(lut: np.ndarray, first: int, bits: int, vr: str = "US",
                 big_endian: bool = False, explanation: str = "") -> Dataset:
    """One VOI LUT Sequence item; OW LUT Data is raw bytes in the file's byte order."""
    item = Dataset()
    item.LUTDescriptor = [len(lut), first, bits]
    if vr == "OW":
        item.add_new(0x00283006, "OW", lut.astype(">u2" if big_endian else "<u2").tobytes())
    else:
        item.add_new(0x00283006, "US", [int(v) for v in lut])
    if explanation:
        item.LUTExplanation = explanation
    return item


def write_encoded(path: Path, ds: Dataset, syntax: str) -> Path:
    """Write `ds` (little-endian pixel bytes from make_dataset) in `syntax`: uncompressed,
    deflated, or a compressed one pydicom can encode (RLE, JPEG-LS, JPEG 2000 lossless)."""
    from pydicom.uid import UID, ExplicitVRBigEndian, ImplicitVRLittleEndian

    if UID(syntax).is_compressed:
        ds.compress(syntax)
        ds.save_as(path, enforce_file_format=True)
        return path
    ds.file_meta.TransferSyntaxUID = syntax
    if syntax == ExplicitVRBigEndian and ds.BitsAllocated == 16:
        ds.PixelData = np.frombuffer(ds.PixelData, "<u2").astype(">u2").tobytes()
    ds.save_as(path, enforce_file_format=True,
               implicit_vr=syntax == ImplicitVRLittleEndian,
               little_endian=syntax != ExplicitVRBigEndian)
    return path


def pydicom_reference(path):
    """pydicom's own decode of the first frame (None if it cannot), and the dataset. A file
    without a transfer syntax gets the encoding its parser found, as pydicom's docs advise."""
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception:  # noqa: BLE001 - the oracle: pydicom refusing, in any way, is the answer
            return None, None
        if "TransferSyntaxUID" not in ds.file_meta and ds.original_encoding[0] is not None:
            implicit, little = ds.original_encoding
            if little:
                ds.file_meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit
                                                  else ExplicitVRLittleEndian)
            else:
                ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
        try:
            ds.pixel_array_options(index=0 if int(ds.get("NumberOfFrames", 1) or 1) > 1 else None)
            return ds.pixel_array, ds
        except Exception:  # noqa: BLE001 - the oracle: pydicom refusing, in any way, is the answer
            return None, ds


def gdcm_decodes(path) -> bool:
    """GDCM's own reader as a second oracle, in a child process (GDCM may abort on bad data)."""
    import subprocess
    import sys

    code = ("import sys, gdcm; gdcm.Trace.WarningOff(); gdcm.Trace.ErrorOff(); "
            "r = gdcm.ImageReader(); r.SetFileName(sys.argv[1]); "
            "sys.exit(0 if r.Read() and r.GetImage().GetBuffer() is not None else 1)")
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         timeout=120)
    return run.returncode == 0

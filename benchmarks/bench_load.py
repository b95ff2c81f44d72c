"""Loading and windowing: a 3000x3000 16-bit DICOM (written here) and a 1024x1024 PNG, in ms,
next to pydicom's and Pillow's bare decode of the same files (the floor we build on).
Run: .venv/bin/python benchmarks/bench_load.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from timing import timed


def main() -> int:
    import pydicom
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian

    from gradcam_viewer.imaging import Window, load_image, to_display

    folder = Path(tempfile.mkdtemp(prefix="bench_load_"))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:3000, 0:3000]
    big = ((np.sin(xx / 200.0) + np.cos(yy / 150.0) + 2) * 1000 + rng.normal(0, 30, (3000, 3000)))
    big = np.clip(big, 0, 4095).astype(np.uint16)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows = ds.Columns = 3000
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = big.tobytes()
    dcm = folder / "big.dcm"
    ds.save_as(dcm, enforce_file_format=True)
    png = folder / "chest.png"
    Image.fromarray((big[:1024, :1024] // 16).astype(np.uint8)).save(png)

    def ours_dicom():
        to_display(load_image(dcm))

    def bare_dicom():
        d = pydicom.dcmread(dcm)
        pydicom.pixels.apply_voi_lut(pydicom.pixels.apply_modality_lut(d.pixel_array, d), d)

    image = load_image(dcm)
    manual = Window(1500, 800)
    print("3000x3000 16-bit DICOM (MONOCHROME1, 18 MB)")
    print(f"  load + default window (ours):          {timed(ours_dicom):7.1f} ms   goal < 300 ms")
    print(f"  pydicom read + modality + VOI (float64): {timed(bare_dicom):5.1f} ms")
    print(f"  re-window only (window/level drag):    {timed(lambda: to_display(image, manual)):7.1f} ms")

    def ours_png():
        to_display(load_image(png))

    def bare_png():
        with Image.open(png) as im:
            np.asarray(im)

    print("1024x1024 8-bit PNG")
    print(f"  load + display (ours):                 {timed(ours_png):7.1f} ms")
    print(f"  Pillow decode only:                    {timed(bare_png):7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""12-bit JPEG Extended through GDCM's own file reader (BSD), the last decoder in line.

pydicom's GDCM plugin refuses 12-bit JPEG Extended and the other bundled decoders cannot read
it, but `gdcm.ImageReader` can. GDCM can abort the whole process on some corrupt streams (seen
with JPEG 2000), so the loader sends it only the syntaxes listed in `GDCM_READER_SYNTAXES`,
after every pydicom plugin has failed, and only once the header has passed its checks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GDCM_READER_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.51"})  # JPEG Extended (Process 2 & 4)
MAX_DECODED_BYTES = 2 << 30
_DTYPES = {"UINT8": np.uint8, "INT8": np.int8, "UINT16": np.uint16, "INT16": np.int16}


class GdcmReadError(Exception):
    """GDCM could not read the file; the message is plain text for the user."""


def jpeg_precision(stream: bytes) -> int | None:
    """Sample precision from a JPEG stream's frame header (SOFn), None if it has none: the
    loader hands GDCM only well-formed 12-bit streams that pydicom has already unwrapped."""
    if not stream.startswith(b"\xff\xd8"):
        return None
    pos = 2
    for _ in range(64):  # a few tables precede the frame header
        if pos + 5 > len(stream) or stream[pos] != 0xFF:
            return None
        marker = stream[pos + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return stream[pos + 4]
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        pos += 2 + int.from_bytes(stream[pos + 2: pos + 4], "big")
    return None


def gdcm_available() -> bool:
    try:
        import gdcm  # noqa: F401
    except ImportError:
        return False
    return True


def read_frame(path: Path, frame: int, expected_frames: int) -> tuple[np.ndarray, str]:
    """Decode `frame` of `path`: pixels [rows, cols] or [rows, cols, samples], and the
    photometric interpretation GDCM returns them in."""
    import gdcm

    gdcm.Trace.WarningOff()
    gdcm.Trace.ErrorOff()
    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    if not reader.Read():
        raise GdcmReadError("GDCM cannot read the file")
    image = reader.GetImage()
    dims = [int(d) for d in image.GetDimensions()]
    cols, rows = dims[0], dims[1]
    frames = dims[2] if len(dims) > 2 else 1
    pixel_format = image.GetPixelFormat()
    dtype = _DTYPES.get(pixel_format.GetScalarTypeAsString())
    samples = int(pixel_format.GetSamplesPerPixel())
    if dtype is None or samples not in (1, 3) or frames != expected_frames:
        raise GdcmReadError("GDCM returns a pixel layout this program does not read")
    expected = rows * cols * samples * frames * np.dtype(dtype).itemsize
    if int(image.GetBufferLength()) != expected or expected > MAX_DECODED_BYTES:
        raise GdcmReadError("GDCM returns a pixel buffer of the wrong size")
    buffer = image.GetBuffer()  # GDCM hands back char* as str
    if buffer is None:
        raise GdcmReadError("GDCM could not decode the pixel data")
    data = buffer.encode("utf-8", "surrogateescape")
    if len(data) != expected:
        raise GdcmReadError("GDCM returns a pixel buffer of the wrong size")
    arr = np.frombuffer(data, dtype=dtype).reshape(frames, rows, cols, samples)[frame]
    photometric = str(image.GetPhotometricInterpretation()).strip().upper()
    return (arr[..., 0] if samples == 1 else arr).copy(), photometric

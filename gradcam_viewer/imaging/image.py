"""The loaded image: pixels after the modality transform plus what is needed to show them."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


@dataclass(frozen=True)
class Window:
    """A VOI transform: a linear/sigmoid window, or the file's VOI LUT number `lut_index`."""

    center: float
    width: float
    explanation: str = ""
    function: str = "LINEAR"  # LINEAR, LINEAR_EXACT or SIGMOID (DICOM PS3.3 C.11.2.1.3)
    lut_index: int | None = None

    def label(self) -> str:
        if self.lut_index is not None:
            return self.explanation or f"VOI LUT {self.lut_index + 1}"
        text = f"C {self.center:g} / W {self.width:g}"
        return f"{self.explanation} ({text})" if self.explanation else text


@dataclass(frozen=True)
class VoiLuts:
    """The file's VOI LUT Sequence in the dataset it was read in (pixel data dropped): its file
    meta and encoding tell pydicom how to unpack OW LUT Data. `bits[i]`: LUT i's output depth."""

    dataset: Dataset
    bits: tuple[int, ...]


@dataclass(frozen=True)
class MetaField:
    """One metadata entry; `identifying` ones stay hidden and out of logs and exports."""

    keyword: str
    name: str
    value: str
    identifying: bool


@dataclass
class LoadedImage:
    path: Path
    pixels: np.ndarray  # float32, [H, W] grey (after the modality transform) or [H, W, 3] RGB
    #                     in 0..255 (deeper colour scaled by its Bits Stored)
    source_format: str  # e.g. "DICOM, JPEG 2000 Image Compression" or "PNG"
    window: Window | None  # the default display window (None for colour images)
    presets: list[Window] = field(default_factory=list)  # all the file offers, default first
    invert: bool = False  # MONOCHROME1, or Presentation LUT Shape INVERSE on MONOCHROME2
    n_frames: int = 1
    frame: int = 0
    pixel_spacing: tuple[float, float] | None = None  # (row, column) in mm
    metadata: dict[str, MetaField] = field(default_factory=dict)
    integral: bool = True  # pixel values are whole numbers: windows can use a lookup table
    voi_luts: VoiLuts | None = None  # the file's VOI LUTs, if any
    # the 8-bit pixels of the file's own window and inversion, once computed (read-only): what
    # the model sees and what the screen shows first (imaging.display.to_display keeps it)
    default_display: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def is_color(self) -> bool:
        return self.pixels.ndim == 3

    @property
    def nbytes(self) -> int:
        """The memory its pixels hold, with the lookup-table index and the default display
        once they were computed."""
        indexed = self.__dict__.get("indexed_pixels")  # the cached property, if computed
        display = self.default_display
        return int(self.pixels.nbytes + (indexed[0].nbytes if indexed is not None else 0)
                   + (display.nbytes if display is not None else 0))

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)"""
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])

    @cached_property
    def value_range(self) -> tuple[float, float]:
        return float(self.pixels.min()), float(self.pixels.max())

    @cached_property
    def indexed_pixels(self) -> tuple[np.ndarray, int] | None:
        """Pixel values as indices into a window lookup table, when that is exact and small."""
        lo, hi = self.value_range
        if not self.integral or self.is_color or hi - lo > 1 << 20:
            return None
        dtype = np.uint16 if hi - lo < 1 << 16 else np.uint32
        return (self.pixels - lo).astype(dtype), int(lo)

    def spacing_label(self) -> str:
        """Pixel size for the status line; a zero or missing spacing is unknown, never 0 mm."""
        if self.pixel_spacing is None:
            return "spacing unknown"
        row, col = self.pixel_spacing
        return f"{row:g} mm/px" if row == col else f"{row:g} x {col:g} mm/px"

    def visible_metadata(self, include_identifying: bool = False) -> dict[str, str]:
        return {k: f.value for k, f in self.metadata.items()
                if include_identifying or not f.identifying}

"""Find the images in files, folders and DICOM media (CD, DVD, USB with a DICOMDIR). No Qt.

A file is an image by its content, never by its name: the DICM marker, a preamble-less DICOM
header with an image size, or a PNG/JPEG/TIFF/BMP signature. Folders are searched to
`MAX_DEPTH` levels; hidden entries (".name") are skipped and every real folder is entered at
most once, so symlink loops end. A DICOMDIR is read with pydicom's `FileSet`; its file IDs
are matched case-insensitively (media mounted with lower-case names), references that leave
the medium's folder are refused, and missing files are reported as warnings. Warnings are
what could not be read (`explain` fails on them); notices are told only (the depth limit, an
unusable DICOMDIR whose folder is searched instead). Structured reports (DICOM SR of a class
that can hold image regions) are listed apart (`Catalogue.reports`): they may hold marks made
on the images (marks/sr_read.py reads them). Other non-images (CSVs, text reports, DICOMDIRs
under other names) are counted as skipped, silently. Headers are read with
`stop_before_pixels` and only for DICOM files, to sort them (see `studies.py` for the order).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.fileset import FileInstance
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    Comprehensive3DSRStorage,
    ComprehensiveSRStorage,
    EnhancedSRStorage,
    ExtensibleSRStorage,
    MediaStorageDirectoryStorage,
)

from gradcam_viewer.imaging.raster import sniff_raster
from gradcam_viewer.imaging.studies import Catalogue, DicomInfo, ImageRef, natural_key

log = logging.getLogger(__name__)

MAX_DEPTH = 12  # CD layouts need 4 (DICOM/PATIENT/STUDY/SERIES/IMAGE); deeper is a wrong folder
HEADER_DEFER = 1024  # bytes: longer header values (private blobs, icons) are not read
PROGRESS_S = 0.5  # a long scan reports the images found so far this often
# a bare (preamble-less) dataset starts with a tag of one of these groups
_BARE_GROUPS = {0x0000, 0x0002, 0x0004, 0x0008, 0x0010, 0x0018, 0x0020, 0x0028}
# SR classes whose content may hold spatial coordinates (SCOORD): marks on images
REPORT_CLASSES = frozenset({EnhancedSRStorage, ComprehensiveSRStorage, Comprehensive3DSRStorage,
                            ExtensibleSRStorage})
_VRS = {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
        b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST",
        b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV"}


@dataclass
class ScanResult:
    catalogue: Catalogue
    # files named explicitly (not found in a folder) that are not images: the caller opens
    # them anyway so that the loader says why (found in a folder they are just skipped)
    rejected: list[Path] = field(default_factory=list)

    @property
    def images(self) -> list[Path]:
        return self.catalogue.paths()

    @property
    def skipped(self) -> int:
        return self.catalogue.skipped

    @property
    def warnings(self) -> list[str]:
        return self.catalogue.warnings

    @property
    def notices(self) -> list[str]:
        return self.catalogue.notices


def scan(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The image files in `paths` (files, folders, DICOMDIRs), in reading order."""
    return scan_media(paths).images


def sniff(head: bytes) -> str | None:
    """'dicom' (DICM marker), 'bare-dicom' (looks like a dataset without preamble), a raster
    format name, or None. Content only, from the first 132 bytes."""
    if head[128:132] == b"DICM":
        return "dicom"
    raster = sniff_raster(head)
    if raster:
        return raster
    if len(head) >= 8 and int.from_bytes(head[0:2], "little") in _BARE_GROUPS:
        if head[4:6] in _VRS:  # explicit VR
            return "bare-dicom"
        if int.from_bytes(head[4:8], "little") < 1 << 16:  # implicit VR: a short length
            return "bare-dicom"
    return None


def scan_media(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
               cancelled: Callable[[], bool] | None = None,
               progress: Callable[[list[Path]], None] | None = None) -> ScanResult:
    """Scan and keep the tree, the warnings (missing files, unreadable folders) and the
    notices (depth limit, a DICOMDIR searched as a folder). `progress` is given the images
    found so far, in reading order, now and then during a long scan."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]  # one path, not a sequence of characters
    state = _Scan(cancelled or (lambda: False), progress)
    for rank, raw in enumerate(paths):
        p = Path(raw)
        state.rank = rank
        if p.is_dir():
            before = len(state.entries) + state.images_again
            state.walk(p)
            if len(state.entries) + state.images_again == before and not state.cancelled():
                state.warn(f"'{p.name or p}' holds no image files.")
        elif p.is_file():
            if p.name.upper() == "DICOMDIR":
                if not state.read_dicomdir(p):
                    state.walk(p.parent)  # as its notice says (the DICOMDIR is not read again)
            else:
                state.consider(p, explicit=True)
        else:
            state.warn(f"'{p}' does not exist.")
        if state.cancelled():
            break
    catalogue = Catalogue.build(state.entries)
    catalogue.skipped = state.skipped
    catalogue.reports = state.reports
    catalogue.warnings, catalogue.notices = state.warnings, state.notices
    log.info("scan: %d image(s), %d report(s), %d other file(s) skipped, %d warning(s), "
             "%d notice(s)", len(state.entries), len(state.reports), state.skipped,
             len(state.warnings), len(state.notices))
    return ScanResult(catalogue, state.rejected)


class _Scan:
    def __init__(self, cancelled: Callable[[], bool],
                 progress: Callable[[list[Path]], None] | None = None):
        self.cancelled = cancelled
        self.progress = progress
        self.reported = time.monotonic()  # the first report comes after PROGRESS_S
        self.entries: list[tuple[ImageRef, DicomInfo | None]] = []
        self.reports: list[Path] = []  # structured reports that may hold marks
        self.warnings: list[str] = []
        self.notices: list[str] = []
        self.skipped = 0
        self.rejected: list[Path] = []
        self.rank = 0
        self.seen_dirs: set[tuple[int, int]] = set()
        self.seen_files: set[tuple[int, int]] = set()
        self.image_files: set[tuple[int, int]] = set()  # the seen files that are images
        self.images_again = 0  # images reached again (named, then in their folder)

    def add(self, ref: ImageRef, info: DicomInfo | None) -> None:
        """An image found; the images found so far go to `progress` (in reading order) at
        most every PROGRESS_S, so that a long scan's first images can be opened."""
        self.entries.append((ref, info))
        if self.progress is None:
            return
        now = time.monotonic()
        if now - self.reported >= PROGRESS_S:
            self.reported = now
            self.progress(Catalogue.build(list(self.entries)).paths())

    def warn(self, text: str) -> None:
        log.warning("scan: %s", text)  # file names only: no header values
        self.warnings.append(text)

    def note(self, text: str) -> None:
        log.info("scan: %s", text)
        self.notices.append(text)

    # ---------------------------------------------------------------- folders ----
    def walk(self, root: Path) -> None:
        stack = [(root, 0)]
        while stack and not self.cancelled():
            folder, depth = stack.pop()
            try:
                st = folder.stat()
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: natural_key(e.name))
            except OSError as exc:
                self.warn(f"the folder '{folder.name}' cannot be read ({exc.strerror or exc}).")
                continue
            if (st.st_dev, st.st_ino) in self.seen_dirs:
                continue  # a symlink loop or a folder reached twice
            self.seen_dirs.add((st.st_dev, st.st_ino))
            for entry in entries:
                if entry.name.upper() == "DICOMDIR" and _is_file(entry):
                    self.read_dicomdir(Path(entry.path))
            subfolders = []
            for entry in entries:
                if entry.name.startswith(".") or entry.name.upper() == "DICOMDIR":
                    continue
                if self.cancelled():
                    return
                try:
                    if entry.is_dir():
                        subfolders.append(Path(entry.path))
                    elif entry.is_file():
                        self.consider(Path(entry.path), entry=entry)
                except OSError:
                    continue
            if depth < MAX_DEPTH:
                stack.extend((sub, depth + 1) for sub in reversed(subfolders))
            elif subfolders:
                self.note(f"folders deeper than {MAX_DEPTH} levels below '{root.name}' were "
                          "not searched.")

    # ---------------------------------------------------------------- files ----
    def consider(self, path: Path, entry: os.DirEntry[str] | None = None,
                 explicit: bool = False) -> None:
        try:
            st = entry.stat() if entry is not None else path.stat()
            key = (st.st_dev, st.st_ino)
            if key in self.seen_files:
                self.images_again += key in self.image_files
                return
            self.seen_files.add(key)
            if st.st_size == 0:
                self._not_an_image(path, explicit)
                return
            with open(path, "rb") as f:  # opened once: the header is read from the same file
                kind = sniff(f.read(132))
                header = _header(path, f, bare=kind == "bare-dicom") \
                    if kind in ("dicom", "bare-dicom") else None
        except OSError as exc:
            if explicit:
                self.warn(f"'{path.name}' cannot be read ({exc.strerror or exc}).")
            return
        if kind is None:
            self._not_an_image(path, explicit)
            return
        if header is None:
            self.image_files.add(key)
            self.add(ImageRef(path, rank=self.rank), None)
            return
        info, what = header
        if what == IMAGE:
            self.image_files.add(key)
            self.add(ImageRef(path, rank=self.rank), info)
        else:
            if what == REPORT:
                self.reports.append(path)
            self._not_an_image(path, explicit, counted=what != REPORT)

    def _not_an_image(self, path: Path, explicit: bool, counted: bool = True) -> None:
        if explicit:
            self.rejected.append(path)
        elif counted:
            self.skipped += 1

    # ---------------------------------------------------------------- DICOMDIR ----
    def read_dicomdir(self, path: Path) -> bool:
        """Add the images a DICOMDIR lists; files it lists are not read again by the walk,
        nor is the DICOMDIR itself (`explain CD/DICOMDIR CD/` parses it once). False when it
        cannot be used: the caller searches its folder instead."""
        from pydicom.fileset import FileSet

        try:
            st = path.stat()
        except OSError as exc:
            self.warn(f"'{path.name}' cannot be read ({exc.strerror or exc}).")
            return True
        if (st.st_dev, st.st_ino) in self.seen_files:
            return True
        self.seen_files.add((st.st_dev, st.st_ino))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, force=True)
            if ds.file_meta.get("MediaStorageSOPClassUID") != MediaStorageDirectoryStorage:
                raise ValueError("not a Media Storage Directory")
        except Exception as exc:  # noqa: BLE001 - any damage: the folder is searched instead
            self.note(f"'{path}' is not a readable DICOMDIR ({type(exc).__name__}); the "
                      "folder is searched instead.")
            return False
        root = Path(os.path.abspath(path.parent))  # as given: a medium reached by a symlink
        resolver = _CaseInsensitive(root)  # keeps its path, as the folder walk does
        for record in ds.get("DirectoryRecordSequence", []):
            if "ReferencedFileID" not in record:
                continue
            parts = _file_id(record)
            shown = "/".join(parts)
            found = resolver.find(parts) if parts else None
            if found is None:
                if resolver.refused:
                    self.warn(f"the DICOMDIR in '{root.name}' refers to '{shown}', outside "
                              "its folder; that entry is ignored.")
                elif str(record.get("DirectoryRecordType", "")).upper() == "IMAGE":
                    self.warn(f"the DICOMDIR in '{root.name}' lists '{shown}', which is "
                              "missing.")
                del record.ReferencedFileID  # pydicom then drops the entry
                continue
            actual = list(found.relative_to(root).parts)
            if actual != parts:  # lower-case media: point the record at the real names
                record["ReferencedFileID"] = DataElement(  # in memory; the medium is untouched
                    0x00041500, "CS", actual if len(actual) > 1 else actual[0],
                    validation_mode=pydicom.config.IGNORE)
        try:
            fs = FileSet()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fs.load(ds, include_orphans=False)
            instances = list(fs)
        except Exception as exc:  # noqa: BLE001 - PermissionError for paths outside the root, damage
            self.note(f"the DICOMDIR in '{root.name}' cannot be used ({type(exc).__name__}); "
                      "the folder is searched instead.")
            return False
        series_info: dict[int, DicomInfo] = {}  # per SERIES record: shared by its images
        for instance in instances:
            # the file ID was checked and set to the names on disk above (pydicom's own
            # `instance.path` resolves it again, the slowest part of reading a DICOMDIR)
            real = root.joinpath(*_file_id(instance))
            try:
                st = real.stat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in self.seen_files:
                self.images_again += (st.st_dev, st.st_ino) in self.image_files
                continue  # listed already (named explicitly, or by another DICOMDIR)
            self.seen_files.add((st.st_dev, st.st_ino))  # so the folder walk skips it
            if instance.node.record_type != "IMAGE":
                if instance.node.record_type == "SR DOCUMENT":
                    self.reports.append(real)
                else:
                    self.skipped += 1
                continue
            records = _Records(instance)
            parent = id(instance.node.parent)
            if parent not in series_info:
                series_info[parent] = _fields(records)
            info = replace(series_info[parent], instance=_int(records, "InstanceNumber"),
                           frames=_int(records, "NumberOfFrames"))
            self.image_files.add((st.st_dev, st.st_ino))
            self.add(ImageRef(real, rank=self.rank), info)
        return True


class _CaseInsensitive:
    """Find a DICOMDIR file ID under `root` whatever the case of the names on disk."""

    def __init__(self, root: Path):
        self.root = root
        self.real_root = root.resolve()  # what "inside the medium" is checked against
        self.refused = False
        self._names: dict[Path, tuple[set[str], dict[str, str]]] = {}

    def find(self, parts: list[str]) -> Path | None:
        self.refused = False
        if any(p in ("", ".", "..") or "/" in p or "\\" in p or ":" in p for p in parts):
            self.refused = True
            return None
        current = self.root
        for part in parts:
            exact, folded = self._listing(current)
            actual = part if part in exact else folded.get(part.casefold())
            if actual is None:
                return None
            current = current / actual
        try:
            real = current.resolve(strict=True)
        except OSError:
            return None
        if not real.is_relative_to(self.real_root):  # a symlink that leaves the medium
            self.refused = True
            return None
        return current if real.is_file() else None

    def _listing(self, folder: Path) -> tuple[set[str], dict[str, str]]:
        """The names in `folder` as they are, and by their case-folded form."""
        if folder not in self._names:
            try:
                names = os.listdir(folder)
            except OSError:
                names = []
            self._names[folder] = set(names), {n.casefold(): n for n in names}
        return self._names[folder]


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _file_id(record: Dataset | FileInstance) -> list[str]:
    """A directory record's (or FileInstance's) Referenced File ID as components."""
    value = record["ReferencedFileID"].value
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value.strip()]
    return [str(v).strip() for v in value]


IMAGE, REPORT, OTHER = "image", "report", "other"  # what a DICOM file holds, for the scan


def _header(path: Path, f: BinaryIO, bare: bool) -> tuple[DicomInfo | None, str]:
    """Header fields for sorting, and what the file holds: IMAGE (it has Rows/Columns),
    REPORT (a structured report of a class that can hold regions) or OTHER. `f` is `path`
    opened by the caller."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds: Dataset | _RawHeader | None = None if bare else _head_elements(f)
            if ds is None:
                ds = pydicom.dcmread(path, stop_before_pixels=True, force=True,
                                     defer_size=HEADER_DEFER)
            is_image = "Rows" in ds and "Columns" in ds
            if not is_image:  # no Rows/Columns: a report, an SR, a DICOMDIR under another name
                return None, REPORT if _text(ds, "SOPClassUID") in REPORT_CLASSES else OTHER
            return _info(ds), IMAGE
    except Exception:
        # a DICM file whose header is damaged is still listed: opening it explains the damage
        log.debug("header unreadable: %s", path.name, exc_info=True)
        return None, OTHER if bare else IMAGE


_LAST_TAG = 0x00280011  # Columns: every element the scan needs comes before it


def _head_elements(f: BinaryIO) -> _RawHeader | None:
    """The elements up to Columns, read with pydicom's element parser and left unconverted
    (a full `dcmread` of the header costs twice as much, mostly building what the scan does
    not use). None when the file is not plain DICM + file meta + a native-encoded dataset
    (deflated, odd meta): the caller then uses `dcmread`. `f`: the file, opened binary."""
    from pydicom.filereader import data_element_generator

    f.seek(0)  # within the 132 bytes the caller read: served from the file's buffer
    if f.read(132)[128:132] != b"DICM":
        return None
    meta = {e.tag: e for e in data_element_generator(
        f, False, True, stop_when=lambda tag, _vr, _n: tag.group != 2,
        defer_size=HEADER_DEFER) if isinstance(e, RawDataElement)}  # group 2 has no sequences
    syntax = meta.get(BaseTag(0x00020010))
    if syntax is None or not isinstance(syntax.value, bytes):
        return None
    uid = UID(syntax.value.decode("ascii", "replace").strip("\x00 "))
    try:
        if uid.is_deflated:
            return None
        encoding = (uid.is_implicit_VR, uid.is_little_endian)
    except ValueError:  # a private syntax pydicom does not know
        return None
    if meta:  # the meta group was read up to the first dataset element: go back to it
        last = max(meta.values(), key=lambda e: e.value_tell)
        f.seek(last.value_tell + last.length)
    elements = {e.tag: e for e in data_element_generator(
        f, encoding[0], encoding[1], stop_when=lambda tag, _vr, _n: tag > _LAST_TAG,
        defer_size=HEADER_DEFER)}
    return _RawHeader(elements, encoding)


class _RawHeader:
    """Unconverted header elements by tag. ASCII values (UIDs, dates, numbers, codes, most
    names) are decoded directly; anything else (other character sets, ISO 2022 escapes) goes
    through a pydicom Dataset, built only then."""

    def __init__(self, elements: dict[BaseTag, RawDataElement | DataElement],
                 encoding: tuple[bool, bool]) -> None:
        self._elements = elements
        self._encoding = encoding
        self._dataset: Dataset | None = None

    def __contains__(self, keyword: str) -> bool:
        return tag_for_keyword(keyword) in self._elements

    def text(self, keyword: str) -> str:
        tag = tag_for_keyword(keyword)
        raw = self._elements.get(BaseTag(tag)) if tag is not None else None
        if raw is None:
            return ""
        value = raw.value
        if isinstance(value, bytes) and value.isascii() and b"\x1b" not in value \
                and (keyword not in _CHARSET_KEYWORDS or b"\\" not in value):
            return value.decode("ascii").strip("\x00 ")
        if self._dataset is None:
            self._dataset = Dataset(self._elements)
            self._dataset.set_original_encoding(*self._encoding, None)
        converted = self._dataset.get(keyword)
        return "" if converted is None else str(converted).strip()


def _text(ds: Dataset | _RawHeader | _Records, keyword: str) -> str:
    """A header value as text. UIDs, dates, numbers and codes are ASCII by the standard:
    they are decoded from the raw bytes (pydicom's full conversion is most of a header
    read's time); names and descriptions go through pydicom for their character set."""
    try:
        if isinstance(ds, _RawHeader):
            return ds.text(keyword)
        if keyword not in _CHARSET_KEYWORDS and isinstance(ds, Dataset):
            raw = ds.get_item(keyword)
            if raw is None:
                return ""
            value = raw.value
            if isinstance(value, bytes):
                return value.decode("ascii", "replace").strip("\x00 ")
        value = ds.get(keyword)
        return "" if value is None else str(value).strip()
    except Exception:  # noqa: BLE001 - a damaged value (any kind) sorts as an empty one
        return ""


def _int(ds: Dataset | _RawHeader | _Records, keyword: str) -> int | None:
    text = _text(ds, keyword).split("\\")[0]
    try:
        return int(float(text)) if text else None
    except ValueError:
        return None


_CHARSET_KEYWORDS = {"PatientName", "StudyDescription", "SeriesDescription"}


def _info(ds: Dataset | _RawHeader) -> DicomInfo | None:
    if "StudyInstanceUID" not in ds and "SeriesInstanceUID" not in ds:
        return None
    info = _fields(ds)
    return replace(info, frames=info.frames or 1)


def _fields(ds: Dataset | _RawHeader | _Records) -> DicomInfo:
    """The study-tree fields of a header or of a DICOMDIR's records (anything with `get`)."""
    return DicomInfo(
        patient_name=_text(ds, "PatientName"), patient_id=_text(ds, "PatientID"),
        study_uid=_text(ds, "StudyInstanceUID"), study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"), study_description=_text(ds, "StudyDescription"),
        series_uid=_text(ds, "SeriesInstanceUID"), series_number=_int(ds, "SeriesNumber"),
        modality=_text(ds, "Modality"), series_description=_text(ds, "SeriesDescription"),
        instance=_int(ds, "InstanceNumber"), frames=_int(ds, "NumberOfFrames"))


class _Records:
    """`get(keyword)` over a FileInstance's records, like a Dataset's: the IMAGE record, then
    its SERIES, STUDY and PATIENT records (pydicom's FileInstance looks each keyword up from
    the lowest record to the highest)."""

    def __init__(self, instance: FileInstance) -> None:
        self._instance = instance

    def get(self, keyword: str) -> object:
        return self._instance[keyword].value if keyword in self._instance else None

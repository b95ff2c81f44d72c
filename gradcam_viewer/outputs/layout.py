"""Where the outputs of `explain` go: a mirror of the input tree under the output folder.

Every CD and PACS export repeats the same file names in each series folder (`IM000001`), so an
output is named by the input's path relative to the common root of the inputs, not by its bare
name. Names keep their letters; only what a file system refuses is replaced, the same on every
platform so that an output folder can be copied anywhere.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Suffixes dropped from an output's name (`chest.png` -> `chest.json`); any other suffix is part
# of the name, as in the UID-named files of some exports (`1.2.840.113619.2.55.3`).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp",
                            ".dcm", ".dicom", ".ima", ".img"})
# Characters Windows and common network shares refuse, plus path separators.
_REFUSED_CHARS = frozenset('<>:"/\\|?*')
_WINDOWS_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                               *(f"COM{i}" for i in "0123456789¹²³"),
                               *(f"LPT{i}" for i in "0123456789¹²³")})
MAX_NAME_BYTES = 150  # leaves room for "_<label>.png" within the usual 255-byte limit
MAX_LABEL_BYTES = 60


def safe_component(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """One path component every common file system accepts, as close to `name` as possible.

    Replaced: path separators, characters Windows refuses, control characters and undecodable
    bytes; trailing dots and spaces; '.' and '..'; reserved device names (CON, COM1...) get a
    '_'. A name longer than `max_bytes` in UTF-8 is cut and tagged with a hash of the original.
    """
    chars = ["_" if c in _REFUSED_CHARS or unicodedata.category(c) in ("Cc", "Cs") else c
             for c in name]
    text = "".join(chars)
    body = text.rstrip(" .")
    text = body + "_" * (len(text) - len(body))
    device = text.split(".", 1)[0].rstrip(" ").upper()
    if device in _WINDOWS_RESERVED:
        head = text.split(".", 1)[0]
        text = head + "_" + text[len(head):]
    if len(text.encode("utf-8")) > max_bytes:
        tag = "~" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cut = text.encode("utf-8")[: max_bytes - len(tag)].decode("utf-8", "ignore")
        text = safe_component(cut.rstrip(" ."), max_bytes) + tag
    return text or "_"


def output_stem(path: str | os.PathLike) -> str:
    """The name an input's outputs start with, in `explain` and in the window alike: its file
    name without an image suffix (`chest.png` -> `chest`; `1.2.840.5` keeps its tail), made
    safe. Undecodable bytes read as in `relative_posix` ('\\xNN', then '_xNN')."""
    name = os.fsencode(Path(path).name).decode("utf-8", "backslashreplace")
    stem = Path(name).stem if Path(name).suffix.lower() in IMAGE_SUFFIXES else name
    return safe_component(stem)


def name_part(text: str, max_bytes: int = MAX_LABEL_BYTES) -> str:
    """A label (or a DICOM object's name with its label) as the tail of an output name: safe,
    and with white space as '_', so that a model's 'class 0' needs no quotes in a shell."""
    return safe_component("_".join(text.split()), max_bytes)


def dicom_file_name(stem: str, name: str) -> str:
    """`<stem>_<name>.dcm` for a DICOM object ("SC_<label>", "PM_<label>", "SR")."""
    return f"{stem}_{name_part(name, MAX_LABEL_BYTES + 3)}.dcm"


def no_dicom_file_name(stem: str) -> str:
    """`<stem>_no_DICOM_objects.json`: written in place of an image's DICOM objects when none
    can be made, saying why, so that --resume knows the image was done."""
    return f"{stem}_no_DICOM_objects.json"


def common_root(paths: list[Path]) -> Path:
    """The deepest folder holding every input: a folder argument counts as itself, a file as
    its parent. On Windows, inputs on different drives have no common root: returns ''."""
    folders = [os.path.abspath(p if Path(p).is_dir() else Path(p).parent) for p in paths]
    if not folders:
        return Path.cwd()
    try:
        return Path(os.path.commonpath(folders))
    except ValueError:  # different drives
        return Path("")


def relative_posix(path: Path, root: Path) -> str:
    """`path` relative to `root`, with '/' separators; undecodable bytes shown as '\\xNN'."""
    absolute = Path(os.path.abspath(path))
    try:
        rel = absolute.relative_to(root) if str(root) else _without_anchor(absolute)
    except ValueError:
        try:  # one side given through a symbolic link (/var -> /private/var)
            rel = absolute.resolve().relative_to(Path(root).resolve())
        except (ValueError, OSError):
            rel = _without_anchor(absolute)
    text = PurePosixPath(*rel.parts).as_posix() if rel.parts else absolute.name
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _without_anchor(p: Path) -> Path:
    drive = p.drive.rstrip(":\\/").lstrip("\\/")
    return Path(*(([drive] if drive else []) + list(p.parts[1:])))


@dataclass(frozen=True)
class Planned:
    """One input and where its outputs go."""

    source: Path  # the input as given
    rel: str  # its path relative to the common root (POSIX), as written in the records
    folder: Path  # output folder (a mirror of the input's folder)
    base: str  # output name without suffix

    @property
    def json_path(self) -> Path:
        return self.folder / f"{self.base}.json"

    def overlay_path(self, label: str) -> Path:
        return self.folder / f"{self.base}_{name_part(label)}.png"


def plan_outputs(inputs: list[Path], root: Path, out: Path, labels: list[str]) -> list[Planned]:
    """Output places for `inputs` (order kept). The inputs are distinct files: the scanner
    already keeps each file once (by device and inode, so also through links).

    Output names are compared as a case-insensitive file system would (NFC, casefold). Two
    inputs whose names differ only by an image suffix (`IM1.png`, `IM1.dcm`) keep their full
    names; any clash left (names that differ only in case or in replaced characters) gets a
    short hash of the input's path.
    """
    drafts = []
    for p in inputs:
        rel = relative_posix(p, root)
        parts = rel.split("/")
        folder = out.joinpath(*(safe_component(x) for x in parts[:-1]))
        name = parts[-1]
        drafts.append((p, rel, folder, name, output_stem(name)))
    counts: dict[str, int] = {}
    for _p, _rel, folder, _name, base in drafts:
        counts[_fold(folder / base)] = counts.get(_fold(folder / base), 0) + 1
    taken: set[str] = set()
    planned: list[Planned] = []
    for p, rel, folder, name, base in drafts:
        if counts[_fold(folder / base)] > 1:
            base = safe_component(name)
        item = Planned(p, rel, folder, base)
        if _names(item, labels) & taken:
            tag = hashlib.sha256(rel.encode("utf-8", "surrogatepass")).hexdigest()[:8]
            item = Planned(p, rel, folder, f"{base}~{tag}")
        taken |= _names(item, labels)
        planned.append(item)
    return planned


def _fold(p: Path) -> str:
    return unicodedata.normalize("NFC", str(p)).casefold()


def _names(item: Planned, labels: list[str]) -> set[str]:
    return {_fold(item.json_path), *(_fold(item.overlay_path(lab)) for lab in labels)}

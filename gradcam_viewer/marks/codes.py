"""How a finding is coded in a DICOM structured report, and read back.

A finding whose meaning the DICOM standard codes (PS3.16) gets that code: SNOMED CT ("SCT")
where the standard lists one, the standard's own DICOM code ("DCM") for Infiltrate, which the
chest findings context group (CID 6104) codes only that way. The codes were looked up in
pydicom's transcription of PS3.16 (`pydicom.sr.codedict`, the context groups named in
`STANDARD`). Any other finding (one of the model's labels without a standard code, or text
typed by the radiologist) gets a code of our private scheme `PRIVATE_SCHEME` (PS3.16 8.2: a
designator starting with "99"), whose value is derived from the text and whose meaning is the
text itself: another program shows the meaning, and reading it back gives the text.

A whole image reviewed as normal ("no finding") is coded SCT 17621005 "Normal" (CID 222
Normality).

Reading accepts what other tools write: a code of `STANDARD` (by scheme and value) is read as
our label for it; any other code is read as its meaning (OHIF writes a free-text label as
CST4 "CORNERSTONEFREETEXT" with the text as meaning; 3D Slicer and highdicom users write their
own codes).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from pydicom.uid import generate_uid

PRIVATE_SCHEME = "99GCVIEW"  # gradcam-viewer's own codes (labels, methods, findings)
SNOMED_SCHEMES = ("SCT", "SRT")  # SRT: the designator older reports used for the same IDs


@dataclass(frozen=True)
class FindingCode:
    value: str  # Code Value
    scheme: str  # Coding Scheme Designator
    meaning: str  # Code Meaning
    where: str = ""  # where PS3.16 lists it (for the documentation)

    @property
    def key(self) -> tuple[str, str]:
        scheme = "SCT" if self.scheme in SNOMED_SCHEMES else self.scheme
        return scheme, self.value


# The ChestX-ray14 labels (NIH's names, which the bundled and CheXNet models use) whose meaning
# PS3.16 codes; the context group where each is listed. Not Cardiomegaly: the one code PS3.16
# gives it (SCT 287272002, CID 12248) is, in its own SNOMED table, "Enlarged septal foramen of
# heart"; a private code says what is meant without claiming a wrong concept.
STANDARD: dict[str, FindingCode] = {
    "Effusion": FindingCode("60046008", "SCT", "Pleural effusion", "CID 8134"),
    "Edema": FindingCode("19242006", "SCT", "Pulmonary edema", "CID 3700"),
    "Fibrosis": FindingCode("112674009", "SCT", "Fibrosis", "CID 6335"),
    "Infiltration": FindingCode("112121", "DCM", "Infiltrate", "CID 6104"),
    "Mass": FindingCode("4147007", "SCT", "Mass", "CID 6104"),
    "Nodule": FindingCode("27925004", "SCT", "Nodule", "CID 6104"),
    "Pneumothorax": FindingCode("36118008", "SCT", "Pneumothorax", "CID 6105"),
}
NO_FINDING_CODE = FindingCode("17621005", "SCT", "Normal", "CID 222")
_BY_CODE = {code.key: label for label, code in STANDARD.items()}


def code_for(finding: str) -> FindingCode:
    """The code a finding is written with (module docstring)."""
    finding = finding.strip()
    standard = STANDARD.get(finding)
    if standard is not None:
        return standard
    digest = hashlib.sha256(finding.encode("utf-8")).hexdigest()[:12].upper()
    return FindingCode(f"F{digest}", PRIVATE_SCHEME, finding[:64] or "Finding")


def finding_for(value: str, scheme: str, meaning: str) -> str:
    """The finding a code stands for: our label for a standard code, else its meaning."""
    key = ("SCT" if scheme in SNOMED_SCHEMES else scheme, value)
    return _BY_CODE.get(key, meaning.strip() or "Finding")


def is_no_finding(value: str, scheme: str) -> bool:
    return ("SCT" if scheme in SNOMED_SCHEMES else scheme, value) == NO_FINDING_CODE.key


# --- which mark a report's group is ------------------------------------------------------

def tracking_uid(mark_id: str) -> str:
    """The Tracking UID of a mark: a UUID-derived UID (PS3.5 B.2, "2.25.<the UUID as an
    integer>") for the viewer's ids, which are UUIDs, so that `mark_id_of` gives the id back."""
    try:
        return f"2.25.{uuid.UUID(hex=mark_id).int}"
    except ValueError:
        return str(generate_uid(entropy_srcs=[mark_id]))


def mark_id_of(uid: str) -> str | None:
    """The viewer's mark id a Tracking UID was made from (`tracking_uid`), if it was."""
    if not uid.startswith("2.25."):
        return None
    try:
        return uuid.UUID(int=int(uid[5:])).hex
    except ValueError:
        return None

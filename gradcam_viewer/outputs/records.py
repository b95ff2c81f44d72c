"""The records of one explained image, in the same words in every output (JSON, CSV, GUI export):
which image it is, which model made it and what its numbers are.

An image is named by its path relative to the common root of the inputs and, for DICOM, by its
Study, Series and SOP Instance UIDs and the frame, so that results can be joined back to the
archive. UIDs are identifiers under DICOM PS3.15: `include_ids=False` leaves them out, and they
are never logged. No patient-identifying field is written unless the caller asks for it
(`include_identifying=True`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcam_viewer.models.outputs import values_name, values_title

if TYPE_CHECKING:
    from gradcam_viewer.cam.result import ExplainResult
    from gradcam_viewer.imaging.image import LoadedImage
    from gradcam_viewer.models.identity import ModelIdentity

UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
# An OID-like run of at least five numbers ("1.2.840.113619.2.55"), as in files some PACS
# exports name by their SOP Instance UID.
_UID_LIKE = re.compile(r"(?<![\d.])[0-2](?:\.\d+){4,}")


def has_uid_like(rel: str) -> bool:
    """Whether a path seems to hold a DICOM UID, which --no-ids cannot take out of it."""
    return _UID_LIKE.search(rel) is not None


@dataclass(frozen=True)
class SourceId:
    path: str  # relative to the common root of the inputs, '/' separators
    frame: int  # 1-based, as DICOM numbers frames
    uids: dict[str, str] = field(default_factory=dict)  # DICOM only, unless ids are left out

    @property
    def key(self) -> tuple[str, int]:
        return self.path, self.frame

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "frame": self.frame, **self.uids}


def source_id(image: LoadedImage, rel: str, include_ids: bool = True) -> SourceId:
    """The identity of a loaded image, read from its own header."""
    uids: dict[str, str] = {}
    if include_ids and str(image.source_format).startswith("DICOM"):
        for keyword in UID_KEYWORDS:
            meta = image.metadata.get(keyword)
            uids[keyword] = meta.value if meta is not None else ""
    return SourceId(rel, int(image.frame) + 1, uids)


def source_from_record(record: dict[str, Any]) -> SourceId:
    """The identity written in a JSON record (used by --resume)."""
    uids = {k: str(record[k]) for k in UID_KEYWORDS if k in record}
    return SourceId(str(record["path"]), int(record["frame"]), uids)


def csv_header(labels: list[str], include_ids: bool = True,
               calls: bool = False) -> list[str]:
    """`path`, `frame`, the three UIDs (left out with include_ids=False), one column per label,
    `values`: what the numbers are ("probabilities" or "scores (not probabilities)"), and
    `ood_flagged`: true, false or "not calibrated" (the out-of-distribution warning), then,
    for a model with operating points (`calls`), `<label> call` per label: positive, negative,
    or empty where the label has no point.

    The columns are the same for every image so that files from several runs or from the
    window can be concatenated; the UID cells of a non-DICOM image are empty."""
    return ["path", "frame", *(UID_KEYWORDS if include_ids else ()), *labels, "values",
            "ood_flagged", *((f"{lab} call" for lab in labels) if calls else ())]


def calls_of(model: ModelIdentity, values: np.ndarray | Sequence[float]
             ) -> dict[str, bool | None] | None:
    """Each label's call at the model's operating points (None: the model has none)."""
    points = model.operating_points
    if points is None:
        return None
    return points.calls(model.labels, [float(v) for v in values])


def csv_row(source: SourceId, values: np.ndarray | Sequence[float], include_ids: bool = True,
            kind: str = "probabilities", ood: dict[str, Any] | None = None,
            calls: Mapping[str, bool | None] | None = None) -> list[str]:
    """One image's row; `ood` is its "ood" record (None: not calibrated), `calls` its calls
    (`calls_of`) when the model has operating points."""
    from gradcam_viewer.trust.ood import csv_flag

    ids = [source.uids.get(k, "") for k in UID_KEYWORDS] if include_ids else []
    words = {True: "positive", False: "negative", None: ""}
    return [source.path, str(source.frame), *ids, *(f"{float(p):.6f}" for p in values),
            values_title(kind), csv_flag(ood),
            *(words[c] for c in (calls or {}).values())]


def prediction_record(source: SourceId, image: LoadedImage, model: ModelIdentity,
                      result: ExplainResult, include_identifying: bool = False) -> dict[str, Any]:
    """The JSON of one image: the same from the command and from the window. The values are
    stored under "scores" instead of "probabilities" when the model's outputs are not known to
    be probabilities; the out-of-distribution record ({"score", "percentile", "flagged",
    "calibrated"}, trust/ood.py) under "ood" when the result has one; for a model with
    operating points, each label's call under "calls" (true: positive, false: negative, null:
    no point for the label) and what the points are under "operating_points"."""
    kind = model.output_kind
    evidence = zip(model.labels, result.has_evidence, strict=True)
    record = {
        **source.as_json(),
        "format": image.source_format,
        values_name(kind): {lab: round(float(p), 6)
                            for lab, p in zip(model.labels, result.probabilities, strict=True)},
        "output_kind": kind,
        "output_activation": model.output_activation,
        "layer": result.layer,
        "method": result.method,
        "score": result.score,
        "model": model.as_record(),
        "disclaimer": model.disclaimer,
        "no_positive_evidence": [lab for lab, has in evidence if not has],
    }
    if result.ood is not None:
        record["ood"] = result.ood
    calls = calls_of(model, result.probabilities)
    if calls is not None and model.operating_points is not None:
        record["calls"] = calls
        record["operating_points"] = model.operating_points.summary()
    if include_identifying:
        record["metadata"] = image.visible_metadata(include_identifying=True)
    return record

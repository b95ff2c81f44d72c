"""`explain --resume`: what an earlier run into the same folder already finished.

An image counts as done when its JSON and every requested overlay exist and the JSON says it
was made from the same input and frame by the same model and method; its CSV row can then be
rebuilt from the JSON without explaining the image again. Every output is written atomically,
so an existing file is a complete one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gradcam_viewer.outputs.export import read_csv
from gradcam_viewer.outputs.layout import Planned
from gradcam_viewer.outputs.records import SourceId, csv_row, source_from_record

if TYPE_CHECKING:
    from gradcam_viewer.models.identity import ModelIdentity


def rows_already_written(csv_path: Path, header: list[str], force: bool,
                         resume: bool) -> set[tuple[str, int]]:
    """(path, frame) of the rows an earlier run wrote. Raises ValueError for a second run
    without --force or --resume, and for a resume whose columns differ."""
    if not csv_path.exists() or force:
        return set()
    if not resume:
        raise ValueError(f"'{csv_path}' already exists; use --force to overwrite or --resume "
                         "to complete that run")
    found, rows = read_csv(csv_path)
    if found != header:
        raise ValueError(f"'{csv_path}' has other columns than this run would write (another "
                         "model, or --no-ids differs); use another --out or --force")
    return {(row[0], int(row[1])) for row in rows if len(row) > 1 and row[1].isdigit()}


def finished(item: Planned, labels: list[str], frame: int, method: str, model: ModelIdentity,
             include_ids: bool) -> tuple[SourceId, dict[str, Any]] | None:
    """The source and JSON of an image an earlier run finished the same way (same input and
    frame, method, model name and weights), else None."""
    if not item.json_path.is_file() or not all(item.overlay_path(lab).is_file()
                                               for lab in labels):
        return None
    try:
        record = json.loads(item.json_path.read_text(encoding="utf-8"))
        source = source_from_record(record)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    made_by = record.get("model") or {}
    same = (source.key == (item.rel, frame) and record.get("method") == method
            and made_by.get("name") == model.name and made_by.get("sha256") == model.sha256)
    if str(record.get("format", "")).startswith("DICOM"):
        same = same and ("SOPInstanceUID" in record) == include_ids
    return (source, record) if same else None


def row_from_record(source: SourceId, record: dict[str, Any], labels: list[str],
                    include_ids: bool) -> list[str]:
    """The CSV row the earlier run would have written for this image."""
    values = record.get("probabilities") or record.get("scores") or {}
    calls = record.get("calls")
    return csv_row(source, [values[lab] for lab in labels], include_ids,
                   str(record.get("output_kind", "probabilities")), record.get("ood"),
                   {lab: calls.get(lab) for lab in labels} if isinstance(calls, dict) else None)

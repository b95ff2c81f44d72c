"""Which model made a result, and how its numbers read: what every output (JSON, CSV, PNG text,
DICOM objects) records about the model. The window has it without the Keras model (its worker
holds that), so records are made from this, never from a `ModelBundle`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gradcam_viewer.models.operating_points import OperatingPoints
from gradcam_viewer.models.outputs import output_kind_of


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    labels: tuple[str, ...]
    version: str
    sha256: str | None  # of the weights file, from the manifest (None: no manifest)
    output_kind: str  # "probabilities", "logits" or "scores" (models/outputs.py)
    output_activation: str
    disclaimer: str
    synthetic_demo: bool
    operating_points: OperatingPoints | None = None  # thresholds set on local cases

    @classmethod
    def of(cls, name: str, labels: list[str] | tuple[str, ...],
           manifest: Mapping[str, object]) -> ModelIdentity:
        """From a resolved manifest (models/bundle.py fills in the output kind)."""
        sha256 = manifest.get("weights_sha256")
        return cls(name=name, labels=tuple(labels), version=str(manifest.get("version", "")),
                   sha256=None if sha256 is None else str(sha256),
                   output_kind=output_kind_of(manifest),
                   output_activation=str(manifest.get("output_activation", "unknown")),
                   disclaimer=str(manifest.get("disclaimer", "")),
                   synthetic_demo=bool(manifest.get("synthetic_demo")),
                   operating_points=OperatingPoints.of(manifest))

    def as_record(self) -> dict[str, str | bool | None]:
        """The "model" entry of a JSON record."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256,
                "synthetic_demo": self.synthetic_demo}

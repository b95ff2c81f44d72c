"""What the window shows at one moment, as one frozen value.

Exports, the DICOM/PACS build and the grid read this instead of the window: they see the image,
its explanation, the finding picked and how it is drawn, and nothing else. It can be handed to
another thread (the DICOM build runs on one): the session never changes an image or a result in
place, it replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.render.overlay import OverlayStyle
from gradcam_viewer.session.results import ExplainResult, ModelInfo
from gradcam_viewer.session.view import ViewState


@dataclass(frozen=True)
class Snapshot:
    image: LoadedImage | None = None
    result: ExplainResult | None = None  # the explanation of `image`, if it is in
    model: ModelInfo | None = None
    label: int | None = None  # the finding picked in the list (a model output index)
    order: tuple[int, ...] = ()  # output indices in the order the findings list shows them
    style: OverlayStyle = field(default_factory=OverlayStyle)
    overlay_on: bool = True
    view: ViewState = field(default_factory=ViewState)
    files: tuple[Path, ...] = ()  # the files opened together (Page Up / Page Down)

    @property
    def names(self) -> list[str]:
        return list(self.model.labels) if self.model is not None else []

    def evidence_label(self) -> int | None:
        """The picked finding when its heatmap can be drawn: the result is in, it has that
        output, and it found positive evidence for it."""
        label, result = self.label, self.result
        if (result is None or self.image is None or label is None or not self.overlay_on
                or label >= len(result.probabilities) or not result.has_evidence[label]):
            return None
        return label

    def no_evidence_note(self) -> str:
        """Why the picked finding has no heatmap, when the reason is its own (empty if not)."""
        label, result, model = self.label, self.result, self.model
        if (result is None or model is None or label is None or label >= len(model.labels)
                or label >= len(result.has_evidence) or result.has_evidence[label]):
            return ""
        return f"No positive evidence for {model.labels[label]}"

    def info_line(self) -> str:
        """The line under the image: file, size, format, frame, pixel size, inversion, and the
        picked finding's value with the layer and score it was explained at."""
        parts = []
        image = self.image
        if image is not None:
            h, w = image.size
            parts.append(f"{image.path.name}  {w}\u00d7{h}  {image.source_format}")
            if image.n_frames > 1:
                parts.append(f"frame {image.frame + 1}/{image.n_frames}")
            parts.append(image.spacing_label())
            if self.view.inverted:
                parts.append("inverted")
        if self.result is not None and self.model is not None and self.label is not None:
            parts.append(f"{self.model.labels[self.label]} "
                         f"p={self.result.probabilities[self.label]:.3f}"
                         f"  [{self.result.layer}, {self.result.score}]")
        return "   ".join(parts)

    def window_text(self) -> str:
        """Window/level for the status bar: the LUT's name, or width and level."""
        window = self.view.window
        if window is None or self.image is None or self.image.is_color:
            return ""
        if window.lut_index is not None:
            return window.label()
        return f"W {window.width:.0f}  L {window.center:.0f}"

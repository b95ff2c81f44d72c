"""What the model's numbers mean: probabilities, logits (with the function that makes them
probabilities), or scores of unknown meaning. Never call a logit a probability.

`output_kind` in a resolved manifest is one of:
- "probabilities": the model ends in a sigmoid/softmax; its outputs are shown as they are;
- "logits": the model ends in a linear layer and the manifest names `output_activation`
  (sigmoid for multi-label, softmax for one-of-N), which the viewer applies;
- "scores": nothing says how to turn them into probabilities: shown as raw scores.
Grad-CAM targets the logit in every case (the engine peels a final sigmoid/softmax).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from gradcam_viewer.models.errors import ModelLoadError

if TYPE_CHECKING:
    from gradcam_viewer.models.manifest import Manifest

ACTIVATIONS = ("sigmoid", "softmax")
OUTPUT_KINDS = ("probabilities", "logits", "scores")
SCORES_TITLE = "scores (not probabilities)"


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # exact sigmoid, no overflow


def softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    p: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return p


def resolve_output(final_activation: str, manifest: Manifest,
                   from_manifest: bool) -> tuple[str, str]:
    """(output_kind, output_activation) for a model whose last layer applies `final_activation`.

    A model ending in sigmoid/softmax outputs probabilities whatever the manifest says about
    the kind (a manifest that calls them logits is an error: the activation would be applied
    twice). A linear model needs `output_kind: logits` and an activation to get probabilities.
    """
    kind = manifest.get("output_kind")
    act = manifest.get("output_activation")
    if final_activation in ACTIVATIONS:
        if kind == "logits":
            raise ModelLoadError(f"The manifest says the outputs are logits, but the model "
                                 f"already ends in a {final_activation}: its outputs are "
                                 "probabilities (set output_kind to \"probabilities\").")
        return "probabilities", final_activation
    if kind == "logits" and act in ACTIVATIONS:
        return "logits", str(act)
    if kind == "probabilities" and from_manifest:
        return "probabilities", str(act or "unknown")  # the manifest's word for it
    return "scores", "none" if final_activation == "linear" else "unknown"


def output_kind_of(manifest: Mapping[str, object]) -> str:
    """A resolved manifest's output kind; "scores" when it does not say (nothing is known)."""
    return str(manifest.get("output_kind", "scores"))


def to_values(raw: np.ndarray, kind: str, activation: str) -> np.ndarray:
    """The model's outputs ([..., L]) as the numbers to show: probabilities, or raw scores."""
    raw = np.asarray(raw, np.float32)
    if kind != "logits":
        return raw
    fn = sigmoid if activation == "sigmoid" else softmax
    return fn(raw).astype(np.float32)


def values_name(kind: str) -> str:
    """The JSON key and CSV note: `probabilities`, or `scores` when they are not."""
    return "scores" if kind == "scores" else "probabilities"


def value_word(kind: str) -> str:
    """One shown value in words: logits are shown through their activation, so only `scores`
    are not probabilities."""
    return "score" if kind == "scores" else "probability"


def values_title(kind: str) -> str:
    return SCORES_TITLE if kind == "scores" else "probabilities"


def describe_output(manifest: Manifest) -> str:
    """One line for the model card."""
    kind = output_kind_of(manifest)
    act = manifest.get("output_activation", "unknown")
    if kind == "probabilities":
        return f"probabilities (the model ends in a {act})"
    if kind == "logits":
        return (f"logits, shown as probabilities through a {act} "
                f"({'multi-label' if act == 'sigmoid' else 'one of N'}); Grad-CAM uses the logit")
    return SCORES_TITLE + ": nothing says how the model's outputs become probabilities"

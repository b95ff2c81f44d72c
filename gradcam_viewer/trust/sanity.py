"""Do the heatmaps depend on what the model learned? Cascading randomisation (Adebayo et al.,
NeurIPS 2018) on a copy of the weights.

From the top down (the head after the target layer, then the target layer's block, then each
block before it) the layers are re-initialised with their own initialisers, cumulatively, and
the maps recomputed. Per step: the Spearman rank correlation of the absolute maps and SSIM
(Wang et al. 2004, 11x11 Gaussian window, sigma 1.5) of the maps scaled to [0, 1], each against
the original maps of the same image and label (the label the original model scores highest).
The model is flagged when, after the head and the target layer's block are randomised, the
maps still correlate >= 0.5 with the originals. The loaded model is never changed: the copy is
`keras.models.clone_model` and the original weights' hash is checked afterwards.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcam_viewer.cam.heatmap import normalize_heatmaps, upsample_heatmap
from gradcam_viewer.trust.evaluate import rankdata

FLAG_CORRELATION = 0.5
SSIM_SIZE = 64  # maps are compared for SSIM at this resolution (at least the window)


# --- the two similarity measures (numpy; the tests hold them to scipy / a naive formula) ----

def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the average ranks; 0 when either input is constant."""
    ra, rb = rankdata(np.ravel(a)), rankdata(np.ravel(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation with the 1-D window `g` along both axes."""
    n = len(g)
    rows = sum(g[i] * img[i: img.shape[0] - n + 1 + i] for i in range(n))
    return sum(g[j] * rows[:, j: rows.shape[1] - n + 1 + j] for j in range(n))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Mean SSIM over the valid window positions (Wang et al. 2004, K1 0.01, K2 0.03)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    g = gaussian_window()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    saa = _filter_valid(a * a, g) - mu_a ** 2
    sbb = _filter_valid(b * b, g) - mu_b ** 2
    sab = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2)
    return float(np.mean(num / den))


# --- the randomisation ---------------------------------------------------------------------

def weights_hash(model: Any) -> str:
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def steps_of(model: Any, target_path: tuple) -> list[tuple[str, list]]:
    """(name, layers) to randomise, top down: the head, the target's block, earlier blocks.

    A block is a layer with a kernel plus the weighted layers without one (normalisation)
    that follow it; layers come in the model's graph order, nested models flattened."""
    from gradcam_viewer.cam.graph import iter_layers

    layers = [path[-1] for path, _ in iter_layers(model)]
    target = target_path[-1]
    cut = next((i for i, layer in enumerate(layers) if layer is target), len(layers) - 1)
    head = [layer for layer in layers[cut + 1:] if layer.weights]
    blocks: list[list] = []
    for layer in layers[: cut + 1]:
        if not layer.weights:
            continue
        if hasattr(layer, "kernel") or not blocks:
            blocks.append([layer])
        else:
            blocks[-1].append(layer)
    steps = [("head", head)] if head else []
    for block in reversed(blocks):
        steps.append(("+".join(layer.name for layer in block), block))
    return steps


def reinitialise(layer: Any) -> None:
    """Fresh values from the layer's own initialisers (trainable weights only; moving
    statistics stay), as Adebayo et al. re-initialise."""
    import keras

    for var in layer.trainable_weights:
        short = var.name.split("/")[-1].split(":")[0]
        init = getattr(layer, f"{short}_initializer", None)
        if short == "depthwise_kernel":
            init = getattr(layer, "depthwise_initializer", init)
        if init is None:
            std = float(np.std(keras.ops.convert_to_numpy(var))) or 0.05
            init = keras.initializers.RandomNormal(stddev=std)
        var.assign(keras.ops.cast(init(tuple(var.shape), dtype=var.dtype), var.dtype))


@dataclass
class SanityStep:
    name: str
    spearman: float
    ssim: float


@dataclass
class SanityResult:
    layer: str
    method: str
    images: int
    steps: list[SanityStep] = field(default_factory=list)
    flag_step: int = 0  # index of the step after which the rule is read
    weights_unchanged: bool = True

    @property
    def rule_step(self) -> SanityStep | None:
        """The step the flag rule reads (the last one when the target's block has no
        weights to randomise)."""
        return self.steps[min(self.flag_step, len(self.steps) - 1)] if self.steps else None

    @property
    def flagged(self) -> bool:
        step = self.rule_step
        return step is not None and step.spearman >= FLAG_CORRELATION

    def verdict(self) -> str:
        step = self.rule_step
        if step is None:
            return "nothing to randomise"
        if self.flagged:
            return (f"FLAGGED: after randomising up to '{step.name}' the maps still correlate "
                    f"{step.spearman:.2f} (>= {FLAG_CORRELATION}) with the originals: they "
                    "show the input more than what the model learned")
        return (f"passed: after randomising up to '{step.name}' the maps correlate "
                f"{step.spearman:.2f} (< {FLAG_CORRELATION}) with the originals")


def _maps_for(explainer: Any, batch: np.ndarray, labels: np.ndarray, method: str) -> np.ndarray:
    heat = explainer.explain(batch, method=method).heatmaps
    return heat[np.arange(len(labels)), labels]  # [N, h, w]


def cascading_randomisation(model: Any, batch: np.ndarray, layer: str | None = None,
                            method: str = "gradcam", max_steps: int | None = None,
                            seed: int = 0, progress: Any = None,
                            output: str | None = None) -> SanityResult:
    """Run the check on `batch` (prepared model inputs). `model` is left unchanged. `output`:
    the model output holding the class scores (the manifest's "output"), as for `explain`."""
    import keras

    from gradcam_viewer.cam import Explainer

    before = weights_hash(model)
    original = Explainer(model, layer=layer, method=method, output=output)
    first = original.explain(batch)
    labels = np.argmax(first.probabilities, axis=1)
    ref_maps = first.heatmaps[np.arange(len(labels)), labels]
    keras.utils.set_random_seed(seed)
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    copy = Explainer(clone, layer=original.layer_name, method=method, output=output)
    steps = steps_of(clone, copy.path)
    if max_steps is not None:
        steps = steps[:max_steps]
    result = SanityResult(original.layer_name, method, len(batch))
    result.flag_step = 1 if steps and steps[0][0] == "head" else 0
    h = min(SSIM_SIZE * 2, max(SSIM_SIZE, ref_maps.shape[1]))
    w = min(SSIM_SIZE * 2, max(SSIM_SIZE, ref_maps.shape[2]))
    ref_norm, _ = normalize_heatmaps(ref_maps)
    for name, layers in steps:
        for item in layers:
            reinitialise(item)
        maps = _maps_for(copy, batch, labels, method)
        norm, _ = normalize_heatmaps(maps)
        rho = [spearman(np.abs(a), np.abs(b)) for a, b in zip(ref_maps, maps, strict=True)]
        sim = [ssim(upsample_heatmap(a, (h, w)), upsample_heatmap(b, (h, w)))
               for a, b in zip(ref_norm, norm, strict=True)]
        result.steps.append(SanityStep(name, float(np.mean(rho)), float(np.mean(sim))))
        if progress:
            progress(name)
    result.weights_unchanged = weights_hash(model) == before
    return result


def table_rows(result: SanityResult) -> list[list[str]]:
    rows = [["step", "randomised up to", "spearman", "ssim"]]
    for i, step in enumerate(result.steps, start=1):
        rows.append([str(i), step.name, f"{step.spearman:.4f}", f"{step.ssim:.4f}"])
    return rows

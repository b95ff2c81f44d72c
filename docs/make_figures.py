"""docs/phantom_heatmaps.png: held-out phantoms with the demo model's Grad-CAM for each present
finding, the finding's ground-truth mask outlined in green. Run: .venv/bin/python docs/make_figures.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gradcam_viewer.cam import Explainer
from gradcam_viewer.demo.phantoms import LABELS, make_phantoms
from gradcam_viewer.demo.train import phantom_batch
from gradcam_viewer.models import load_model_bundle
from gradcam_viewer.render import OverlayStyle, composite

OUT = Path(__file__).resolve().parent / "phantom_heatmaps.png"


def outline(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def main() -> None:
    bundle = load_model_bundle()
    explainer = Explainer(bundle.model, layer=bundle.target_layer, output=bundle.output)
    size = bundle.input_size[0]
    ph = make_phantoms(40, seed=20261126, size=size)
    result = explainer.explain(phantom_batch(ph.images))
    tiles = []
    for k, name in enumerate(LABELS):  # one example per finding, first positive image
        i = int(np.flatnonzero(ph.labels[:, k])[0])
        display = np.rint(ph.images[i] * 255).astype(np.uint8)
        heat = result.display_heatmap(i, k, (size, size))
        rgb = composite(display, heat, OverlayStyle(opacity=0.5, threshold=0.2))
        rgb[outline(ph.masks[i, k])] = (0, 255, 0)
        tile = Image.fromarray(np.hstack([np.repeat(display[..., None], 3, -1), rgb]))
        draw = ImageDraw.Draw(tile)
        draw.text((6, 4), f"{name}  p={result.probabilities[i, k]:.2f}", fill=(255, 255, 0))
        tiles.append(np.asarray(tile))
    grid = np.vstack([np.hstack(tiles[r:r + 2]) for r in range(0, len(tiles), 2)])
    Image.fromarray(grid).save(OUT, optimize=True)
    print(OUT)


if __name__ == "__main__":
    main()

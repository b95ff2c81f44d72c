"""The text burned into a Secondary Capture: which finding, its value, the method and model, and
the notice. The lines are made by one function so that a test can check that no patient field is
ever among them (text drawn as pixels cannot be searched for in the file)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gradcam_viewer.models.outputs import value_word


def burn_in_lines(label: str, value: float, kind: str, method: str, model_name: str,
                  model_version: str, demo: bool) -> list[str]:
    """`kind`: the model's output kind (logits are shown through their activation)."""
    word = value_word(kind)
    version = f" {model_version}" if model_version else ""
    notice = ("SYNTHETIC DEMO MODEL - NOT FOR DIAGNOSTIC USE" if demo
              else "Research model - not for diagnostic use")
    return [label, f"{word} {value:.3f}", f"{method} heatmap",
            f"Model: {model_name}{version}", notice]


def burn_in(rgb: np.ndarray, lines: list[str]) -> np.ndarray:
    """`lines` written at the top left of `rgb` (uint8 [H, W, 3]) on a dark band, at a size
    that stays legible on a full-resolution radiograph."""
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    size = max(12, round(min(image.size) / 40))
    font = ImageFont.load_default(size=size)
    x = y = float(max(4, size // 2))
    for line in lines:
        box = draw.textbbox((x, y), line, font=font)
        draw.rectangle((box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3), fill=(0, 0, 0))
        draw.text((x, y), line, font=font, fill=(255, 255, 255))
        y = box[3] + size // 3
    return np.asarray(image)

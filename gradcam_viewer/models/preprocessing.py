"""Display pixels to model input. One function serves training, the CLI and the viewer, so
what the model was trained on is exactly what it is given."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
KINDS = ("zscore", "fixed", "imagenet", "unit")


def resize_display(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """8-bit display pixels ([H, W] or [H, W, 3]) to the model's size, bilinear (Pillow)."""
    if pixels.shape[:2] == (height, width):
        return pixels
    img = Image.fromarray(np.ascontiguousarray(pixels))
    return np.asarray(img.resize((width, height), Image.Resampling.BILINEAR))


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """float [H, W, C] with the model's channel count (grey repeated, colour averaged)."""
    arr = pixels.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] == channels:
        return arr
    if channels == 1:
        return arr.mean(axis=-1, keepdims=True)
    return np.repeat(arr[..., :1], channels, axis=-1)


def normalise(arr: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """arr: float [..., H, W, C] in 0..255."""
    kind = spec.get("kind", "unit")
    if kind == "unit":
        return arr / 255.0
    if kind == "zscore":  # per image (the course's samplewise centre + std normalisation)
        axes = tuple(range(arr.ndim - 3, arr.ndim))
        mean = arr.mean(axis=axes, keepdims=True)
        std = arr.std(axis=axes, keepdims=True)
        return (arr - mean) / np.maximum(std, 1e-6)
    if kind == "fixed":
        return (arr - float(spec["mean"])) / float(spec["std"])
    if kind == "imagenet":  # keras.applications densenet/'torch' mode
        return (arr / 255.0 - IMAGENET_MEAN[: arr.shape[-1]]) / IMAGENET_STD[: arr.shape[-1]]
    raise ValueError(f"unknown preprocessing '{kind}'")


def prepare_pixels(pixels: np.ndarray, spec: dict[str, Any], height: int, width: int,
                   channels: int) -> np.ndarray:
    """8-bit display pixels to a batch of one, [1, height, width, channels] float32."""
    arr = to_channels(resize_display(pixels, height, width), channels)
    return normalise(arr[None], spec).astype(np.float32)

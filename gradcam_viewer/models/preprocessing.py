"""Display pixels to model input. One function serves training, the CLI and the viewer, so
what the model was trained on is exactly what it is given.

Presets (the manifest's `preprocessing.kind`), on 8-bit pixels 0..255:
- `tf`: to [-1, 1], as `keras.applications` Xception, InceptionV3, MobileNet(V2), ResNetV2...
- `torch`: /255, then ImageNet mean/std per channel, as `keras.applications.densenet`
  (`imagenet` is the older name of the same preset and is kept for existing manifests).
- `caffe`: RGB to BGR, then the ImageNet BGR means subtracted, as VGG16/19 and ResNet50.
- `none`: raw 0..255, for models that rescale inside (EfficientNet, ConvNeXt, MobileNetV3).
- `unit`: /255 to [0, 1]; `zscore`: per image; `fixed`: the manifest's `mean` and `std`.
A grey image fed to a 3-channel model is repeated into all three channels (so `caffe`'s BGR
swap changes nothing but the per-channel means still apply).
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

import numpy as np
import numpy.typing as npt
from PIL import Image


class ReferenceImages(TypedDict, total=False):
    """Where a `fixed` mean and std were measured."""

    folder: str
    images: int


class Preprocessing(TypedDict):
    """The manifest's `preprocessing`: a preset `kind`, and for `fixed` its mean and std."""

    kind: str
    mean: NotRequired[float | list[float]]
    std: NotRequired[float | list[float]]
    reference: NotRequired[ReferenceImages]

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)
KINDS = ("tf", "torch", "caffe", "none", "unit", "zscore", "fixed", "imagenet")
ALIASES = {"imagenet": "torch"}
PRESET_TITLES = {
    "tf": "tf: scaled to [-1, 1] (Xception, Inception, MobileNet, ResNetV2)",
    "torch": "torch: ImageNet mean/std (DenseNet)",
    "caffe": "caffe: BGR, ImageNet means subtracted (VGG, ResNet50)",
    "none": "none: raw 0-255 (model rescales itself: EfficientNet, ConvNeXt)",
    "unit": "unit: scaled to [0, 1]",
    "zscore": "zscore: each image to mean 0, std 1",
    "fixed": "fixed: a given mean and std",
}


def resize_display(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """8-bit display pixels ([H, W] or [H, W, 3]) to the model's size, bilinear (Pillow)."""
    if pixels.shape[:2] == (height, width):
        return pixels
    img = Image.fromarray(np.ascontiguousarray(pixels))
    return np.asarray(img.resize((width, height), Image.Resampling.BILINEAR))


def to_grey(pixels: np.ndarray) -> np.ndarray:
    """8-bit RGB to 8-bit luminance (Pillow's ITU-R 601 "L"); grey stays as it is."""
    if pixels.ndim == 2 or pixels.shape[-1] == 1:
        return pixels
    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., :3])).convert("L"))


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """float [H, W, C] with the model's channel count (grey repeated, colour averaged)."""
    arr = pixels.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] == channels:
        return arr
    if channels == 1:
        grey: np.ndarray = arr.mean(axis=-1, keepdims=True)
        return grey
    return np.repeat(arr[..., :1], channels, axis=-1)


def _per_channel(values: npt.NDArray[np.float32], channels: int) -> npt.NDArray[np.float32]:
    return values[:channels] if channels <= len(values) else np.resize(values, channels)


def normalise(arr: npt.NDArray[np.float32], spec: Preprocessing) -> np.ndarray:
    """arr: float [..., H, W, C] in 0..255."""
    kind = ALIASES.get(spec.get("kind", "unit"), spec.get("kind", "unit"))
    channels = arr.shape[-1]
    if kind == "unit":
        return arr / 255.0
    if kind == "none":
        return arr
    if kind == "tf":
        return arr / 127.5 - 1.0
    if kind == "torch":
        return (arr / 255.0 - _per_channel(IMAGENET_MEAN, channels)) / _per_channel(
            IMAGENET_STD, channels)
    if kind == "caffe":
        bgr = arr[..., ::-1] if channels == 3 else arr
        return bgr - _per_channel(CAFFE_MEAN_BGR, channels)
    if kind == "zscore":  # per image (the course's samplewise centre + std normalisation)
        axes = tuple(range(arr.ndim - 3, arr.ndim))
        mean: npt.NDArray[np.float32] = arr.mean(axis=axes, keepdims=True)
        std: npt.NDArray[np.float32] = arr.std(axis=axes, keepdims=True)
        return (arr - mean) / np.maximum(std, 1e-6)
    if kind == "fixed":  # a number, or one per channel
        mean = np.asarray(spec["mean"], np.float32)
        std = np.asarray(spec["std"], np.float32)
        return (arr - mean) / std
    raise ValueError(f"unknown preprocessing '{kind}'")


def describe(spec: Preprocessing) -> str:
    """One line for the model card: which preset, and for `fixed` where its numbers come from."""
    kind = spec.get("kind", "unit")
    if kind == "imagenet":
        return "imagenet (= torch: ImageNet mean/std)"
    if kind == "fixed":
        text = f"fixed: mean {spec.get('mean')}, std {spec.get('std')}"
        ref = spec.get("reference")
        if isinstance(ref, dict):
            text += (f", measured over {ref.get('images', '?')} reference images in "
                     f"'{ref.get('folder', '?')}'")
        return text
    return PRESET_TITLES.get(kind, kind)


def prepare_pixels(pixels: np.ndarray, spec: Preprocessing, height: int, width: int,
                   channels: int, colour: str = "rgb") -> np.ndarray:
    """8-bit display pixels to a batch of one, [1, height, width, channels] float32.

    colour "grey": a colour image is first turned into luminance (then repeated for a
    3-channel model, like every grey radiograph); "rgb": colour images keep their channels.
    """
    if colour == "grey":
        pixels = to_grey(pixels)
    arr = to_channels(resize_display(pixels, height, width), channels)
    return normalise(arr[None], spec).astype(np.float32)

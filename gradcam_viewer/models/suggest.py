"""Suggestions for setting up a model that has no manifest (GUI set-up dialog, CLI `manifest`).

Read from the model's structure only: a Rescaling/Normalization layer near the input suggests
the `none` preset (the model scales its own input); a base named like a Keras Applications
family suggests that family's preset; the last layer's activation suggests the output kind.
No Qt here; the GUI asks the worker to compute these off the GUI thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

# (pattern on the lower-cased model name, keras.applications module, preset); first match wins.
FAMILIES: tuple[tuple[str, str, str], ...] = (
    (r"mobilenet_?v3", "mobilenet_v3", "none"),
    (r"mobilenet_?v2", "mobilenet_v2", "tf"),
    (r"mobilenet", "mobilenet", "tf"),
    (r"resnet\d+_?v2", "resnet_v2", "tf"),
    (r"resnet50", "resnet50", "caffe"),
    (r"resnet\d+", "resnet", "caffe"),
    (r"densenet", "densenet", "torch"),
    (r"efficientnet_?v2|efficientnetv2", "efficientnet_v2", "none"),
    (r"efficientnet", "efficientnet", "none"),
    (r"convnext", "convnext", "none"),
    (r"vgg16", "vgg16", "caffe"),
    (r"vgg19", "vgg19", "caffe"),
    (r"inception_?resnet", "inception_resnet_v2", "tf"),
    (r"inception", "inception_v3", "tf"),
    (r"xception", "xception", "tf"),
    (r"nasnet", "nasnet", "tf"),
)
NEAR_INPUT = 4  # leaf layers after the input that count as "near" it
# Layer names only a keras.applications family uses (all must be present; first match wins),
# for a model built flat on a base (`keras.Model(base.input, head)`, as the CheXNet course
# does), where the base's own name is lost. Families that rescale inside are found earlier.
LAYER_SIGNATURES: tuple[tuple[frozenset[str], str, str], ...] = (
    (frozenset({"conv2_block1_preact_bn", "post_bn"}), "resnet_v2", "tf"),
    (frozenset({"pool2_conv", "conv2_block1_0_bn"}), "densenet", "torch"),
    (frozenset({"conv1_conv", "conv2_block1_0_conv"}), "resnet", "caffe"),
    (frozenset({"expanded_conv_depthwise", "block_1_expand"}), "mobilenet_v2", "tf"),
    (frozenset({"conv_dw_1", "conv_pw_1"}), "mobilenet", "tf"),
    (frozenset({"block1_conv1_act", "block14_sepconv2"}), "xception", "tf"),
    (frozenset({"mixed_5b", "conv_7b"}), "inception_resnet_v2", "tf"),
    (frozenset({"mixed10"}), "inception_v3", "tf"),
    (frozenset({"block5_conv4", "block1_conv1"}), "vgg19", "caffe"),
    (frozenset({"block5_conv3", "block1_conv1"}), "vgg16", "caffe"),
    (frozenset({"stem_conv1", "stem_bn1"}), "nasnet", "tf"),
)


@dataclass
class Suggestions:
    """What the set-up dialog pre-fills, with the reasons it shows."""

    n_outputs: int
    height: int | None  # None: the model accepts any size; the manifest must give one
    width: int | None
    channels: int
    preset: str
    preset_reason: str
    output_kind: str  # "probabilities" or "logits"
    activation: str  # sigmoid/softmax
    final_activation: str
    layers: list[str]
    default_layer: str
    name: str
    path: str = ""
    sha256: str = ""
    notes: list[str] = field(default_factory=list)


def family_of(name: str) -> tuple[str, str] | None:
    """(keras.applications module, preset) for a model named like a family, else None."""
    low = name.lower()
    for pattern, module, preset in FAMILIES:
        if re.search(pattern, low):
            return module, preset
    return None


def _nested(layer: keras.layers.Layer) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def _submodels(model: keras.Model) -> list[keras.Model]:
    found: list[keras.Model] = []
    for layer in model.layers:
        if _nested(layer):
            found.append(layer)
            found.extend(_submodels(layer))
    return found


def suggest_preset(model: keras.Model) -> tuple[str, str]:
    """(preset, why)."""
    import keras

    from gradcam_viewer.cam.graph import iter_layers

    for layer in [path[-1] for path, _ in iter_layers(model)][:NEAR_INPUT]:
        if isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)):
            return "none", (f"the model scales its own input ({type(layer).__name__} layer "
                            f"'{layer.name}' near the input)")
    for sub in [model, *_submodels(model)]:
        family = family_of(sub.name)
        if family:
            return family[1], (f"'{sub.name}' looks like keras.applications.{family[0]}, whose "
                               f"preprocess_input is '{family[1]}'")
    names = {path[-1].name for path, _ in iter_layers(model)}
    for signature, module, preset in LAYER_SIGNATURES:
        if signature <= names:
            return preset, (f"its layers ({', '.join(sorted(signature))}) are those of "
                            f"keras.applications.{module}, whose preprocess_input is '{preset}'")
    return "unit", "nothing in the model says; [0, 1] is a common choice"


def final_activation(model: keras.Model, index: int = 0) -> str:
    """The activation the model's output (flat output `index`) goes through last: sigmoid,
    softmax, linear, or other."""
    import keras

    from gradcam_viewer.cam.graph import final_layer

    layer = final_layer(model, index)
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if type(layer).__name__ in ("Sigmoid", "Softmax"):  # keras.ops.sigmoid/softmax in a graph
        return type(layer).__name__.lower()
    fn = getattr(layer, "activation", None)
    name = getattr(fn, "__name__", None) if fn is not None else None
    if name in ("sigmoid", "softmax", "linear"):
        return str(name)
    if isinstance(layer, keras.layers.Dense) and fn is None:
        return "linear"
    return str(name or type(layer).__name__)


def suggest_output(model: keras.Model) -> tuple[str, str]:
    """(output_kind, activation). A linear last layer: logits; sigmoid for one or many labels
    (multi-label, the usual radiograph classifier), softmax for exactly two (one-of-two)."""
    final = final_activation(model)
    if final in ("sigmoid", "softmax"):
        return "probabilities", final
    n = int(model.outputs[0].shape[-1])
    return "logits", "softmax" if n == 2 else "sigmoid"


def candidate_layers(model: keras.Model) -> tuple[list[str], str]:
    """The 4-D feature maps Grad-CAM can use, and the engine's default among them."""
    from gradcam_viewer.cam.errors import CamError
    from gradcam_viewer.cam.graph import is_spatial, iter_layers, output_shape, resolve_target

    names = [n for path, n in iter_layers(model) if is_spatial(output_shape(path[-1]))]
    try:
        default = resolve_target(model, None)[1]
    except CamError:  # no feature map at all: the bundle reports it
        default = names[-1] if names else ""
    return names, default


def suggest(model: keras.Model, name: str = "") -> Suggestions:
    shape = tuple(model.inputs[0].shape)
    preset, why = suggest_preset(model)
    kind, act = suggest_output(model)
    layers, default = candidate_layers(model)
    return Suggestions(
        n_outputs=int(model.outputs[0].shape[-1]),
        height=shape[1], width=shape[2], channels=int(shape[3] or 3),
        preset=preset, preset_reason=why, output_kind=kind, activation=act,
        final_activation=final_activation(model), layers=layers, default_layer=default,
        name=name or model.name)

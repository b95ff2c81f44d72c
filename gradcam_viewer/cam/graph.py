"""Walk a Keras 3 model's graph: find the target layer (also inside nested models), run the
model while tapping that layer's output and the score before the final sigmoid/softmax.

Nothing here changes or clones the user's model: the forward pass re-runs the model's own
layer graph (`Functional._run_through_graph`, the mechanism `Functional.call` and
`clone_model` use) and swaps in small wrappers for the target and the output layer.
Inputs and outputs may be a tensor, a list or a dict: the engine works on the flat lists
(`model.inputs`, `model.outputs`) and picks one output by its index there.

Private Keras APIs used here (tests/test_keras_private_api.py guards each one, and
pyproject.toml pins keras to the tested minor range): `Function._run_through_graph`,
`Function._nodes_by_depth`, `Function._outputs_struct`, `KerasTensor._keras_history`,
`Operation._inbound_nodes`, `Node.input_tensors`, `Layer._call_context_args`,
`Sequential._functional`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import keras

from gradcam_viewer.cam.errors import CamError

if TYPE_CHECKING:
    import tensorflow as tf

PEELABLE = ("sigmoid", "softmax")
PASS_THROUGH = (keras.layers.Dropout, keras.layers.SpatialDropout1D)

# The layers from the model down to the target, one per level of nesting.
LayerPath = tuple["keras.layers.Layer", ...]


class Node(Protocol):
    """One call of an operation in a Keras graph (Keras's private `Node`): what it was given."""

    input_tensors: list[keras.KerasTensor]


def graph_of(model: keras.Model) -> keras.Model | None:
    """The functional graph that runs `model`, or None for a subclassed model."""
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None:
            raise CamError("The Sequential model has no input shape, so its graph is unknown; "
                           "build it with keras.Input(shape=...) first.")
        return graph
    if hasattr(model, "_run_through_graph") and hasattr(model, "_nodes_by_depth"):
        return model
    return None


def _functional(model: keras.Model) -> keras.Model:
    """The graph of a model `check_model` accepted (a subclassed model has none)."""
    graph = graph_of(model)
    if graph is None:
        raise CamError("Subclassed Keras models cannot be explained: save the model as a "
                       "Functional or Sequential model.")
    return graph


def _is_nested(layer: keras.Operation) -> bool:
    return isinstance(layer, keras.Model) and graph_of_or_none(layer) is not None


def graph_of_or_none(model: keras.Model) -> keras.Model | None:
    try:
        return graph_of(model)
    except CamError:
        return None


def iter_layers(model: keras.Model, prefix: LayerPath = ()) -> Iterator[tuple[LayerPath, str]]:
    """Every leaf layer in graph order as (path of layers, "outer/inner" name)."""
    for layer in model.layers:
        path = prefix + (layer,)
        if isinstance(layer, keras.layers.InputLayer):
            continue  # the image itself is no feature map
        if _is_nested(layer):
            yield from iter_layers(layer, path)
        else:
            yield path, "/".join(item.name for item in path)


def output_shape(layer: keras.layers.Layer) -> tuple[int | None, ...] | None:
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError, RuntimeError):
        return None


def is_spatial(shape: tuple[int | None, ...] | None) -> bool:
    """4-D with height and width > 1 (or unknown, as in a model with a free input size)."""
    if shape is None or len(shape) != 4:
        return False
    return all(d is None or d > 1 for d in shape[1:3])


def resolve_target(model: keras.Model, name: str | None) -> tuple[LayerPath, str]:
    """The path to the target layer: the user's choice, else the last spatial layer."""
    layers = list(iter_layers(model))
    if name:
        wanted = [(p, n) for p, n in layers if n == name]
        if not wanted:  # a bare inner name, e.g. "conv5_block16_concat"
            wanted = [(p, n) for p, n in layers if p[-1].name == name]
        if not wanted:
            # A nested model itself may be named as the target.
            wanted = [(p, n) for p, n in _iter_all(model) if n == name or p[-1].name == name]
        if not wanted:
            raise CamError(f"The model has no layer named '{name}'.")
        if len(wanted) > 1:
            options = ", ".join(n for _, n in wanted)
            raise CamError(f"The layer name '{name}' is ambiguous: {options}.")
        path, full = wanted[0]
        if not is_spatial(output_shape(path[-1])):
            raise CamError(f"Layer '{full}' has output shape {output_shape(path[-1])}; Grad-CAM "
                           "needs a 4-D feature map (batch, height, width, channels).")
        return path, full
    for path, full in reversed(layers):
        if is_spatial(output_shape(path[-1])):
            return path, full
    raise CamError("The model has no layer with a 4-D output of height and width > 1, so there "
                   "is no feature map for Grad-CAM.")


def _iter_all(model: keras.Model, prefix: LayerPath = ()) -> Iterator[tuple[LayerPath, str]]:
    for layer in model.layers:
        path = prefix + (layer,)
        yield path, "/".join(item.name for item in path)
        if _is_nested(layer):
            yield from _iter_all(layer, path)


def output_names(model: keras.Model) -> list[str]:
    """A name per flat output: the dict key for dict-structured outputs, else the layer's."""
    paths = [p for p, _ in keras.tree.flatten_with_path(_functional(model)._outputs_struct)]
    names: list[str] = []
    for out, p in zip(_functional(model).outputs, paths, strict=True):
        key = p[-1] if p and isinstance(p[-1], str) else None
        names.append(key or _producer(out)[0].name)
    return names


def output_index(model: keras.Model, name: str | None = None) -> int:
    """The flat index of the output to explain: the only one, else the one named `name`
    (a dict key or the name of the layer that produces it)."""
    outputs = _functional(model).outputs
    names = output_names(model)
    if name:
        layers = [_producer(t)[0].name for t in outputs]
        for candidates in (names, layers):
            if name in candidates:
                return candidates.index(name)
        raise CamError(f"The model has no output named '{name}'; its outputs are: "
                       f"{', '.join(names)}.")
    if len(outputs) != 1:
        raise CamError(f"The model has {len(outputs)} outputs ({', '.join(names)}); name the one "
                       "that holds the class scores in the manifest's \"output\" field.")
    return 0


def check_model(model: keras.Model, output: str | None = None) -> int:
    """One image input and one chosen output of class scores: the only shape of model the
    viewer explains. Returns the chosen output's flat index."""
    if not isinstance(model, keras.Model):
        raise CamError("This is not a Keras model.")
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError) as exc:
        raise CamError("The model has no defined inputs or outputs (a subclassed model that "
                       "was never built cannot be explained).") from exc
    if graph_of(model) is None:
        raise CamError("Subclassed Keras models cannot be explained: save the model as a "
                       "Functional or Sequential model.")
    if len(inputs) != 1:
        raise CamError(f"The model has {len(inputs)} inputs; only single-image models are "
                       "supported.")
    index = output_index(model, output)
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or shape[-1] not in (1, 3, None):
        raise CamError(f"The model's input has shape {shape}; an image input is "
                       "(batch, height, width, 1 or 3 channels).")
    if len(outputs[index].shape) != 2:
        raise CamError(f"The model's output has shape {tuple(outputs[index].shape)}; class "
                       "scores are (batch, labels).")
    return index


def _producer(tensor: keras.KerasTensor) -> tuple[keras.Operation, Node]:
    op, node_index, _ = tensor._keras_history
    return op, op._inbound_nodes[node_index]


def _tensor_index(tensor: keras.KerasTensor) -> int:
    """Which of its producer's (flat) outputs `tensor` is."""
    return int(tensor._keras_history[2])


def final_layer(model: keras.Model, index: int = 0) -> keras.Operation:
    """The layer that produces flat output `index`, looked up inside nested models."""
    out = _functional(model).outputs[index]
    op = _producer(out)[0]
    while _is_nested(op):
        out = _functional(op).outputs[_tensor_index(out)]
        op = _producer(out)[0]
    return op


def score_kind(model: keras.Model, index: int = 0) -> str:
    """'logit' when the final activation of flat output `index` can be peeled, else 'output'."""
    out = _functional(model).outputs[index]
    return peel_kind(_producer(out)[0], _tensor_index(out))


def peel_kind(op: keras.Operation, index: int = 0) -> str:
    """What the output layer lets us differentiate: 'logit' when an activation can be peeled.
    `index`: for a nested model, which of its outputs is used."""
    if _is_nested(op):
        return score_kind(op, index)
    name = getattr(getattr(op, "activation", None), "__name__", "")
    if isinstance(op, keras.layers.Activation) and name in PEELABLE:
        return "logit"
    if isinstance(op, keras.layers.Dense) and name in PEELABLE and _plain_dense(op):
        return "logit"
    return "output"


def _plain_dense(op: keras.layers.Layer) -> bool:
    return not getattr(op, "lora_enabled", False) and not getattr(op, "quantization_mode", None)


@dataclass
class Taps:
    """What a tapped forward pass collects."""

    on_target: Callable[[tf.Tensor], tf.Tensor]
    target: tf.Tensor | None = None
    logits: tf.Tensor | None = None
    hits: int = field(default=0)
    # Optional second tap (the out-of-distribution features): a top-level layer of `model`.
    feature_op: keras.layers.Layer | None = None
    features: tf.Tensor | None = None


def run_tapped(model: keras.Model, inputs: tf.Tensor, path: LayerPath, taps: Taps,
               peel: int | None = 0) -> object:
    """Forward pass of `model` in inference mode that records the target's output and the
    pre-activation score of flat output `peel` (None: peel nothing). Returns the outputs in
    the model's own structure (tensor, list or dict)."""
    graph = _functional(model)
    out_tensor = graph.outputs[peel] if peel is not None else None
    out_op = _producer(out_tensor)[0] if out_tensor is not None else None

    def op_fn(op: keras.Operation) -> Callable[..., object]:
        on_path = bool(path) and op is path[0]
        is_out = op is out_op
        if taps.feature_op is not None and op is taps.feature_op and not on_path:
            def call_feature(*args: object, **kwargs: object) -> tf.Tensor:
                taps.features = _inference(op)(*args, **kwargs)
                return taps.features

            return call_feature
        if on_path and len(path) == 1:
            def call_target(*args: object, **kwargs: object) -> tf.Tensor:
                y = taps.on_target(_inference(op)(*args, **kwargs))
                taps.target = y
                taps.hits += 1
                return y

            return call_target
        if (on_path or is_out) and _is_nested(op):
            sub = path[1:] if on_path else ()
            inner = _tensor_index(out_tensor) if is_out else None
            return lambda *args, **kwargs: run_tapped(op, args[0], sub, taps, peel=inner)
        if is_out:
            return lambda *args, **kwargs: _peel(op, taps, *args, **kwargs)
        return _inference(op)

    return graph._run_through_graph(inputs, operation_fn=op_fn)


def _inference(op: keras.Operation) -> Callable[..., tf.Tensor]:
    """`op` called with training=False where it takes it (Dropout, BatchNormalization, nested
    models), as `Functional.call(training=False)` would inject it."""
    if "training" in getattr(op, "_call_context_args", ()):
        return lambda *args, **kwargs: op(*args, **{**kwargs, "training": False})
    call: Callable[..., tf.Tensor] = op
    return call


def _peel(op: keras.layers.Layer, taps: Taps, *args: tf.Tensor, **kwargs: object) -> tf.Tensor:
    if peel_kind(op) == "logit":
        act = op.activation
        if isinstance(op, keras.layers.Activation):
            logits = args[0]
        else:
            logits = keras.ops.matmul(args[0], op.kernel)
            if op.bias is not None:
                logits = keras.ops.add(logits, op.bias)
        taps.logits = logits
        return act(logits)
    y = _inference(op)(*args, **kwargs)
    taps.logits = y
    return y


def closed_form_head(model: keras.Model, path: LayerPath,
                     index: int = 0) -> keras.layers.Dense | None:
    """The Dense layer of a global-average-pooling + Dense head sitting right on the target.

    For such a head d score_l / d A[i, j, k] = W[k, l] / (h * w) exactly, so no backward pass
    is needed at all. Returns that Dense layer, or None when the head is anything else.
    """
    graph = _functional(model)
    op, node = _producer(graph.outputs[index])
    if _is_nested(op):
        return None
    if not isinstance(op, keras.layers.Dense) or not _plain_dense(op):
        return None
    act = getattr(op.activation, "__name__", "")
    if act not in PEELABLE + ("linear",):
        return None
    tensor = node.input_tensors[0]
    op, node = _producer(tensor)
    while isinstance(op, PASS_THROUGH):
        tensor = node.input_tensors[0]
        op, node = _producer(tensor)
    if not isinstance(op, keras.layers.GlobalAveragePooling2D) or op.keepdims:
        return None
    if op.data_format != "channels_last":
        return None
    if not _produced_by(node.input_tensors[0], path):
        return None
    return _producer(graph.outputs[index])[0]


def _produced_by(tensor: keras.KerasTensor, path: LayerPath) -> bool:
    op, _ = _producer(tensor)
    if op is not path[0]:
        return False
    if len(path) == 1:
        return True
    return _produced_by(_functional(op).outputs[_tensor_index(tensor)], path[1:])


def flat_outputs(outputs: object) -> list[tf.Tensor]:
    """A model's outputs (tensor, list or dict) in the order of `model.outputs`."""
    return list(keras.tree.flatten(outputs))


def resolve_feature_layer(model: keras.Model, name: str | None, target: LayerPath,
                          target_name: str) -> tuple[str, keras.layers.Layer | None]:
    """The layer tapped for the pooled out-of-distribution features: (its name, the layer to
    tap, or None when it is the target itself). Another layer must be a top-level layer with
    a 4-D output."""
    if not name or name == target_name or (len(target) == 1 and name == target[0].name):
        return target_name, None
    try:
        layer = _functional(model).get_layer(name)
    except ValueError as exc:
        raise CamError(f"The model has no top-level layer named '{name}' for the "
                       "out-of-distribution features.") from exc
    if _is_nested(layer) or not is_spatial(output_shape(layer)):
        raise CamError(f"Layer '{name}' has no 4-D feature map to pool for the "
                       "out-of-distribution features.")
    return name, layer

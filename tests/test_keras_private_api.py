"""The private Keras APIs cam/graph.py relies on, each checked for presence AND shape, so that a
Keras upgrade which renames or reshapes one fails here, loudly and by name, instead of making
the engine silently wrong. pyproject.toml pins keras to the minor range these pass on."""

import inspect

import keras
import pytest
from keras.src.ops.function import Function
from keras.src.ops.node import Node

from gradcam_viewer.cam import graph

TESTED_MINOR = (3, 15)


def _model():
    inp = keras.Input((8, 8, 1), name="img")
    base_in = keras.Input((8, 8, 1))
    base = keras.Model(base_in, keras.layers.Conv2D(2, 3, name="conv")(base_in), name="base")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(base(inp))
    x = keras.layers.Dropout(0.5, name="drop")(x)
    return keras.Model([inp], {"scores": keras.layers.Dense(2, name="dense")(x)}), base


def test_keras_version_is_the_pinned_minor():
    major, minor = (int(v) for v in keras.__version__.split(".")[:2])
    assert (major, minor) == TESTED_MINOR, (
        f"keras {keras.__version__} is not the tested {TESTED_MINOR}: run this file and "
        "tests/test_model_structures.py, then move the pin in pyproject.toml")


def test_run_through_graph_signature_and_behaviour():
    params = inspect.signature(Function._run_through_graph).parameters
    assert list(params)[:3] == ["self", "inputs", "operation_fn"], list(params)
    assert params["operation_fn"].default is not inspect.Parameter.empty
    model, _ = _model()
    seen = []

    def op_fn(op):
        seen.append(op.name)
        return op

    x = keras.ops.ones((1, 8, 8, 1))
    out = model._run_through_graph(x, operation_fn=op_fn)
    assert isinstance(out, dict) and list(out) == ["scores"]  # packed in the model's structure
    assert tuple(out["scores"].shape) == (1, 2)
    assert seen == ["base", "gap", "drop", "dense"]  # every operation once, in graph order


def test_nodes_by_depth_and_node_fields():
    model, _ = _model()
    by_depth = model._nodes_by_depth
    assert isinstance(by_depth, dict) and all(isinstance(k, int) for k in by_depth)
    nodes = [n for ns in by_depth.values() for n in ns]
    assert all(isinstance(n, Node) for n in nodes)
    for node in nodes:
        for attr in ("operation", "is_input", "input_tensors", "outputs", "arguments"):
            assert hasattr(node, attr), f"keras Node lost '{attr}'"
        assert isinstance(node.input_tensors, (list, tuple))


def test_keras_history_and_inbound_nodes():
    model, base = _model()
    out = model.outputs[0]
    history = out._keras_history
    assert len(history) == 3
    op, node_index, tensor_index = history
    assert op is model.get_layer("dense") and isinstance(node_index, int) and tensor_index == 0
    node = op._inbound_nodes[node_index]
    assert isinstance(node, Node) and node.outputs[tensor_index] is out
    # the nested base: called once, so its call node is the first and only one
    gap_node = graph._producer(model.outputs[0])[1]
    drop = graph._producer(gap_node.input_tensors[0])
    gap = graph._producer(drop[1].input_tensors[0])
    producer, _ = graph._producer(gap[1].input_tensors[0])
    assert producer is base and len(base._inbound_nodes) == 1


def test_outputs_struct_keeps_the_users_structure():
    model, _ = _model()
    assert isinstance(model._outputs_struct, dict) and list(model._outputs_struct) == ["scores"]
    listed = keras.Model([model.inputs[0]], [model.outputs[0]])
    assert isinstance(listed._outputs_struct, list)
    assert graph.output_names(model) == ["scores"] and graph.output_names(listed) == ["dense"]


def _identity_model():
    i = keras.Input((2,))
    return keras.Model(i, keras.layers.Dense(2)(i))


@pytest.mark.parametrize("make", [lambda: keras.layers.Dropout(0.5),
                                  keras.layers.BatchNormalization, _identity_model],
                         ids=["Dropout", "BatchNormalization", "Functional"])
def test_call_context_args_name_training(make):
    layer = make()
    args = layer._call_context_args
    assert "training" in args, f"{type(layer).__name__}._call_context_args = {args!r}"


def test_training_false_reaches_every_layer_without_breaking_any():
    """graph._inference passes training=False to each layer that lists it: a layer whose call
    has no `training` argument (Dense) must accept it, Dropout must then be the identity."""
    x = keras.ops.ones((4, 16))
    assert tuple(keras.layers.Dense(2)(x, training=False).shape) == (4, 2)
    drop = graph._inference(keras.layers.Dropout(0.9))
    assert bool(keras.ops.all(drop(x) == x))


def test_sequential_functional_graph():
    seq = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)])
    functional = seq._functional
    assert hasattr(functional, "_run_through_graph") and hasattr(functional, "_nodes_by_depth")
    assert graph.graph_of(seq) is functional

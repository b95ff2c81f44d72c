"""The engine: every label's heatmap from one forward pass.

Built once per model. The gradients of all labels with respect to the target layer come from
one Jacobian over the labels (only the layers after the target are differentiated), or, for a
global-average-pooling + Dense head, from the closed form W / (h * w) with no backward pass.

The same computation runs compiled (a `tf.function`, traced once per method: seconds for a deep
model, then fast) or eagerly (no tracing, slower per image). The viewer explains its first
images eagerly and swaps the compiled function in once `trace` has run in the background.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter

import keras
import numpy as np
import tensorflow as tf

from gradcam_viewer.cam import graph
from gradcam_viewer.cam.errors import CamError
from gradcam_viewer.cam.methods import METHODS, CamMethod
from gradcam_viewer.cam.result import Explanation

# What `_compute` returns: the outputs [N, L], the maps after ReLU [N, L, h, w], the pooled
# out-of-distribution features [N, C].
Computed = tuple[tf.Tensor, tf.Tensor, tf.Tensor]


class Explainer:
    """Grad-CAM family for one Keras model; reuse it for every image."""

    def __init__(self, model: keras.Model, layer: str | None = None, method: str = "gradcam",
                 closed_form: bool = True, output: str | None = None,
                 feature_layer: str | None = None) -> None:
        # `output`: which output holds the class scores when the model has several.
        self.output_index = graph.check_model(model, output)
        if method not in METHODS:
            raise CamError(f"Unknown CAM method '{method}'; choose one of {', '.join(METHODS)}.")
        self.model = model
        self.method = method
        self.path, self.layer_name = graph.resolve_target(model, layer)
        self.score = graph.score_kind(model, self.output_index)
        # closed_form=False forces the Jacobian (the tests compare the two).
        self.head = (graph.closed_form_head(model, self.path, self.output_index)
                     if closed_form else None)
        shape = tuple(model.inputs[0].shape)
        self.input_shape = shape[1:]
        self._signature = [tf.TensorSpec((None,) + shape[1:], tf.float32)]
        self._fns: dict[str, tf.types.experimental.PolymorphicFunction] = {}
        self._traced: set[str] = set()  # methods whose compiled function is ready
        self._lock = threading.Lock()
        self.runs: Counter[str] = Counter()  # "eager" / "compiled": how each explain ran
        # The layer whose pooled output is `Explanation.features` (default: the target).
        self.feature_layer, self._feature_op = graph.resolve_feature_layer(
            model, feature_layer, self.path, self.layer_name)
        self._forward_fn: tf.types.experimental.PolymorphicFunction | None = None

    @property
    def closed_form(self) -> bool:
        return self.head is not None

    @property
    def feature_channels(self) -> int | None:
        """How many features `Explanation.features` has per image (None: not known before a
        run), which a stored out-of-distribution reference must match."""
        op = self._feature_op if self._feature_op is not None else self.path[-1]
        shape = graph.output_shape(op)
        return int(shape[-1]) if shape and shape[-1] is not None else None

    def explain(self, batch: np.ndarray, method: str | None = None,
                eager: bool = False) -> Explanation:
        """`eager=True` runs the computation without its compiled function (no tracing)."""
        method = method or self.method
        if method not in METHODS:
            raise CamError(f"Unknown CAM method '{method}'; choose one of {', '.join(METHODS)}.")
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim == 3:
            batch = batch[None]
        if eager:
            probs, cams, pooled = self._compute(tf.constant(batch), METHODS[method])
        else:
            probs, cams, pooled = self._compiled(method)(tf.constant(batch))
            with self._lock:
                self._traced.add(method)
        self.runs["eager" if eager else "compiled"] += 1
        return Explanation(
            probabilities=probs.numpy(),
            heatmaps=cams.numpy(),
            layer_name=self.layer_name,
            method=method,
            score=self.score,
            features=pooled.numpy(),
        )

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """The compiled plain forward pass (the baseline the benchmark compares with)."""
        if self._forward_fn is None:
            def forward(x: tf.Tensor) -> tf.Tensor:
                outputs = tf.nest.flatten(self.model(x, training=False))
                return outputs[self.output_index]

            self._forward_fn = tf.function(forward, input_signature=self._signature,
                                           autograph=False)
        scores: np.ndarray = self._forward_fn(tf.constant(np.asarray(batch, np.float32))).numpy()
        return scores

    def is_traced(self, method: str) -> bool:
        """Whether `method`'s compiled function is ready (explain would not trace)."""
        with self._lock:
            return method in self._traced

    def trace(self, method: str) -> None:
        """Trace `method`'s compiled function now and run it once on zeros, from any thread;
        until both are done, explain eagerly (tracing and eager execution both need the GIL:
        run one at a time if you can). The first run optimises the graph (about 2 s for
        DenseNet121 at 320x320): done here, it is not the first image explained compiled."""
        compiled = self._compiled(method)
        compiled.get_concrete_function(*self._signature)
        shape = self._signature[0].shape
        compiled(tf.zeros([1, *shape[1:]], tf.float32))
        with self._lock:
            self._traced.add(method)

    def _compute(self, x: tf.Tensor, fn: CamMethod) -> Computed:
        """The whole explanation: run eagerly as it is, or traced inside `_compiled`."""
        acts, grads, probs, feats = self._acts_and_grads(x)
        pooled = tf.reduce_mean(tf.cast(feats, tf.float32), axis=(1, 2))  # OOD features
        return probs, tf.nn.relu(fn(acts, grads)), pooled

    def _compiled(self, method: str) -> tf.types.experimental.PolymorphicFunction:
        with self._lock:
            if method not in self._fns:
                fn = METHODS[method]
                # autograph=False: plain tracing; nothing here branches on tensor values
                self._fns[method] = tf.function(lambda x: self._compute(x, fn),
                                                input_signature=self._signature,
                                                autograph=False)
            return self._fns[method]

    def _acts_and_grads(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        # Only the target is watched: nothing before it is recorded (no variables are needed).
        # The closed form needs no tape at all (which saves its bookkeeping when eager).
        tape = (tf.GradientTape(persistent=False, watch_accessed_variables=False)
                if self.head is None else None)
        with tape if tape is not None else contextlib.nullcontext():

            def watch(y: tf.Tensor) -> tf.Tensor:
                if tape is not None:
                    tape.watch(y)
                return y

            taps = graph.Taps(on_target=watch, feature_op=self._feature_op)
            outputs = graph.run_tapped(self.model, x, self.path, taps, peel=self.output_index)
            probs = graph.flat_outputs(outputs)[self.output_index]
        if taps.hits != 1:
            raise CamError(f"Layer '{self.layer_name}' is used {taps.hits} times in the model; "
                           "choose a layer that is called once.")
        acts = tf.cast(taps.target, tf.float32)
        if self.head is not None:
            kernel = tf.cast(tf.convert_to_tensor(self.head.kernel), tf.float32)  # [C, L]
            hw = tf.cast(tf.shape(acts)[1] * tf.shape(acts)[2], tf.float32)
            per_label = tf.transpose(kernel)[None, :, None, None, :] / hw  # [1, L, 1, 1, C]
            n = tf.shape(acts)[0]
            labels = tf.shape(kernel)[1]
            grads = tf.broadcast_to(
                per_label, tf.concat([[n, labels], tf.shape(acts)[1:]], axis=0))
        else:
            assert tape is not None  # made above whenever there is no closed form
            logits = tf.cast(taps.logits, tf.float32)
            grads = tape.batch_jacobian(logits, taps.target)  # [N, L, h, w, C]
            grads = tf.cast(grads, tf.float32)
        feats = acts if self._feature_op is None else taps.features
        return acts, grads, tf.cast(probs, tf.float32), feats

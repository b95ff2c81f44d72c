"""CAM methods as small weight functions of (activations, gradients).

Shapes: activations `acts` [N, h, w, C]; gradients `grads` [N, L, h, w, C] (d score_l / d acts).
Each returns the map before ReLU, [N, L, h, w]. Written with TensorFlow ops so that they run
inside the engine's compiled graph; `tf` is imported lazily to keep this module light.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf

# (activations, gradients) -> maps before ReLU
CamMethod = Callable[["tf.Tensor", "tf.Tensor"], "tf.Tensor"]
EPS_GRADCAMPP = 1e-6  # the constant pytorch-grad-cam uses in eq. 19


def gradcam(acts: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
    """Selvaraju et al.: channel weights are the spatial mean of the gradients."""
    import tensorflow as tf

    alpha = tf.reduce_mean(grads, axis=(2, 3))
    return tf.einsum("nhwc,nlc->nlhw", acts, alpha)


def gradcam_plus_plus(acts: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
    """Chattopadhay et al. eq. 19, as pytorch-grad-cam computes it (exp(score) trick)."""
    import tensorflow as tf

    g2 = tf.square(grads)
    g3 = g2 * grads
    sum_a = tf.reduce_sum(acts, axis=(1, 2))[:, None, None, None, :]
    aij = g2 / (2.0 * g2 + sum_a * g3 + EPS_GRADCAMPP)
    aij = tf.where(grads != 0, aij, tf.zeros_like(aij))
    weights = tf.reduce_sum(tf.nn.relu(grads) * aij, axis=(2, 3))
    return tf.einsum("nhwc,nlc->nlhw", acts, weights)


def hirescam(acts: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
    """Draelos & Carin: element-wise gradient x activation, faithful to the score."""
    import tensorflow as tf

    return tf.reduce_sum(grads * acts[:, None], axis=-1)


def layercam(acts: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
    """Jiang et al.: positive gradients weight each location."""
    import tensorflow as tf

    return tf.reduce_sum(tf.nn.relu(grads) * acts[:, None], axis=-1)


METHODS: dict[str, CamMethod] = {
    "gradcam": gradcam,
    "gradcam++": gradcam_plus_plus,
    "hirescam": hirescam,
    "layercam": layercam,
}

METHOD_TITLES = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "hirescam": "HiResCAM",
    "layercam": "LayerCAM",
}

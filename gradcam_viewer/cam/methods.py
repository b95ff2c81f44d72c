"""CAM methods as small weight functions of (activations, gradients).

Shapes: activations `A` [N, h, w, C]; gradients `G` [N, L, h, w, C] (d score_l / d A).
Each returns the map before ReLU, [N, L, h, w]. Written with TensorFlow ops so that they run
inside the engine's compiled graph; `tf` is imported lazily to keep this module light.
"""

from __future__ import annotations

from collections.abc import Callable

EPS_GRADCAMPP = 1e-6  # the constant pytorch-grad-cam uses in eq. 19


def gradcam(A, G):
    """Selvaraju et al.: channel weights are the spatial mean of the gradients."""
    import tensorflow as tf

    alpha = tf.reduce_mean(G, axis=(2, 3))
    return tf.einsum("nhwc,nlc->nlhw", A, alpha)


def gradcam_plus_plus(A, G):
    """Chattopadhay et al. eq. 19, as pytorch-grad-cam computes it (exp(score) trick)."""
    import tensorflow as tf

    g2 = tf.square(G)
    g3 = g2 * G
    sum_a = tf.reduce_sum(A, axis=(1, 2))[:, None, None, None, :]
    aij = g2 / (2.0 * g2 + sum_a * g3 + EPS_GRADCAMPP)
    aij = tf.where(G != 0, aij, tf.zeros_like(aij))
    weights = tf.reduce_sum(tf.nn.relu(G) * aij, axis=(2, 3))
    return tf.einsum("nhwc,nlc->nlhw", A, weights)


def hirescam(A, G):
    """Draelos & Carin: element-wise gradient x activation, faithful to the score."""
    import tensorflow as tf

    return tf.reduce_sum(G * A[:, None], axis=-1)


def layercam(A, G):
    """Jiang et al.: positive gradients weight each location."""
    import tensorflow as tf

    return tf.reduce_sum(tf.nn.relu(G) * A[:, None], axis=-1)


METHODS: dict[str, Callable] = {
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

"""Grad-CAM: which parts of an image made the classifier choose a class (Selvaraju et al., 2017).

The gradient of the class score with respect to the backbone's feature grid,
averaged over the grid, weights each feature channel; the weighted sum of the
channels, negatives cut to zero, is the heat map. It works for every backbone
here because each ends in a (batch, h, w, channels) grid read by the head's
global pooling layer.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from matplotlib import colormaps

from .model import FEATURE_POOL


def gradcam_heatmaps(model: keras.Model, images: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
    """Heat maps for `class_ids`: images (n, size, size, 3) float32 in [0, 255] -> (n, size, size) in [0, 1]."""
    grid_and_probs = keras.Model(model.inputs, [model.get_layer(FEATURE_POOL).input, model.output])
    images = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        grid, probs = grid_and_probs(images, training=False)
        scores = tf.gather(probs, class_ids, axis=1, batch_dims=1)
    grads = tape.gradient(scores, grid)  # (n, h, w, c)
    channel_weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    heat = tf.nn.relu(tf.reduce_sum(channel_weights * grid, axis=-1))  # (n, h, w)
    heat = heat / (tf.reduce_max(heat, axis=(1, 2), keepdims=True) + 1e-8)
    return tf.image.resize(heat[..., None], images.shape[1:3])[..., 0].numpy()


def overlay(images: np.ndarray, heatmaps: np.ndarray, strength: float = 0.45) -> np.ndarray:
    """Heat maps over images: (n, size, size, 3) in [0, 255] and (n, size, size) -> (n, size, size, 3) in [0, 1]."""
    colored = colormaps["jet"](heatmaps)[..., :3]
    return np.clip((1 - strength) * images / 255.0 + strength * colored, 0.0, 1.0)

"""The training objective: predict the noise that was added (Ho et al., 2020, the "simple" loss)."""

from __future__ import annotations

import tensorflow as tf


def noise_mse(noise: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
    """Mean squared error between the added noise and the prediction, both (batch, h, w, 3) -> scalar."""
    return tf.reduce_mean(tf.square(tf.cast(noise, tf.float32) - tf.cast(predicted, tf.float32)))

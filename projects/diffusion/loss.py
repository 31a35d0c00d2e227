"""The training objective: predict the noise that was added (Ho et al., 2020, the "simple" loss), optionally
weighted per timestep by Min-SNR-gamma (Hang et al., 2023).

The simple loss weights every timestep alike in noise space, which in image space gives the nearly clean
timesteps (high signal-to-noise ratio, SNR_t = abar_t / (1 - abar_t)) most of the weight; Min-SNR-gamma clamps
that: weight_t = min(SNR_t, gamma) / SNR_t (1 where the image is noisier than gamma, less where it is cleaner),
so the steps that shape an image's layout are not drowned out by those that polish its pixels.
"""

from __future__ import annotations

import tensorflow as tf


def min_snr_weights(abar: tf.Tensor, gamma: float) -> tf.Tensor:
    """(batch,) weights min(SNR, gamma) / SNR of the (batch,) abar_t of each example's timestep; all 1 if gamma=0."""
    abar = tf.cast(abar, tf.float32)
    if not gamma:
        return tf.ones_like(abar)
    snr = abar / tf.maximum(1.0 - abar, 1e-8)
    return tf.minimum(snr, gamma) / tf.maximum(snr, 1e-8)


def noise_mse(noise: tf.Tensor, predicted: tf.Tensor, weights: tf.Tensor | None = None) -> tf.Tensor:
    """Mean squared error between the added noise and the prediction, both (batch, h, w, 3) -> scalar; each
    example's error times its (batch,) weight if `weights` are given."""
    per_example = tf.reduce_mean(tf.square(tf.cast(noise, tf.float32) - tf.cast(predicted, tf.float32)), [1, 2, 3])
    return tf.reduce_mean(per_example if weights is None else per_example * weights)

"""The GAN's losses, on the discriminator's logits (one score per image, no sigmoid): `model.loss` picks one.

- hinge (the default): D: mean(relu(1 - real)) + mean(relu(1 + fake)); G: -mean(fake).
  The discriminator stops pushing a score once it is beyond the margin of 1.
- nonsaturating: D: BCE(real, 1 - label_smoothing) + BCE(fake, 0); G: BCE(fake, 1).
  The generator maximizes log D(G(z)) rather than minimizing log(1 - D(G(z))), whose gradient
  vanishes while the discriminator easily rejects its images; one-sided label smoothing stops
  rewarding ever more confident scores on real images.

Beside either, `lecam_penalty` (Tseng et al., 2021) regularises the discriminator (`model.lecam_weight`).
"""

from __future__ import annotations

import tensorflow as tf


def discriminator_loss(kind: str, real: tf.Tensor, fake: tf.Tensor, label_smoothing: float = 0.0) -> tf.Tensor:
    """Scalar loss from (batch, 1) logits on real and generated images; `kind` is "hinge" or "nonsaturating"."""
    if kind == "hinge":
        return tf.reduce_mean(tf.nn.relu(1.0 - real)) + tf.reduce_mean(tf.nn.relu(1.0 + fake))
    real_target = tf.fill(tf.shape(real), 1.0 - label_smoothing)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(real_target, real)) + tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(fake), fake)
    )


def generator_loss(kind: str, fake: tf.Tensor) -> tf.Tensor:
    """Scalar loss from the discriminator's (batch, 1) logits on generated images."""
    if kind == "hinge":
        return -tf.reduce_mean(fake)
    return tf.reduce_mean(tf.nn.softplus(-fake))  # = BCE(fake, 1): the non-saturating loss


def lecam_penalty(real: tf.Tensor, fake: tf.Tensor, real_anchor: tf.Tensor, fake_anchor: tf.Tensor) -> tf.Tensor:
    """Scalar LeCam penalty from (batch, 1) logits: mean(relu(real - fake_anchor)^2) + mean(relu(real_anchor -
    fake)^2), the anchors being moving averages of past mean real and fake logits (scalars)."""
    return tf.reduce_mean(tf.nn.relu(real - fake_anchor) ** 2) + tf.reduce_mean(tf.nn.relu(real_anchor - fake) ** 2)

"""The exported model: noise [and class] in, uint8 RGB images out, from the EMA generator."""

from __future__ import annotations

import keras
import tensorflow as tf


class ToPixels(keras.layers.Layer):
    """(batch, h, w, 3) float32 in [-1, 1] -> uint8 in [0, 255]: scaled, clipped, rounded to the nearest level."""

    def call(self, images: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.round(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)

    def compute_output_spec(self, images: keras.KerasTensor) -> keras.KerasTensor:
        return keras.KerasTensor(images.shape, dtype="uint8")


def build_serving_model(generator: keras.Model) -> keras.Model:
    """`noise` (batch, latent_dim) float32 [, `label` (batch,) int32] -> `image` (batch, 64, 64, 3) uint8."""
    image = ToPixels(name="pixels")(generator.output)
    inputs = {t.name: t for t in generator.inputs} if len(generator.inputs) > 1 else generator.inputs[0]
    return keras.Model(inputs, {"image": image}, name="gan_serving")

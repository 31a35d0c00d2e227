"""Layers for serving models that convert to every format."""

from __future__ import annotations

import keras
import tensorflow as tf


class ClassIndex(keras.layers.Layer):
    """(batch, classes) scores -> (batch,) int32 index of the largest.

    `tf.argmax` rather than `keras.ops.argmax`: Keras's version adds a -0.0 guard
    (bitcast + BitwiseAnd) that TF Lite cannot convert with builtin ops.
    """

    def call(self, scores: tf.Tensor) -> tf.Tensor:
        return tf.argmax(scores, axis=-1, output_type=tf.int32)

    def compute_output_spec(self, scores: keras.KerasTensor) -> keras.KerasTensor:
        return keras.KerasTensor(scores.shape[:-1], dtype="int32")

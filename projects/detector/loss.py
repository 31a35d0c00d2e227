"""The SSD loss: smooth L1 on the positive anchors' boxes plus a classification loss, per positive anchor.

Targets `y_true` are (batch, anchors, 5): encoded offsets and the class id + 1 (0 = background),
see matching.py. Predictions `y_pred` are (batch, anchors, 4 + classes + 1): offsets, then
logits with background first. Most anchors are background; two ways to keep them from
drowning the objects:
- softmax cross-entropy with hard negative mining: every positive anchor, plus only the
  `negatives_per_positive` (3) background anchors per positive that the model gets most wrong;
- focal loss: every anchor, each weighted by (1 - p_true)^gamma, so easy background fades out.
Both are divided by the number of positive anchors in the batch.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def smooth_l1(diff: tf.Tensor) -> tf.Tensor:
    """Elementwise smooth L1 (Huber with delta 1): quadratic below 1, linear above."""
    absolute = tf.abs(diff)
    return tf.where(absolute < 1.0, 0.5 * diff * diff, absolute - 0.5)


def _parts(y_true: tf.Tensor, y_pred: tf.Tensor):
    labels = tf.cast(y_true[..., 4], tf.int32)
    positive = tf.cast(labels > 0, tf.float32)  # (batch, anchors)
    num_positive = tf.reduce_sum(positive, axis=1)  # (batch,)
    box = tf.reduce_sum(smooth_l1(y_pred[..., :4] - y_true[..., :4]), axis=-1) * positive
    return labels, positive, num_positive, tf.reduce_sum(box, axis=1)


def hard_negative_cross_entropy(labels: tf.Tensor, logits: tf.Tensor, positive: tf.Tensor, ratio: float) -> tf.Tensor:
    """Softmax cross-entropy summed over the positives and the hardest `ratio` x positives negatives.

    Args:
        labels: (batch, anchors) int32 class id + 1, 0 = background.
        logits: (batch, anchors, classes + 1).
        positive: (batch, anchors) float 1.0 where labels > 0.

    Returns:
        (batch,) float32.
    """
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    negative_ce = ce * (1.0 - positive)
    num_negatives = tf.minimum(
        tf.math.ceil(ratio * tf.reduce_sum(positive, axis=1)), tf.reduce_sum(1.0 - positive, axis=1)
    )
    hardest_first = tf.sort(negative_ce, axis=1, direction="DESCENDING")
    rank = tf.range(tf.shape(ce)[1], dtype=tf.float32)[None, :]
    hard = tf.reduce_sum(hardest_first * tf.cast(rank < num_negatives[:, None], tf.float32), axis=1)
    return tf.reduce_sum(ce * positive, axis=1) + hard


def focal_cross_entropy(labels: tf.Tensor, logits: tf.Tensor, gamma: float) -> tf.Tensor:
    """Softmax focal loss summed over every anchor: (batch, anchors) labels, logits -> (batch,)."""
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    p_true = tf.exp(-ce)
    return tf.reduce_sum(tf.pow(1.0 - p_true, gamma) * ce, axis=1)


@keras.saving.register_keras_serializable(package="detector")
class SSDLoss(keras.losses.Loss):
    """(classification + box_weight * smooth L1) / positives; `classification` is "softmax" or "focal"."""

    def __init__(
        self,
        negatives_per_positive: float = 3.0,
        classification: str = "softmax",
        focal_gamma: float = 2.0,
        box_weight: float = 1.0,
        name: str = "ssd_loss",
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.negatives_per_positive = negatives_per_positive
        self.classification = classification
        self.focal_gamma = focal_gamma
        self.box_weight = box_weight

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        """Per-image losses (batch,), scaled so that their mean is the batch's sum over its positive anchors."""
        y_true = tf.convert_to_tensor(y_true, tf.float32)
        y_pred = tf.convert_to_tensor(y_pred, tf.float32)
        labels, positive, num_positive, box = _parts(y_true, y_pred)
        logits = y_pred[..., 4:]
        if self.classification == "focal":
            cls = focal_cross_entropy(labels, logits, self.focal_gamma)
        else:
            cls = hard_negative_cross_entropy(labels, logits, positive, self.negatives_per_positive)
        mean_positives = tf.maximum(tf.reduce_mean(num_positive), 1.0)
        return (cls + self.box_weight * box) / mean_positives

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "negatives_per_positive": self.negatives_per_positive,
            "classification": self.classification,
            "focal_gamma": self.focal_gamma,
            "box_weight": self.box_weight,
        }


@keras.saving.register_keras_serializable(package="detector")
def box_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """The smooth L1 part alone, per positive anchor (a metric shown during training)."""
    _, _, num_positive, box = _parts(tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32))
    return box / tf.maximum(tf.reduce_mean(num_positive), 1.0)


@keras.saving.register_keras_serializable(package="detector")
def positive_accuracy(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Share of positive anchors whose most likely class is their object's (a metric shown during training)."""
    labels, positive, _, _ = _parts(tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32))
    right = tf.cast(tf.equal(tf.argmax(y_pred[..., 4:], axis=-1, output_type=tf.int32), labels), tf.float32)
    return tf.reduce_sum(right * positive, axis=1) / tf.maximum(tf.reduce_sum(positive, axis=1), 1.0)

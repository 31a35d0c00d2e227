"""Box geometry: corners and centres, IoU, clean-up of degenerate boxes, and the SSD box encoding.

Boxes are (y1, x1, y2, x2) corners normalized to [0, 1] (TF's and TF Serving's convention)
unless a name says `centre` ((cy, cx, h, w)). The encoding turns a box into the small
numbers the network predicts for an anchor: centre offsets in units of the anchor's size and
log size ratios, each divided by its variance so that all four have similar spread.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf


def to_corners(centre: np.ndarray) -> np.ndarray:
    """(..., 4) (cy, cx, h, w) -> (..., 4) (y1, x1, y2, x2)."""
    cy, cx, h, w = np.moveaxis(centre, -1, 0)
    return np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)


def to_centre(corners: np.ndarray) -> np.ndarray:
    """(..., 4) (y1, x1, y2, x2) -> (..., 4) (cy, cx, h, w)."""
    y1, x1, y2, x2 = np.moveaxis(corners, -1, 0)
    return np.stack([(y1 + y2) / 2, (x1 + x2) / 2, y2 - y1, x2 - x1], axis=-1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of `a` (n, 4) with every box of `b` (m, 4), corners: (n, m) float."""
    top = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom - top, 0, None), axis=-1)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=-1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def clean_boxes(boxes: np.ndarray, labels: np.ndarray, min_size: float = 1e-3) -> tuple[np.ndarray, np.ndarray, int]:
    """Clip boxes to the image and drop the degenerate ones, so the loss never sees a zero or negative size.

    Args:
        boxes: (n, 4) corners, possibly outside [0, 1], with y2 <= y1 or x2 <= x1, or not finite.
        labels: (n,) class ids.
        min_size: a box thinner or shorter than this (after clipping) is dropped.

    Returns:
        The kept boxes (k, 4) float32 and labels (k,), and the number dropped (n - k).
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    finite = np.isfinite(boxes).all(axis=1)
    clipped = np.clip(np.nan_to_num(boxes), 0.0, 1.0)
    keep = finite & (clipped[:, 2] - clipped[:, 0] >= min_size) & (clipped[:, 3] - clipped[:, 1] >= min_size)
    return clipped[keep], np.asarray(labels)[keep], int(len(boxes) - keep.sum())


def encode(boxes: np.ndarray, anchors: np.ndarray, variances: Sequence[float]) -> np.ndarray:
    """Boxes as offsets from their anchors: what the network learns to predict.

    Args:
        boxes: (n, 4) corners, each with a positive size.
        anchors: (n, 4) centre form, the anchor each box is matched to.
        variances: 4 floats dividing (dy, dx, log h ratio, log w ratio).

    Returns:
        (n, 4) float32: ((cy - acy) / ah / v0, (cx - acx) / aw / v1, log(h / ah) / v2, log(w / aw) / v3).
    """
    c = to_centre(np.asarray(boxes, np.float64))
    a = np.asarray(anchors, np.float64)
    v = np.asarray(variances, np.float64)
    out = np.stack(
        [
            (c[:, 0] - a[:, 0]) / a[:, 2] / v[0],
            (c[:, 1] - a[:, 1]) / a[:, 3] / v[1],
            np.log(c[:, 2] / a[:, 2]) / v[2],
            np.log(c[:, 3] / a[:, 3]) / v[3],
        ],
        axis=-1,
    )
    return out.astype(np.float32)


def decode(offsets: tf.Tensor, anchors: np.ndarray, variances: Sequence[float]) -> tf.Tensor:
    """The inverse of `encode`, in TensorFlow (it runs inside the exported graph).

    Args:
        offsets: (..., num_anchors, 4) predicted offsets.
        anchors: (num_anchors, 4) centre form.

    Returns:
        (..., num_anchors, 4) float32 corners (not clipped).
    """
    a = tf.constant(anchors, tf.float32)
    v = tf.constant(variances, tf.float32)
    offsets = tf.convert_to_tensor(offsets, tf.float32) * v
    cy = offsets[..., 0] * a[:, 2] + a[:, 0]
    cx = offsets[..., 1] * a[:, 3] + a[:, 1]
    h = tf.exp(tf.minimum(offsets[..., 2], 8.0)) * a[:, 2]  # capped: an untrained head must not overflow
    w = tf.exp(tf.minimum(offsets[..., 3], 8.0)) * a[:, 3]
    return tf.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)

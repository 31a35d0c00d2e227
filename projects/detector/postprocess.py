"""Decoding and NMS inside the graph: the SSD's raw predictions -> final detections, the tail of the serving
model (serving_model.py).

`DetectionPostprocess` returns `boxes` (batch, max_detections, 4) float32 normalized (y1, x1, y2, x2),
`scores` (batch, max_detections) float32, `classes` (batch, max_detections) int32 and
`num_detections` (batch,) int32, rows past `num_detections` zeros: the outputs of every exported format.

How, with ops that TF Lite (builtin ops), TF.js and ONNX all run (see the export notes):
1. each anchor keeps its best class and that class's probability (softmax over background + classes);
2. the `candidates` best anchors of each image go on;
3. one NonMaxSuppressionV4 (padded) over the whole batch, each box shifted by (image, class) so
   that boxes of different images or classes never overlap and so never suppress each other;
4. a top_k per image picks its `max_detections` best survivors.
`tf.image.combined_non_max_suppression` would be simpler but converts to neither TF Lite nor TF.js.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from .boxes import decode
from .config import PostprocessConfig

OFFSET = 2.0  # normalized boxes lie in [0, 1]: shifting by multiples of 2 keeps groups apart


class DetectionPostprocess(keras.layers.Layer):
    """Offsets (batch, anchors, 4) and logits (batch, anchors, classes + 1) -> boxes, scores, classes, num_detections.

    Offsets and logits come in apart, not as the training model's concatenation: full-integer TF Lite gives each
    tensor one scale, and one scale for both loses the offsets' precision to the logits' range.
    """

    def __init__(
        self,
        anchors: np.ndarray,
        variances: Sequence[float],
        num_classes: int,
        post: PostprocessConfig,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.anchors = np.asarray(anchors, np.float32)
        self.variances = tuple(variances)
        self.num_classes = num_classes
        self.candidates = min(post.candidates, len(self.anchors))
        self.max_detections = min(post.max_detections, self.candidates)
        self.score_threshold = post.score_threshold
        self.nms_iou = post.nms_iou

    def call(self, offsets: tf.Tensor, logits: tf.Tensor) -> dict[str, tf.Tensor]:
        batch = tf.shape(offsets)[0]
        boxes = tf.clip_by_value(decode(offsets, self.anchors, self.variances), 0.0, 1.0)
        probabilities = tf.nn.softmax(logits, axis=-1)[..., 1:]  # background dropped
        scores = tf.reduce_max(probabilities, axis=-1)  # (batch, anchors)
        classes = tf.argmax(probabilities, axis=-1, output_type=tf.int32)

        top_scores, top = tf.math.top_k(scores, k=self.candidates)  # (batch, candidates)
        top_boxes = tf.gather(boxes, top, batch_dims=1)
        top_classes = tf.gather(classes, top, batch_dims=1)
        image = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(top))
        group = tf.cast(image * self.num_classes + top_classes, tf.float32)[..., None] * OFFSET

        flat_boxes = tf.reshape(top_boxes + group, (-1, 4))
        flat_scores = tf.reshape(top_scores, (-1,))
        kept, valid = tf.raw_ops.NonMaxSuppressionV4(
            boxes=flat_boxes,
            scores=flat_scores,
            max_output_size=batch * self.candidates,  # every candidate may survive: no image crowds out another
            iou_threshold=self.nms_iou,
            score_threshold=self.score_threshold,
            pad_to_max_output_size=True,
        )
        # Survivors per image: the score where the survivor belongs to the image, -1 elsewhere and in the padding.
        is_real = tf.range(tf.shape(kept)[0]) < valid
        owner = kept // self.candidates
        kept_scores = tf.gather(flat_scores, kept)
        mine = tf.logical_and(is_real[None, :], tf.equal(owner[None, :], tf.range(batch)[:, None]))
        per_image = tf.where(mine, kept_scores[None, :], -1.0)  # (batch, survivors)
        best, slot = tf.math.top_k(per_image, k=self.max_detections)  # (batch, max_detections): the same in any batch
        picked = tf.gather(kept, slot)
        found = best > 0.0
        found_f = tf.cast(found, tf.float32)
        return {
            "boxes": tf.gather(tf.reshape(top_boxes, (-1, 4)), picked) * found_f[..., None],
            "scores": best * found_f,
            "classes": tf.gather(tf.reshape(top_classes, (-1,)), picked) * tf.cast(found, tf.int32),
            "num_detections": tf.reduce_sum(tf.cast(found, tf.int32), axis=1),
        }

    def compute_output_spec(self, offsets: keras.KerasTensor, logits: keras.KerasTensor) -> dict:
        batch, k = offsets.shape[0], self.max_detections
        return {
            "boxes": keras.KerasTensor((batch, k, 4), dtype="float32"),
            "scores": keras.KerasTensor((batch, k), dtype="float32"),
            "classes": keras.KerasTensor((batch, k), dtype="int32"),
            "num_detections": keras.KerasTensor((batch,), dtype="int32"),
        }

"""The chatbot's training losses: the generator's cross-entropy with label smoothing, and the dual encoder's
in-batch softmax.

Generator:

Logits (batch, reply_len, vocab) against target ids (batch, reply_len), id 0 being padding.
Smoothing spreads a share of each target's probability over the whole vocabulary, so the
model is not pushed to be certain of one reply word where chit-chat has many good ones.

Dual encoder: scores (batch, batch) of every context against every reply of the batch; each row
is a softmax over the batch's replies whose right answer is the diagonal, so the other replies
serve as negatives for free, and each column likewise a softmax over the batch's contexts (symmetric,
as CLIP trains its two towers): the reply side learns from both directions. Optionally a teacher, a large
pretrained sentence encoder (teacher.py), says how well every reply of the batch fits every context, and the
dual encoder learns those soft targets too (distillation).
"""

from __future__ import annotations

import keras
from keras import ops

from .model import PACKAGE


@keras.saving.register_keras_serializable(PACKAGE)
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of logits (batch, length, vocab) against ids (batch, length), label-smoothed, padding ignored.

    The target gets 1 - smoothing of the probability and every word smoothing / vocab; the mean is over
    real target tokens (id != 0) only.
    """

    def __init__(self, smoothing: float = 0.0, name: str = "smoothed_crossentropy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.smoothing = smoothing

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        nll = -ops.take_along_axis(log_probs, ops.expand_dims(y_true, -1), axis=-1)[..., 0]
        loss = (1.0 - self.smoothing) * nll - self.smoothing * ops.mean(log_probs, axis=-1)
        mask = ops.cast(ops.not_equal(y_true, 0), "float32")
        # Scaled so that Keras's mean over every position is the mean over real tokens.
        scale = ops.cast(ops.size(mask), "float32") / ops.maximum(ops.sum(mask), 1.0)
        return loss * mask * scale

    def get_config(self) -> dict:
        return {**super().get_config(), "smoothing": self.smoothing}


@keras.saving.register_keras_serializable(PACKAGE)
class InBatchSoftmax(keras.losses.Loss):
    """Scores (batch, batch) whose right reply for row i is column i -> (batch,) the mean of two cross-entropies:
    context i among the replies (row i) and reply i among the contexts (column i).

    With `distill` > 0, `y_true` is (batch, 2 * width): each pair's teacher context vector then its teacher reply
    vector (unit length); the teacher's scores (their cosines times `teacher_scale`) give soft targets, the share of
    the teacher's softmax over the batch's replies (and over its contexts) that each one gets, and the loss is
    (1 - distill) x the hard one above + distill x the cross-entropy with those soft targets (Hinton et al.'s
    distillation, over in-batch candidates). With `distill` 0, `y_true` is not read.
    """

    def __init__(
        self, distill: float = 0.0, teacher_scale: float = 20.0, name: str = "in_batch_softmax", **kwargs
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.distill = distill
        self.teacher_scale = teacher_scale

    def call(self, y_true, y_pred):
        scores = ops.cast(y_pred, "float32")
        by_reply, by_context = ops.log_softmax(scores, axis=-1), ops.log_softmax(scores, axis=0)
        hard = -0.5 * (ops.diagonal(by_reply) + ops.diagonal(by_context))
        if not self.distill:
            return hard
        contexts, replies = ops.split(ops.cast(y_true, "float32"), 2, axis=-1)
        teacher = self.teacher_scale * ops.matmul(contexts, ops.transpose(replies))
        soft = -0.5 * (
            ops.sum(ops.softmax(teacher, axis=-1) * by_reply, axis=-1)
            + ops.sum(ops.softmax(teacher, axis=0) * by_context, axis=0)
        )
        return (1.0 - self.distill) * hard + self.distill * soft

    def get_config(self) -> dict:
        return {**super().get_config(), "distill": self.distill, "teacher_scale": self.teacher_scale}

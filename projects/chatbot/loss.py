"""The chatbot's training losses: the generator's cross-entropy with label smoothing, and the dual encoder's
in-batch softmax.

Generator:

Logits (batch, reply_len, vocab) against target ids (batch, reply_len), id 0 being padding.
Smoothing spreads a share of each target's probability over the whole vocabulary, so the
model is not pushed to be certain of one reply word where chit-chat has many good ones.

Dual encoder: scores (batch, batch) of every context against every reply of the batch; each row
is a softmax over the batch's replies whose right answer is the diagonal, so the other replies
serve as negatives for free, and each column likewise a softmax over the batch's contexts (symmetric,
as CLIP trains its two towers): the reply side learns from both directions.
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
    context i among the replies (row i) and reply i among the contexts (column i); `y_true` is not read."""

    def __init__(self, name: str = "in_batch_softmax", **kwargs) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        scores = ops.cast(y_pred, "float32")
        replies_given_context = ops.diagonal(ops.log_softmax(scores, axis=-1))
        contexts_given_reply = ops.diagonal(ops.log_softmax(scores, axis=0))
        return -0.5 * (replies_given_context + contexts_given_reply)

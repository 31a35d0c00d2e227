"""How good the replies are: perplexity and token accuracy, a unigram baseline, BLEU and distinct-n.

- token accuracy: the share of real target tokens whose likeliest word is the target
  (`TokenAccuracy`, shown during training; `teacher_forced` for the report).
- perplexity: exp of the mean cross-entropy (no label smoothing) of the real target tokens
  (the reply's words and its <end>), teacher-forced, on the validation split.
- unigram perplexity: the same tokens scored by the training split's word frequencies
  (add-one smoothed over the vocabulary): what a model that ignores the context and the
  words before would get. The model should need far fewer guesses.
- BLEU: sacrebleu's corpus BLEU of generated replies against the one real reply, both as
  whitespace-split words (`tokenize="none"`); chit-chat has many good replies, so it stays low.
- hits@1 of 20: the true reply ranked first among it and 19 other test replies by the dual
  encoder (the same candidates scored by TF-IDF cosine as a baseline; chance is 1 in 20).
- distinct-n: unique n-grams / all n-grams over the generated replies (diversity; a model
  that always says "i don't know" scores near 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from .model import PACKAGE
from .tokenizer import reply_text


@keras.saving.register_keras_serializable(PACKAGE)
class TokenAccuracy(keras.metrics.Mean):
    """Share of real target tokens (id != 0) whose highest logit is the target word."""

    def __init__(self, name: str = "token_accuracy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        hits = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32")
        return super().update_state(hits, sample_weight=ops.cast(ops.not_equal(y_true, 0), "float32"))


def teacher_forced(model: keras.Model, dataset: tf.data.Dataset, batch_size: int = 256) -> dict[str, float]:
    """Perplexity and token accuracy of `model` on an unbatched dataset of (inputs, {"logits": target, ...})."""
    nll, hits, count = 0.0, 0, 0
    for inputs, targets in dataset.batch(batch_size):
        logits, target = model(inputs, training=False)["logits"], targets["logits"]
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        mask = target != 0
        picked = tf.gather(log_probs, target, batch_dims=2)
        nll -= float(tf.reduce_sum(tf.boolean_mask(picked, mask)))
        hits += int(tf.reduce_sum(tf.cast((tf.argmax(logits, -1, output_type=tf.int32) == target) & mask, tf.int32)))
        count += int(tf.reduce_sum(tf.cast(mask, tf.int32)))
    return {"perplexity": math.exp(nll / count), "token_accuracy": hits / count, "tokens": count}


def targets_of(dataset: tf.data.Dataset) -> np.ndarray:
    """Every real target id (not padding) of an unbatched (inputs, {"logits": target, ...}) dataset, flattened."""
    targets = np.concatenate([t["logits"] for _, t in dataset.batch(4096).as_numpy_iterator()])
    return targets[targets != 0]


def unigram_perplexity(train_targets: np.ndarray, val_targets: np.ndarray, vocab_size: int) -> float:
    """Perplexity of `val_targets` under add-one smoothed word frequencies of `train_targets`."""
    counts = np.bincount(train_targets, minlength=vocab_size)[1:].astype(np.float64) + 1.0  # id 0 is padding
    log_probs = np.log(counts / counts.sum())
    return float(math.exp(-log_probs[val_targets - 1].mean()))


def words_of(ids: np.ndarray, vocabulary: Sequence[str]) -> list[str]:
    """Reply ids (reply_len,) -> the reply's words (its text split on whitespace)."""
    return reply_text(ids, vocabulary).split()


@keras.saving.register_keras_serializable(PACKAGE)
class MatchAccuracy(keras.metrics.Mean):
    """Share of contexts whose highest-scoring reply in the batch is their own (the diagonal of `match`)."""

    def __init__(self, name: str = "match_accuracy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        rows = ops.arange(ops.shape(y_pred)[0], dtype="int32")
        return super().update_state(ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, -1), "int32"), rows), "float32"))


def hits_at_1(scores: np.ndarray) -> float:
    """Share of rows of `scores` (n, candidates) whose column 0, the true reply, scores highest (ties count half)."""
    best = scores.max(axis=1, keepdims=True)
    ties = (scores == best).sum(axis=1)
    return float(np.mean(np.where(scores[:, 0] == best[:, 0], 1.0 / ties, 0.0)))


def distinct_n(replies: Sequence[Sequence[str]], n: int) -> float:
    """Unique n-grams / all n-grams over `replies` (lists of words); 0 if there are none."""
    grams = [tuple(r[i : i + n]) for r in replies for i in range(len(r) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """sacrebleu corpus BLEU (0-100) of word lists against one reference each (already tokenized)."""
    import sacrebleu

    hyp = [" ".join(h) for h in hypotheses]
    ref = [" ".join(r) for r in references]
    return float(sacrebleu.corpus_bleu(hyp, [ref], tokenize="none", force=True).score)

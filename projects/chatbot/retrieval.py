"""Retrieval with the dual encoder: the reply bank, and hits@1 of 20 against a TF-IDF baseline.

- `ReplyBank`: distinct training replies (at most `retrieval.bank_size`, a seeded choice) with their unit
  vectors (n, dim) from the reply side of the dual encoder; `best` answers a context with the bank reply
  whose vector has the highest dot product with the context's vector. The SavedModel keeps the bank inside.
- `ranking_candidates`: for each test pair, its true reply and 19 other test replies (seeded).
- `hits_at_1_of_20`: the share of test contexts whose true reply scores highest among its 20 candidates,
  scored by the dual encoder; `tfidf_hits_at_1_of_20` scores the same candidates by the cosine of
  scikit-learn TF-IDF vectors (fit on the training turns). Chance is 1 in 20 = 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from . import tokenizer
from .config import ChatbotConfig
from .data import Corpus, Pairs
from .metrics import hits_at_1
from .model import vocabulary_of

CANDIDATES = 20
MAX_BANK_CHARS = 200  # longer training replies are left out of the bank: the reply side reads only context_len pieces


@dataclass
class ReplyBank:
    """Replies (n,) and their unit vectors (n, dim) float32."""

    texts: list[str]
    vectors: np.ndarray

    def best(self, context_vector: keras.Model, context: np.ndarray) -> list[str]:
        """The bank reply closest to each context (batch, context_len) int32."""
        vectors = context_vector(tf.constant(context, tf.int32), training=False)["vector"].numpy()
        return [self.texts[i] for i in np.argmax(vectors @ self.vectors.T, axis=1)]


def encode_texts(vocabulary: list[str], texts: list[str], length: int) -> np.ndarray:
    """Raw texts -> (n, length) int32 piece ids padded on the left (contexts, or replies for the reply side)."""
    pieces = tokenizer.PieceTokenizer(vocabulary)
    return tokenizer.batched(tf.function(lambda t: pieces.context_ids(t, length)), texts)


def vectors_of(side: keras.Model, ids: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """One side of the dual encoder over ids (n, context_len) -> unit vectors (n, dim) float32."""
    return np.concatenate(
        [
            side(tf.constant(ids[i : i + batch_size]), training=False)["vector"].numpy()
            for i in range(0, len(ids), batch_size)
        ]
    )


def build_bank(model: keras.Model, reply_vector: keras.Model, corpus: Corpus, cfg: ChatbotConfig) -> ReplyBank:
    """The bank of `retrieval.bank_size` distinct training replies (of at most MAX_BANK_CHARS characters)."""
    texts = sorted({r.strip() for r in corpus.train.replies if 0 < len(r.strip()) <= MAX_BANK_CHARS})
    order = np.random.default_rng(cfg.data.split_seed).permutation(len(texts))[: cfg.retrieval.bank_size]
    texts = [texts[i] for i in np.sort(order)]
    ids = encode_texts(vocabulary_of(model), texts, cfg.data.context_len)
    return ReplyBank(texts, vectors_of(reply_vector, ids))


def ranking_candidates(pairs: Pairs, limit: int, seed: int) -> np.ndarray:
    """(n, 20) indices into `pairs.replies`: each picked pair's own reply first, then 19 others of the split."""
    rng = np.random.default_rng(seed)
    n = len(pairs.replies)
    picks = np.sort(rng.permutation(n)[:limit])
    rows = []
    for i in picks:
        others = rng.choice(n - 1, CANDIDATES - 1, replace=False)
        rows.append([i, *(others + (others >= i))])  # every index but i
    return np.array(rows)


def hits_at_1_of_20(
    context_vector: keras.Model,
    reply_vector: keras.Model,
    vocabulary: list[str],
    pairs: Pairs,
    rows: np.ndarray,
    length: int,
) -> float:
    """The dual encoder's hits@1 on candidate `rows` (n, 20) of `pairs` (the true reply in column 0)."""
    contexts = vectors_of(context_vector, encode_texts(vocabulary, [pairs.contexts[r[0]] for r in rows], length))
    replies = vectors_of(reply_vector, encode_texts(vocabulary, pairs.replies, length))
    return hits_at_1(np.einsum("nd,ncd->nc", contexts, replies[rows]))


def tfidf_hits_at_1_of_20(train: Pairs, pairs: Pairs, rows: np.ndarray) -> float:
    """The TF-IDF cosine baseline's hits@1 on the same candidate `rows`; the vectorizer is fit on training turns."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True).fit(train.contexts + train.replies)
    contexts = vectorizer.transform([pairs.contexts[r[0]] for r in rows])
    replies = vectorizer.transform(pairs.replies)  # rows are L2-normalized: dot products are cosines
    scores = np.stack([(replies[row] @ contexts[k].T).toarray()[:, 0] for k, row in enumerate(rows)])
    return hits_at_1(scores)

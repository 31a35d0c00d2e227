"""Retrieval: the reply bank, scored by the dual encoder and by TF-IDF over subword pieces, and hits@1 of 20.

- `LexicalIndex`: TF-IDF over the vocabulary's pieces (idf from the training turns; a piece's weight in a text is
  (1 + ln count) * idf, each text's vector scaled to unit length), so the lexical score is the cosine of two
  texts' piece vectors. It reads the last `retrieval.lexical_len` pieces of a context, more than the
  `data.context_len` the transformer reads: a long context's early words still count.
- `combined`: a reply's score for a context, the dual encoder's cosine plus `retrieval.lexical_weight` times the
  TF-IDF cosine (a hybrid, as search engines rank: the dense score knows what a reply means, the lexical one
  which rare words it shares), or CAPPED where the TF-IDF cosine is above `retrieval.max_overlap`: a reply that
  mostly repeats the message is no answer, and without the cap the bank's best was often the question itself.
- `ReplyBank`: distinct training replies (at most `retrieval.bank_size`, a seeded choice), their unit vectors
  (n, dim) from the reply side of the dual encoder and their piece TF-IDF rows (n, vocab); `best` answers a
  context with the highest `combined` score. The SavedModel keeps the bank inside; the browser its first replies.
- `ranking_candidates`: for each test pair, its true reply and 19 other test replies (seeded).
- `ranking_scores`: the dense and lexical scores of those candidates; `hits_at_1` of `combined` is the
  retrieval's hits@1 of 20 (a true reply over the cap counts as missed), of each alone the dual encoder's and
  TF-IDF-over-pieces'. `tfidf_hits_at_1_of_20` scores the same candidates by the cosine of scikit-learn TF-IDF
  word vectors (the baseline; fit on the training turns). Chance is 1 in 20 = 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from scipy import sparse

from . import tokenizer
from .config import ChatbotConfig
from .data import Corpus, Pairs
from .metrics import hits_at_1
from .model import vocabulary_of

CANDIDATES = 20
CAPPED = -10.0  # the score of a reply over `retrieval.max_overlap`: below any real one (cosines are >= -1)
MAX_BANK_CHARS = 200  # longer training replies are left out of the bank: the reply side reads only context_len pieces


def context_width(cfg: ChatbotConfig) -> int:
    """Ids kept of a context: enough for the transformer (`data.context_len`) and the lexical score."""
    return max(cfg.data.context_len, cfg.retrieval.lexical_len)


def _piece_counts(ids: np.ndarray, vocab_size: int) -> sparse.csr_matrix:
    """Ids (n, width) int -> how often each piece occurs in each row, (n, vocab_size) float32 (padding included)."""
    rows = np.repeat(np.arange(len(ids)), ids.shape[1])
    return sparse.csr_matrix((np.ones(ids.size, np.float32), (rows, ids.ravel())), shape=(len(ids), vocab_size))


@dataclass
class LexicalIndex:
    """TF-IDF over pieces: `idf` (vocab,) float32, 0 for the special ids; contexts read their last `length` ids."""

    idf: np.ndarray
    length: int

    @classmethod
    def fit(cls, ids: np.ndarray, vocab_size: int, length: int) -> LexicalIndex:
        """Smoothed idf, ln((1 + n) / (1 + df)) + 1 as scikit-learn's, from training texts' ids (n, width) int32."""
        df = np.asarray((_piece_counts(ids, vocab_size) > 0).sum(axis=0)).ravel()
        idf = np.log((1 + len(ids)) / (1 + df)) + 1
        idf[: tokenizer.FIRST_PIECE] = 0
        return cls(idf.astype(np.float32), length)

    def vectors(self, ids: np.ndarray) -> sparse.csr_matrix:
        """Ids (n, width) int32 -> unit TF-IDF rows (n, vocab) float32 of their last `length` ids (0 for none)."""
        counts = _piece_counts(np.asarray(ids)[:, -self.length :], len(self.idf))
        counts.data = (1 + np.log(counts.data)) * self.idf[counts.indices]
        counts.eliminate_zeros()
        norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
        return sparse.diags(1 / np.maximum(norms, 1e-12)).dot(counts).tocsr().astype(np.float32)


def lexical_vectors(ids: tf.Tensor, idf: tf.Tensor, length: int) -> tf.Tensor:
    """`LexicalIndex.vectors` in TensorFlow ops: ids (batch, width) int32 -> dense unit rows (batch, vocab) float32."""
    counts = tf.math.bincount(ids[:, -length:], minlength=tf.size(idf), maxlength=tf.size(idf), axis=-1)
    counts = tf.cast(counts, tf.float32)
    weights = tf.where(counts > 0, 1 + tf.math.log(tf.maximum(counts, 1.0)), 0.0) * idf
    return tf.math.l2_normalize(weights, axis=1)


def combined(dense: np.ndarray, lexical: np.ndarray, weight: float, max_overlap: float) -> np.ndarray:
    """Retrieval scores from the dual encoder's and the TF-IDF cosines (same shapes): dense + weight * lexical, or
    CAPPED where lexical > max_overlap."""
    return np.where(lexical > max_overlap, CAPPED, dense + weight * lexical)


@dataclass
class ReplyBank:
    """Replies (n,), their unit vectors (n, dim) float32 and TF-IDF rows `lexical` (n, vocab), scored by
    `combined`; contexts are ids (batch, width), the dual encoder reading their last `context_len`."""

    texts: list[str]
    vectors: np.ndarray
    lexical: sparse.csr_matrix
    index: LexicalIndex
    lexical_weight: float
    max_overlap: float
    context_len: int

    def scores(self, context_vector: keras.Model, context: np.ndarray) -> np.ndarray:
        """Every bank reply's score for each context (batch, width) int32 -> (batch, n) float32."""
        ids = tf.constant(np.asarray(context)[:, -self.context_len :], tf.int32)
        dense = context_vector(ids, training=False)["vector"].numpy() @ self.vectors.T
        lexical = (self.index.vectors(context) @ self.lexical.T).toarray()
        return combined(dense, lexical, self.lexical_weight, self.max_overlap).astype(np.float32)

    def best(self, context_vector: keras.Model, context: np.ndarray) -> list[str]:
        """The best-scoring bank reply for each context (batch, width) int32."""
        return [self.texts[i] for i in np.argmax(self.scores(context_vector, context), axis=1)]


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


def fit_lexical(vocabulary: list[str], train: Pairs, cfg: ChatbotConfig) -> LexicalIndex:
    """The piece TF-IDF's idf from every training context and reply."""
    length = cfg.retrieval.lexical_len
    return LexicalIndex.fit(encode_texts(vocabulary, train.contexts + train.replies, length), len(vocabulary), length)


def build_bank(model: keras.Model, reply_vector: keras.Model, corpus: Corpus, cfg: ChatbotConfig) -> ReplyBank:
    """The bank of `retrieval.bank_size` distinct training replies (of at most MAX_BANK_CHARS characters)."""
    texts = sorted({r.strip() for r in corpus.train.replies if 0 < len(r.strip()) <= MAX_BANK_CHARS})
    order = np.random.default_rng(cfg.data.split_seed).permutation(len(texts))[: cfg.retrieval.bank_size]
    texts = [texts[i] for i in np.sort(order)]
    vocabulary = vocabulary_of(model)
    index = fit_lexical(vocabulary, corpus.train, cfg)
    ids = encode_texts(vocabulary, texts, context_width(cfg))
    vectors = vectors_of(reply_vector, ids[:, -cfg.data.context_len :])
    r = cfg.retrieval
    return ReplyBank(texts, vectors, index.vectors(ids), index, r.lexical_weight, r.max_overlap, cfg.data.context_len)


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


def ranking_scores(
    context_vector: keras.Model,
    reply_vector: keras.Model,
    index: LexicalIndex,
    vocabulary: list[str],
    pairs: Pairs,
    rows: np.ndarray,
    context_len: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The dual encoder's and the piece TF-IDF's cosines (n, 20) each for candidate `rows` (n, 20) of `pairs`
    (the true reply in column 0)."""
    width = max(context_len, index.length)
    context_ids = encode_texts(vocabulary, [pairs.contexts[r[0]] for r in rows], width)
    reply_ids = encode_texts(vocabulary, pairs.replies, width)
    contexts = vectors_of(context_vector, context_ids[:, -context_len:])
    replies = vectors_of(reply_vector, reply_ids[:, -context_len:])
    dense = np.einsum("nd,ncd->nc", contexts, replies[rows])
    lexical_contexts, lexical_replies = index.vectors(context_ids), index.vectors(reply_ids)
    lexical = np.stack([(lexical_replies[row] @ lexical_contexts[k].T).toarray()[:, 0] for k, row in enumerate(rows)])
    return dense, lexical


def tfidf_hits_at_1_of_20(train: Pairs, pairs: Pairs, rows: np.ndarray) -> float:
    """The TF-IDF cosine baseline's hits@1 on the same candidate `rows`; the vectorizer is fit on training turns."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True).fit(train.contexts + train.replies)
    contexts = vectorizer.transform([pairs.contexts[r[0]] for r in rows])
    replies = vectorizer.transform(pairs.replies)  # rows are L2-normalized: dot products are cosines
    scores = np.stack([(replies[row] @ contexts[k].T).toarray()[:, 0] for k, row in enumerate(rows)])
    return hits_at_1(scores)

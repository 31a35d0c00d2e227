"""What the chatbot serves and exports: the text SavedModel, and the greedy replies every format is checked on.

The SavedModel TF Serving answers with takes raw text and returns the reply as text, tokenized and decoded
inside the graph (the byte-level vocabulary and the reply bank are inside it). Every signature takes
`text` (batch,) string: the user's message, earlier turns first, separated by newlines.
- `serving_default`: the export's `decode.strategy` (beam search, which is not in the graph, falls back to
  rerank) -> `reply` (batch,) string.
- `greedy`: greedy decoding -> `reply` and `reply_ids` (batch, reply_len) int32.
- `sample`: sampling, chosen per request with the scalars `temperature` (float), `top_k` (int; the
  vocabulary size or more turns it off), `top_p` (float; 1 turns it off) and `seed` (int) -> the same outputs.
- `retrieve`: the reply bank's best reply (the dual encoder's cosine plus `retrieval.lexical_weight` times the
  TF-IDF cosine over pieces, replies over `retrieval.max_overlap` skipped: retrieval.py `combined`) -> `reply`
  and `score` (batch,) float32, that score.
- `rerank`: `retrieval.candidates` nucleus samples (`temperature`, `top_p`, `seed`), the dual encoder's
  favourite kept -> `reply` and `reply_ids`.

String ops do not convert to TF Lite or TF.js: those formats get the token-level encoder, decoder step and
the dual encoder's two sides instead (see export.py), and compute what `build_serving_model` does: context
ids in, greedy reply ids out (the browser page's samples.json holds its outputs).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import retrieval
from .config import ChatbotConfig
from .decoding import generate, rerank
from .model import retrieval_models, step_models, vocabulary_of
from .retrieval import ReplyBank
from .tokenizer import PieceTokenizer

TEXT = tf.TensorSpec((None,), tf.string, name="text")


def write_text_savedmodel(model: keras.Model, cfg: ChatbotConfig, bank: ReplyBank, directory: Path) -> None:
    """Write the signatures above for the trained `model`, its vocabulary and `bank` inside, to `directory`."""
    encoder, step = step_models(model)
    context_vector, reply_vector = retrieval_models(model)
    pieces = PieceTokenizer(vocabulary_of(model))
    context_len, candidates, d = cfg.data.context_len, cfg.retrieval.candidates, cfg.decode
    bank_texts = tf.constant(bank.texts)
    bank_vectors = tf.Variable(bank.vectors, trainable=False, name="bank_vectors")
    lexical = bank.lexical.tocoo()  # (n, vocab) TF-IDF rows, kept sparse: a few pieces per reply
    lexical_indices = tf.Variable(np.stack([lexical.row, lexical.col], 1).astype(np.int64), trainable=False)
    lexical_values = tf.Variable(lexical.data.astype(np.float32), trainable=False)
    idf = tf.Variable(bank.index.idf, trainable=False, name="idf")
    width = retrieval.context_width(cfg)

    def context_of(text: tf.Tensor) -> tf.Tensor:
        return pieces.context_ids(text, context_len)

    def answer(ids: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"reply": pieces.ids_to_text(ids), "reply_ids": ids}

    def greedy(text: tf.Tensor) -> dict[str, tf.Tensor]:
        return answer(generate(encoder, step, context_of(text)))

    def sample(text, temperature, top_k, top_p, seed) -> dict[str, tf.Tensor]:
        return answer(generate(encoder, step, context_of(text), "sample", temperature, top_k, top_p, seed))

    def retrieve(text: tf.Tensor) -> dict[str, tf.Tensor]:
        ids = pieces.context_ids(text, width)
        scores = tf.matmul(
            context_vector(ids[:, -context_len:], training=False)["vector"], bank_vectors, transpose_b=True
        )
        rows = tf.SparseTensor(lexical_indices, lexical_values, bank.lexical.shape)
        query = retrieval.lexical_vectors(ids, idf, bank.index.length)  # (batch, vocab)
        lexical = tf.transpose(tf.sparse.sparse_dense_matmul(rows, query, adjoint_b=True))  # (batch, n)
        scores = tf.where(lexical > bank.max_overlap, retrieval.CAPPED, scores + bank.lexical_weight * lexical)
        best = tf.argmax(scores, axis=1, output_type=tf.int32)
        return {"reply": tf.gather(bank_texts, best), "score": tf.reduce_max(scores, axis=1)}

    def reranked(text, temperature, top_p, seed) -> dict[str, tf.Tensor]:
        context = context_of(text)
        return answer(
            rerank(encoder, step, context_vector, reply_vector, context, candidates, temperature, top_p, seed)
        )

    def default(text: tf.Tensor) -> dict[str, tf.Tensor]:
        if d.strategy == "retrieve":
            return {"reply": retrieve(text)["reply"]}
        if d.strategy == "greedy":
            return {"reply": greedy(text)["reply"]}
        if d.strategy in ("top_k", "nucleus"):
            top_k = d.top_k if d.strategy == "top_k" else len(vocabulary_of(model))
            top_p = d.top_p if d.strategy == "nucleus" else 1.0
            return {"reply": sample(text, d.temperature, top_k, top_p, d.seed)["reply"]}
        return {"reply": reranked(text, d.temperature, d.top_p, d.seed)["reply"]}

    archive = keras.export.ExportArchive()
    for part in (encoder, step, context_vector, reply_vector):
        archive.track(part)
    archive.track(pieces)
    archive.bank_vectors = bank_vectors
    archive.bank_lexical = [lexical_indices, lexical_values, idf]
    scalar = {name: tf.TensorSpec((), dtype, name=name) for name, dtype in _SCALARS.items()}
    archive.add_endpoint("serving_default", default, input_signature=[TEXT])
    archive.add_endpoint("greedy", greedy, input_signature=[TEXT])
    sample_specs = [scalar["temperature"], scalar["top_k"], scalar["top_p"], scalar["seed"]]
    archive.add_endpoint("sample", sample, input_signature=[TEXT, *sample_specs])
    archive.add_endpoint("retrieve", retrieve, input_signature=[TEXT])
    rerank_specs = [scalar["temperature"], scalar["top_p"], scalar["seed"]]
    archive.add_endpoint("rerank", reranked, input_signature=[TEXT, *rerank_specs])
    archive.write_out(str(directory), verbose=False)


_SCALARS = {"temperature": tf.float32, "top_k": tf.int32, "top_p": tf.float32, "seed": tf.int32}


class GreedyReplies:
    """Context ids (batch, context_len) int32 in, greedy `reply_ids` (batch, reply_len) int32 out, decoded in a
    tf.while_loop: the answer every token-level format gives, and the outputs in samples.json."""

    def __init__(self, model: keras.Model) -> None:
        self.encoder, self.step = step_models(model)

    def __call__(self, context: np.ndarray) -> dict[str, np.ndarray]:
        return {"reply_ids": generate(self.encoder, self.step, context).numpy()}


def build_serving_model(model: keras.Model) -> GreedyReplies:
    """The trained model as context ids in, greedy reply ids out (the SavedModel adds text in and out)."""
    return GreedyReplies(model)

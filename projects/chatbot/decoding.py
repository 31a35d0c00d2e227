"""Replies: greedy, top-k and nucleus sampling (with temperature) in `tf.while_loop`, beam search, retrieval
from a reply bank, and reranking of sampled replies by the dual encoder.

All of them drive the two models of `model.step_models`: the encoder runs once, then the
decoder step once per word, on a fixed-length reply buffer (<start> + the words so far, zeros
after). Reply ids come back as (batch, reply_len) int32: the words, then <end>, then zeros.

- greedy: the likeliest word at each step (what every exported format is checked on).
- top_k: sample among the `top_k` likeliest words, logits divided by `temperature`.
- nucleus: sample among the fewest likeliest words whose probabilities add up to `top_p`.
- beam: keep the `beam_width` likeliest partial replies; finished ones are scored by
  log-probability / length ** `length_penalty`.
- retrieve: the training reply scoring highest by the dual encoder's cosine plus TF-IDF's (`retrieval.ReplyBank`).
- rerank: sample `retrieval.candidates` replies by nucleus sampling, keep the one whose reply vector
  is closest to the context's (`rerank`).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .config import ChatbotConfig, DecodeConfig
from .tokenizer import END, START, reply_pieces, reply_text

NEG_INF = -1e9


def filter_logits(logits: tf.Tensor, strategy: str, top_k: int, top_p: float) -> tf.Tensor:
    """(batch, vocab) logits with the words a strategy may not pick set to -1e9 (greedy: unchanged).

    `sample` applies both filters (top_k >= vocab size and top_p = 1 turn them off).
    """
    if strategy in ("top_k", "sample"):
        # A client may not know the vocabulary size: a larger top_k keeps every word instead of failing.
        kth = tf.math.top_k(logits, k=tf.minimum(top_k, tf.shape(logits)[-1])).values[:, -1:]
        logits = tf.where(logits < kth, NEG_INF, logits)
    if strategy in ("nucleus", "sample"):
        ordered = tf.sort(logits, direction="DESCENDING", axis=-1)
        cumulative = tf.cumsum(tf.nn.softmax(ordered, axis=-1), axis=-1)
        # The smallest logit still needed to reach top_p (the first word always stays).
        needed = tf.reduce_sum(tf.cast(cumulative - tf.nn.softmax(ordered, axis=-1) < top_p, tf.int32), axis=-1)
        cutoff = tf.gather(ordered, tf.maximum(needed, 1) - 1, batch_dims=1)[:, None]
        return tf.where(logits < cutoff, NEG_INF, logits)
    return logits


def generate(
    encoder: keras.Model,
    step: keras.Model,
    context: tf.Tensor,
    strategy: str = "greedy",
    temperature: float | tf.Tensor = 1.0,
    top_k: int = 20,
    top_p: float | tf.Tensor = 0.9,
    seed: int | tf.Tensor = 0,
) -> tf.Tensor:
    """Reply ids (batch, reply_len) int32 for context ids (batch, context_len), one `tf.while_loop` over positions.

    Stops early when every reply has ended; ids after a reply's <end> are 0.
    """
    context = tf.convert_to_tensor(context, tf.int32)
    reply_len = step.input["reply"].shape[1]
    batch = tf.shape(context)[0]
    encoded = encoder(context, training=False)["encoded"]
    reply = tf.concat([tf.fill([batch, 1], START), tf.zeros([batch, reply_len - 1], tf.int32)], axis=1)
    out = tf.zeros([batch, reply_len], tf.int32)
    done = tf.zeros([batch], tf.bool)
    seed = tf.cast(seed, tf.int32)

    def body(t, reply, out, done):
        position = tf.fill([batch], t)
        result = step({"encoded": encoded, "context": context, "reply": reply, "position": position}, training=False)
        if strategy == "greedy":
            word = result["next_id"]
        else:
            logits = filter_logits(result["logits"] / temperature, strategy, top_k, top_p)
            word = tf.cast(tf.random.stateless_categorical(logits, 1, seed=tf.stack([seed, t]))[:, 0], tf.int32)
        word = tf.where(done, 0, tf.ensure_shape(word, done.shape))  # the loop keeps the batch size it started with
        out += tf.one_hot(t, reply_len, dtype=tf.int32)[None] * word[:, None]
        reply += tf.one_hot(t + 1, reply_len, dtype=tf.int32)[None] * word[:, None]  # no-op past the end
        return t + 1, reply, out, done | tf.equal(word, END)

    def not_finished(t, reply, out, done):
        return tf.logical_and(t < reply_len, tf.logical_not(tf.reduce_all(done)))

    _, _, out, _ = tf.while_loop(not_finished, body, [tf.constant(0), reply, out, done])
    return out


def rerank(
    encoder: keras.Model,
    step: keras.Model,
    context_vector: keras.Model,
    reply_vector: keras.Model,
    context: tf.Tensor,
    candidates: int,
    temperature: float | tf.Tensor = 0.8,
    top_p: float | tf.Tensor = 0.9,
    seed: int | tf.Tensor = 0,
) -> tf.Tensor:
    """Reply ids (batch, reply_len) int32: of `candidates` nucleus-sampled replies per context (batch, context_len),
    the one the dual encoder scores best (an empty reply never wins)."""
    context = tf.convert_to_tensor(context, tf.int32)
    batch, context_len = tf.shape(context)[0], context.shape[1]
    ids = generate(encoder, step, tf.repeat(context, candidates, axis=0), "nucleus", temperature, 0, top_p, seed)
    pieces = reply_pieces(ids, context_len)
    replies = tf.reshape(reply_vector(pieces, training=False)["vector"], [batch, candidates, -1])
    scores = tf.einsum("bd,bnd->bn", context_vector(context, training=False)["vector"], replies)
    empty = tf.reshape(tf.reduce_all(tf.equal(pieces, 0), axis=1), [batch, candidates])
    best = tf.argmax(tf.where(empty, NEG_INF, scores), axis=1, output_type=tf.int32)
    return tf.gather(tf.reshape(ids, [batch, candidates, -1]), best, batch_dims=1)


def beam_search(
    encoder: keras.Model, step: keras.Model, context: np.ndarray, beam_width: int, length_penalty: float
) -> np.ndarray:
    """The best reply ids (reply_len,) int32 for one context (context_len,), by beam search."""
    reply_len = step.input["reply"].shape[1]
    context = np.asarray(context, np.int32)[None]
    encoded = encoder(context, training=False)["encoded"].numpy()
    beams = [(0.0, [])]  # (log-probability, words so far)
    finished: list[tuple[float, list[int]]] = []
    for t in range(reply_len):
        replies = np.zeros((len(beams), reply_len), np.int32)
        replies[:, 0] = START
        for i, (_, words) in enumerate(beams):
            replies[i, 1 : t + 1] = words[: reply_len - 1]
        result = step(
            {
                "encoded": np.repeat(encoded, len(beams), 0),
                "context": np.repeat(context, len(beams), 0),
                "reply": replies,
                "position": np.full(len(beams), t, np.int32),
            },
            training=False,
        )
        log_probs = tf.nn.log_softmax(result["logits"]).numpy()
        candidates = []
        for (score, words), row in zip(beams, log_probs, strict=True):
            for word in np.argsort(row)[::-1][:beam_width]:
                candidates.append((score + float(row[word]), [*words, int(word)]))
        candidates.sort(key=lambda c: c[0], reverse=True)
        beams = []
        for score, words in candidates:
            if words[-1] == END or t == reply_len - 1:
                finished.append((score / len(words) ** length_penalty, words))
            else:
                beams.append((score, words))
            if len(beams) == beam_width:
                break
        if not beams or (len(finished) >= beam_width and max(f[0] for f in finished) > beams[0][0]):
            break
    best = max(finished, key=lambda f: f[0])[1] if finished else beams[0][1]
    out = np.zeros(reply_len, np.int32)
    out[: len(best)] = best
    return out


class ReplyGenerator:
    """Replies (texts) for contexts (batch, width) int32 with the strategy of `decode`: the transformer reads the
    last `data.context_len` ids, `retrieve`'s lexical score the last `retrieval.lexical_len`
    (`retrieval.context_width`).

    `model` is the trained model; `bank` (retrieval.ReplyBank) is needed by `retrieve` only. The loops are traced
    once per input shape; the sampling seed is an argument, so a chat can vary it per turn.
    """

    def __init__(self, model: keras.Model, cfg: ChatbotConfig, decode: DecodeConfig | None = None, bank=None) -> None:
        from .model import retrieval_models, step_models, vocabulary_of

        self.cfg, self.decode, self.bank = cfg, decode or cfg.decode, bank
        self.vocabulary = vocabulary_of(model)
        self.encoder, self.step = step_models(model)
        self.context_vector, self.reply_vector = retrieval_models(model)
        d = self.decode
        if d.strategy == "rerank":
            loop = lambda context, seed: rerank(  # noqa: E731
                self.encoder, self.step, self.context_vector, self.reply_vector, context,
                cfg.retrieval.candidates, d.temperature, d.top_p, seed,
            )  # fmt: skip
        else:
            loop = lambda context, seed: generate(  # noqa: E731
                self.encoder, self.step, context, d.strategy, d.temperature, d.top_k, d.top_p, seed
            )
        self._loop = tf.function(loop, reduce_retracing=True)

    def ids(self, context: np.ndarray, seed: int | None = None) -> np.ndarray:
        """Generated reply ids (batch, reply_len) int32 (every strategy but `retrieve`)."""
        d = self.decode
        context = np.asarray(context)[:, -self.cfg.data.context_len :]
        if d.strategy == "beam":
            return np.stack([beam_search(self.encoder, self.step, c, d.beam_width, d.length_penalty) for c in context])
        seed = d.seed if seed is None else seed
        return self._loop(tf.constant(context, tf.int32), tf.constant(seed, tf.int32)).numpy()

    def __call__(self, context: np.ndarray, seed: int | None = None) -> list[str]:
        if self.decode.strategy == "retrieve":
            if self.bank is None:
                raise ValueError("decode.strategy=retrieve needs a reply bank (retrieval.ReplyBank)")
            return self.bank.best(self.context_vector, context)
        return [reply_text(row, self.vocabulary) for row in self.ids(context, seed)]

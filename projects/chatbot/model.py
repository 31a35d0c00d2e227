"""The chatbot's models: a transformer encoder-decoder (default) and GRU and LSTM baselines, trained with teacher
forcing.

Both take `context` (batch, context_len) int32 word ids (padded on the left) and
`reply_in` (batch, reply_len) int32 (<start> + the reply so far) and return logits
(batch, reply_len, vocab_size) for the next word at every position. They are built from
two sub-models, `encoder` (context -> encoded (batch, context_len, d_model), an LSTM's 2 * d_model) and
`decoder` ((encoded, context, reply_in) -> (batch, reply_len, d_model)), plus `word_logits`, the
output layer, which also stores the vocabulary in model.keras.

- transformer: token + learned position embeddings; pre-norm blocks of multi-head
  self-attention (padding mask in the encoder, causal mask in the decoder), cross-attention
  to the encoded context (padding mask) and a ReLU feed-forward layer.
- gru: a GRU over the context; a GRU over the reply started from the encoder's last state,
  with dot-product attention over the encoded context (Luong style).
- lstm: the same with LSTM cells. An LSTM has two states, h and c: the encoder returns both after each word
  (h then c along the last axis), the reply's LSTM starts from the last word's pair and attends over the h part.

Beside the generator, a dual encoder for retrieval shares the encoder: the context and a reply (its
pieces, padded like a context) are each encoded, mean-pooled over their real pieces, projected
(`context_head`, `reply_head`) and scaled to unit length; `match` (batch, batch) holds every context's
scaled cosine similarity to every reply of the batch, the right one on the diagonal (in-batch negatives).

`step_models` cuts a trained model into the two models every format runs: the encoder, and a
decoder step that returns the next word's logits at one position of a fixed-length reply.
The training loss is in loss.py, the token accuracy shown during training in metrics.py.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from common.export.layers import ClassIndex

from .config import ChatbotConfig, ModelConfig
from .tokenizer import MASK, PAD, START

PACKAGE = "chatbot"
NEVER_GENERATED = (PAD, START, MASK)


@keras.saving.register_keras_serializable(PACKAGE)
class PositionalEmbedding(layers.Layer):
    """(batch, length) int ids -> (batch, length, dim): word embedding * sqrt(dim) + learned position embedding."""

    def __init__(self, vocab_size: int, length: int, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.vocab_size, self.length, self.dim = vocab_size, length, dim
        self.words = layers.Embedding(vocab_size, dim, name="words")
        self.positions = layers.Embedding(length, dim, name="positions")

    def build(self, input_shape) -> None:
        self.words.build(input_shape)
        self.positions.build((self.length,))

    def call(self, ids):
        return self.words(ids) * math.sqrt(self.dim) + self.positions(ops.arange(self.length))

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_size": self.vocab_size, "length": self.length, "dim": self.dim}


@keras.saving.register_keras_serializable(PACKAGE)
class WordLogits(layers.Dense):
    """The output layer, one logit per word; it keeps the vocabulary (id -> word) in the model's config."""

    def __init__(self, vocabulary: list[str], **kwargs) -> None:
        kwargs.pop("units", None)
        super().__init__(len(vocabulary), **kwargs)
        self.vocabulary = list(vocabulary)

    def get_config(self) -> dict:
        return {**super().get_config(), "vocabulary": self.vocabulary}


def _padding_mask(context):
    """(batch, context_len) ids -> (batch, 1, context_len) bool: True where a query may attend."""
    return ops.expand_dims(ops.not_equal(context, 0), 1)


def _feed_forward(x, cfg: ModelConfig, name: str):
    y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ff_norm")(x)
    y = layers.Dense(cfg.ff_dim, activation="relu", name=f"{name}_ff_in")(y)  # GELU's erfc has no ONNX op
    y = layers.Dense(cfg.d_model, name=f"{name}_ff_out")(y)
    return x + layers.Dropout(cfg.dropout)(y)


def _attention(cfg: ModelConfig, name: str) -> layers.MultiHeadAttention:
    return layers.MultiHeadAttention(cfg.heads, cfg.d_model // cfg.heads, dropout=cfg.dropout, name=name)


def transformer_encoder(cfg: ChatbotConfig, vocab_size: int) -> keras.Model:
    """context (batch, context_len) int32 -> (batch, context_len, d_model)."""
    m = cfg.model
    context = keras.Input((cfg.data.context_len,), dtype="int32", name="context")
    mask = _padding_mask(context)
    x = layers.Dropout(m.dropout)(PositionalEmbedding(vocab_size, cfg.data.context_len, m.d_model)(context))
    for i in range(m.encoder_layers):
        y = layers.LayerNormalization(epsilon=1e-6, name=f"enc{i}_attn_norm")(x)
        x = x + layers.Dropout(m.dropout)(_attention(m, f"enc{i}_self_attention")(y, y, attention_mask=mask))
        x = _feed_forward(x, m, f"enc{i}")
    return keras.Model(context, layers.LayerNormalization(epsilon=1e-6, name="enc_norm")(x), name="encoder")


def transformer_decoder(cfg: ChatbotConfig, vocab_size: int) -> keras.Model:
    """(encoded (batch, context_len, d_model), context, reply_in (batch, reply_len)) -> (batch, reply_len, d_model)."""
    m, d = cfg.model, cfg.data
    encoded = keras.Input((d.context_len, m.d_model), name="encoded")
    context = keras.Input((d.context_len,), dtype="int32", name="context")
    reply = keras.Input((d.reply_len,), dtype="int32", name="reply_in")
    mask = _padding_mask(context)
    x = layers.Dropout(m.dropout)(PositionalEmbedding(vocab_size, d.reply_len, m.d_model)(reply))
    for i in range(m.decoder_layers):
        y = layers.LayerNormalization(epsilon=1e-6, name=f"dec{i}_self_norm")(x)
        attended = _attention(m, f"dec{i}_self_attention")(y, y, use_causal_mask=True)
        x = x + layers.Dropout(m.dropout)(attended)
        y = layers.LayerNormalization(epsilon=1e-6, name=f"dec{i}_cross_norm")(x)
        x = x + layers.Dropout(m.dropout)(_attention(m, f"dec{i}_cross_attention")(y, encoded, attention_mask=mask))
        x = _feed_forward(x, m, f"dec{i}")
    hidden = layers.LayerNormalization(epsilon=1e-6, name="dec_norm")(x)
    return keras.Model([encoded, context, reply], hidden, name="decoder")


@keras.saving.register_keras_serializable(PACKAGE)
class StateSequenceLSTMCell(layers.LSTMCell):
    """An LSTM cell whose output at each step is its whole state, [h, c] (batch, 2 * units), not h alone.

    The encoder's output then carries both states the decoder's LSTM starts from (the last step's h and c) through
    the one `encoded` tensor every exported encoder already returns.
    """

    def __init__(self, units: int, **kwargs) -> None:
        super().__init__(units, **kwargs)
        self.output_size = 2 * units

    def call(self, inputs, states, training=False):
        h, (_, c) = super().call(inputs, states, training=training)
        return ops.concatenate([h, c], axis=-1), [h, c]


def recurrent_encoder(cfg: ChatbotConfig, vocab_size: int) -> keras.Model:
    """context (batch, context_len) int32 -> the recurrent network's state after each word:
    gru (batch, context_len, d_model), h; lstm (batch, context_len, 2 * d_model), h then c.

    Unrolled (fixed length), so TF Lite converts it without TensorList ops. Dropout is a layer of its own on the
    word vectors: inside the recurrent layer it leaves a graph the TF.js converter cannot prune.
    """
    m = cfg.model
    context = keras.Input((cfg.data.context_len,), dtype="int32", name="context")
    x = layers.Dropout(m.dropout)(layers.Embedding(vocab_size, m.d_model, name="context_words")(context))
    if m.kind == "gru":
        rnn = layers.GRU(m.d_model, return_sequences=True, unroll=True, name="context_gru")
    else:
        rnn = layers.RNN(StateSequenceLSTMCell(m.d_model), return_sequences=True, unroll=True, name="context_lstm")
    return keras.Model(context, rnn(x), name="encoder")


def recurrent_decoder(cfg: ChatbotConfig, vocab_size: int) -> keras.Model:
    """Like `transformer_decoder`: a GRU or LSTM started from the encoder's last state (an LSTM's h and c), with
    dot-product attention (Luong style) over the encoder's h after each context word."""
    m, d = cfg.model, cfg.data
    width = 2 * m.d_model if m.kind == "lstm" else m.d_model
    encoded = keras.Input((d.context_len, width), name="encoded")
    context = keras.Input((d.context_len,), dtype="int32", name="context")
    reply = keras.Input((d.reply_len,), dtype="int32", name="reply_in")
    x = layers.Dropout(m.dropout)(layers.Embedding(vocab_size, m.d_model, name="reply_words")(reply))
    context_h = encoded[..., : m.d_model]  # (batch, context_len, d_model): h after each context word
    last = encoded[:, -1]  # the context is padded on the left: its last state is real
    if m.kind == "gru":
        states = layers.GRU(m.d_model, return_sequences=True, unroll=True, name="reply_gru")(x, initial_state=last)
    else:
        lstm = layers.LSTM(m.d_model, return_sequences=True, unroll=True, name="reply_lstm")
        states = lstm(x, initial_state=[last[:, : m.d_model], last[:, m.d_model :]])
    attended = layers.Attention(name="attention")([states, context_h], mask=[None, ops.not_equal(context, 0)])
    hidden = layers.Dense(m.d_model, activation="tanh", name="combine")(layers.Concatenate()([states, attended]))
    return keras.Model([encoded, context, reply], layers.Dropout(m.dropout)(hidden), name="decoder")


@keras.saving.register_keras_serializable(PACKAGE)
class MaskedMean(layers.Layer):
    """[encoded (batch, length, dim), ids (batch, length)] -> (batch, dim): the mean over real ids (id != 0)."""

    def call(self, inputs):
        encoded, ids = inputs
        mask = ops.expand_dims(ops.cast(ops.not_equal(ids, 0), encoded.dtype), -1)
        return ops.sum(encoded * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)


@keras.saving.register_keras_serializable(PACKAGE)
class PairScores(layers.Layer):
    """[contexts (batch, dim), replies (batch, dim)], unit vectors -> (batch, batch): scale * cosine similarity."""

    def __init__(self, scale: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs):
        contexts, replies = inputs
        return self.scale * ops.matmul(contexts, ops.transpose(replies))

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale}


def build_model(cfg: ChatbotConfig, vocabulary: list[str]) -> keras.Model:
    """The training model: {"context", "reply_in", "reply"} -> {"logits": (batch, reply_len, len(vocabulary)),
    "match": (batch, batch) context-reply scores}."""
    if cfg.model.kind == "transformer" and cfg.model.d_model % cfg.model.heads:
        raise ValueError(f"model.d_model={cfg.model.d_model} must be a multiple of model.heads={cfg.model.heads}")
    transformer = cfg.model.kind == "transformer"
    encoder = (transformer_encoder if transformer else recurrent_encoder)(cfg, len(vocabulary))
    decoder = (transformer_decoder if transformer else recurrent_decoder)(cfg, len(vocabulary))
    context = keras.Input((cfg.data.context_len,), dtype="int32", name="context")
    reply = keras.Input((cfg.data.reply_len,), dtype="int32", name="reply_in")
    encoded = encoder(context)
    hidden = decoder([encoded, context, reply])
    logits = WordLogits(vocabulary, name="word_logits")(hidden)
    reply_pieces = keras.Input((cfg.data.context_len,), dtype="int32", name="reply")
    pool, unit = MaskedMean(name="pool"), layers.UnitNormalization(name="unit")
    context_vector = unit(layers.Dense(cfg.retrieval.dim, name="context_head")(pool([encoded, context])))
    reply_vector = unit(layers.Dense(cfg.retrieval.dim, name="reply_head")(pool([encoder(reply_pieces), reply_pieces])))
    match = PairScores(cfg.retrieval.scale, name="match")([context_vector, reply_vector])
    inputs = {"context": context, "reply_in": reply, "reply": reply_pieces}
    return keras.Model(inputs, {"logits": logits, "match": match}, name=f"chatbot_{cfg.model.kind}")


def vocabulary_of(model: keras.Model) -> list[str]:
    """The words of a trained model, by id."""
    return model.get_layer("word_logits").vocabulary


def retrieval_models(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """The dual encoder's two sides (sharing the trained model's weights), each ids (batch, context_len) int32 in,
    unit vectors (batch, dim) float32 out: `context_vector` for contexts, `reply_vector` for replies' pieces."""
    encoder, pool, unit = model.get_layer("encoder"), model.get_layer("pool"), model.get_layer("unit")
    sides = []
    for name in ("context", "reply"):
        ids = keras.Input((encoder.input.shape[1],), dtype="int32", name=name)
        vector = unit(model.get_layer(f"{name}_head")(pool([encoder(ids), ids])))
        sides.append(keras.Model(ids, {"vector": vector}, name=f"chatbot_{name}_vector"))
    return sides[0], sides[1]


def dual_vectors(model: keras.Model) -> keras.Model:
    """Both sides at once, for the exported formats: `ids` (batch, context_len) int32 -> {"vectors": (batch, 2, dim)},
    [:, 0] the ids read as a context, [:, 1] read as a reply (one output: converters keep its name)."""
    context_vector, reply_vector = retrieval_models(model)
    ids = keras.Input((context_vector.input.shape[1],), dtype="int32", name="ids")
    both = ops.stack([context_vector(ids)["vector"], reply_vector(ids)["vector"]], axis=1)
    return keras.Model(ids, {"vectors": both}, name="chatbot_vectors")


def step_models(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """The encoder and the decoder step of a trained model (sharing its weights).

    - encoder: `context` (batch, context_len) int32 -> {"encoded": (batch, context_len, width) float32}, width
      d_model (an LSTM's 2 * d_model: its h and c).
    - step: `encoded`, `context`, `reply` (batch, reply_len) int32 (<start> + the words so far, zeros after)
      and `position` (batch,) int32 -> {"logits": (batch, vocab) float32, the next word after `position`;
      "next_id": (batch,) int32, its argmax}. The causal mask makes the zeros after `position` irrelevant.
      Padding, <start> and <mask> get a logit of about -1e9, so no strategy picks them.
    """
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    context_len, width = encoder.output.shape[1:]
    reply_len = decoder.inputs[2].shape[1]
    context = keras.Input((context_len,), dtype="int32", name="context")
    encoder_model = keras.Model(context, {"encoded": encoder(context)}, name="chatbot_encoder")

    encoded = keras.Input((context_len, width), name="encoded")
    step_context = keras.Input((context_len,), dtype="int32", name="context")
    reply = keras.Input((reply_len,), dtype="int32", name="reply")
    position = keras.Input((), dtype="int32", name="position")
    hidden = decoder([encoded, step_context, reply])
    picked = ops.sum(hidden * ops.expand_dims(ops.one_hot(position, reply_len), -1), axis=1)  # (batch, d_model)
    # Padding, <start> and <mask> are never generated: their logits are pushed to -1e9.
    banned = ops.sum(ops.one_hot(ops.array(NEVER_GENERATED), len(vocabulary_of(model))), axis=0)
    logits = model.get_layer("word_logits")(picked) - 1e9 * banned
    next_id = ClassIndex(name="next_id")(logits)
    inputs = {"encoded": encoded, "context": step_context, "reply": reply, "position": position}
    return encoder_model, keras.Model(inputs, {"logits": logits, "next_id": next_id}, name="chatbot_step")

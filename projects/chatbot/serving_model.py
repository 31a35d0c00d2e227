"""What the chatbot serves and exports: the text SavedModel, and the greedy replies every format is checked on.

The SavedModel TF Serving answers with takes raw text and returns the reply as text, decoded inside the graph.
Signatures (both take `text` (batch,) string: the user's message, earlier turns first, separated
by newlines; normalized and turned into ids by the graph's own TextVectorization):
- `serving_default`: greedy decoding -> `reply` (batch,) string and `reply_ids` (batch, reply_len) int32.
- `sample`: sampling, chosen per request with the scalars `temperature` (float), `top_k` (int; the
  vocabulary size or more turns it off), `top_p` (float; 1 turns it off) and `seed` (int) -> the same outputs.
Beam search is not in the graph; `chat` and the Python API have it.

String ops do not convert to TF Lite or TF.js: those formats get the token-level encoder
and decoder step instead (see export.py), and compute what `build_serving_model` does:
context ids in, greedy reply ids out (the browser page's samples.json holds its outputs).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import tokenizer
from .decoding import generate
from .model import step_models, vocabulary_of


def write_text_savedmodel(model: keras.Model, directory: Path) -> None:
    """Write the two signatures above for the trained `model` (its vocabulary inside) to `directory`."""
    vocabulary = vocabulary_of(model)
    encoder, step = step_models(model)
    vectorizer = tokenizer.make_vectorizer(vocabulary)
    vectorizer(tf.constant([""]))  # built, so the archive can track its lookup table
    context_len = encoder.input.shape[1]
    text_spec = tf.TensorSpec((None,), tf.string, name="text")

    def answer(ids: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"reply": tokenizer.ids_to_text(ids, vocabulary), "reply_ids": ids}

    def greedy(text: tf.Tensor) -> dict[str, tf.Tensor]:
        context = tokenizer.encode_contexts(text, vectorizer, context_len)
        return answer(generate(encoder, step, context))

    def sample(text, temperature, top_k, top_p, seed) -> dict[str, tf.Tensor]:
        context = tokenizer.encode_contexts(text, vectorizer, context_len)
        return answer(generate(encoder, step, context, "sample", temperature, top_k, top_p, seed))

    archive = keras.export.ExportArchive()
    archive.track(encoder)
    archive.track(step)
    archive.track(vectorizer)
    archive.add_endpoint("serving_default", greedy, input_signature=[text_spec])
    scalars = [
        tf.TensorSpec((), tf.float32, name="temperature"),
        tf.TensorSpec((), tf.int32, name="top_k"),
        tf.TensorSpec((), tf.float32, name="top_p"),
        tf.TensorSpec((), tf.int32, name="seed"),
    ]
    archive.add_endpoint("sample", sample, input_signature=[text_spec, *scalars])
    archive.write_out(str(directory), verbose=False)


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

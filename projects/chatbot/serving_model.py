"""The SavedModel TF Serving answers with: raw text in, the reply as text out, decoded inside the graph.

Signatures (both take `text` (batch,) string: the user's message, earlier turns first, separated
by newlines; normalized and turned into ids by the graph's own TextVectorization):
- `serving_default`: greedy decoding -> `reply` (batch,) string and `reply_ids` (batch, reply_len) int32.
- `sample`: sampling, chosen per request with the scalars `temperature` (float), `top_k` (int; the
  vocabulary size turns it off), `top_p` (float; 1 turns it off) and `seed` (int) -> the same outputs.
Beam search is not in the graph; `chat` and the Python API have it.

String ops do not convert to TF Lite or TF.js: those formats get the token-level encoder
and decoder step instead (see export.py).
"""

from __future__ import annotations

from pathlib import Path

import keras
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

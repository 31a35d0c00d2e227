"""Text normalization and word ids, in TensorFlow ops, so the SavedModel takes raw strings.

Normalization (the browser's chatbot-decoder.js does the same in JavaScript):
1. Lower case; common accented Latin letters lose their accents (`Café` -> `cafe`, `ACCENTS`); `’` -> `'`.
2. Every run of characters other than a-z, 0-9, `'` and `?!.,` (and newlines) becomes one space.
3. `?!.,` become words of their own (`hi, you?` -> `hi , you ?`).
4. A newline separates turns: it becomes the word `<sep>`.
Words are then split on whitespace and looked up in the vocabulary learned from the
training split (Keras `TextVectorization` built from `vocabulary=`); unknown words get id 1.

Ids: 0 padding, 1 `[UNK]`, 2 `<start>`, 3 `<end>`, 4 `<sep>`, then words by frequency.
A context is its last `context_len` ids, padded with 0 on the left; a reply is `<start>`,
its first `reply_len - 1` words and `<end>`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

PAD, UNK, START, END, SEP = 0, 1, 2, 3, 4
SPECIAL = ["<start>", "<end>", "<sep>"]  # after "" (padding) and "[UNK]", which TextVectorization adds itself
PUNCTUATION = "?!.,"
ACCENTS = {"a": "àáâãäå", "c": "ç", "e": "èéêë", "i": "ìíîï", "n": "ñ", "o": "òóôõöø", "u": "ùúûü", "y": "ýÿ"}


def normalize(text: tf.Tensor) -> tf.Tensor:
    """(batch,) string -> (batch,) string of space-separated words (see the module docstring)."""
    text = tf.strings.lower(text, encoding="utf-8")
    for plain, accented in ACCENTS.items():
        text = tf.strings.regex_replace(text, f"[{accented}]", plain)
    text = tf.strings.regex_replace(text, "[’‘`]", "'")
    text = tf.strings.regex_replace(text, rf"[^a-z0-9'{PUNCTUATION}\n]+", " ")
    text = tf.strings.regex_replace(text, rf"([{PUNCTUATION}])", r" \1 ")
    text = tf.strings.regex_replace(text, r"\n", " <sep> ")
    text = tf.strings.regex_replace(text, r" +", " ")
    return tf.strings.strip(text)


def learn_vocabulary(texts: list[str], size: int, min_count: int) -> list[str]:
    """The `size` ids' words: "", "[UNK]", the special tokens, then the most frequent words of `texts`.

    `texts` are already normalized; ties are broken alphabetically, so the vocabulary is reproducible.
    """
    from collections import Counter

    counts = Counter(word for text in texts for word in text.split())
    for token in SPECIAL:
        counts.pop(token, None)
    ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return ["", "[UNK]", *SPECIAL, *ranked[: size - 2 - len(SPECIAL)]]


def make_vectorizer(vocabulary: list[str]) -> keras.layers.TextVectorization:
    """Normalized text -> ragged word ids, built from a fixed vocabulary (no adapted state to export)."""
    return keras.layers.TextVectorization(
        standardize=None, split="whitespace", vocabulary=vocabulary[2:], ragged=True, name="words_to_ids"
    )


def pad_left(ids: tf.RaggedTensor, length: int) -> tf.Tensor:
    """(batch, None) ragged ids -> (batch, length) int32: the last `length` ids, zeros on the left."""
    ids = tf.cast(ids, tf.int32)
    kept = ids[:, -length:]
    return tf.reverse(tf.reverse(kept, axis=[1]).to_tensor(0, shape=[None, length]), axis=[1])


def encode_contexts(texts: tf.Tensor, vectorizer: keras.layers.TextVectorization, length: int) -> tf.Tensor:
    """(batch,) raw strings (turns separated by newlines) -> (batch, length) int32 context ids."""
    return pad_left(vectorizer(normalize(texts)), length)


def encode_replies(texts: tf.Tensor, vectorizer: keras.layers.TextVectorization, length: int) -> tf.Tensor:
    """(batch,) raw strings -> (batch, length + 1) int32: <start>, up to length - 1 word ids, <end>, zeros."""
    words = tf.cast(vectorizer(normalize(texts)), tf.int32)[:, : length - 1]
    batch = tf.shape(words.row_lengths())[0]
    start = tf.fill([batch, 1], START)
    end = tf.fill([batch, 1], END)
    seq = tf.concat([start, words, end], axis=1)
    return seq.to_tensor(0, shape=[None, length + 1])


def ids_to_text(ids: tf.Tensor, vocabulary: list[str]) -> tf.Tensor:
    """(batch, length) int32 reply ids -> (batch,) strings: words up to the first <end>, punctuation re-attached."""
    words = tf.gather(tf.constant(vocabulary), ids)
    keep = tf.cumsum(tf.cast(tf.equal(ids, END), tf.int32), axis=1) == 0
    keep &= ids > END  # padding, [UNK], <start> and <end> are not shown
    words = tf.where(keep, words, "")
    text = tf.strings.reduce_join(words, axis=1, separator=" ")
    text = tf.strings.regex_replace(text, r" +", " ")
    text = tf.strings.regex_replace(text, rf" ([{PUNCTUATION}])", r"\1")
    return tf.strings.strip(text)


def normalize_all(texts: list[str], chunk: int = 8192) -> list[str]:
    """`normalize` over a Python list, in chunks (for learning the vocabulary)."""
    out: list[str] = []
    for i in range(0, len(texts), chunk):
        out += [t.decode() for t in normalize(tf.constant(texts[i : i + chunk])).numpy()]
    return out


def batched_ids(fn, texts: list[str], chunk: int = 8192) -> np.ndarray:
    """`fn` ((batch,) strings -> (batch, n) ids) over a Python list, in chunks: (len(texts), n) int32."""
    return np.concatenate([fn(tf.constant(texts[i : i + chunk])).numpy() for i in range(0, len(texts), chunk)])

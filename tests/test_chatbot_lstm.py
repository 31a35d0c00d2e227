"""The chatbot's LSTM kind: both of its states travel from the encoder to the decoder, and a briefly trained LSTM
exports to every format with Keras's greedy replies."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from common.config import make_config
from projects.chatbot.config import CONFIG, PRESETS

from .conftest import run_project

# The smoke preset with LSTM cells and shorter contexts and replies (fewer unrolled steps to trace and convert),
# trained long enough at a higher rate to answer different prompts differently.
LSTM_SETTINGS = [
    "--preset",
    "smoke",
    "--set",
    "model.kind=lstm",
    "--set",
    "data.context_len=12",
    "--set",
    "data.reply_len=8",
    "--set",
    "train.epochs=10",  # measured: 6 distinct greedy replies to the 8 prompts, token accuracy 0.59 (4 epochs: 1)
    "--set",
    "train.learning_rate=0.01",
]
VOCABULARY = ["<pad>", "<start>", "<end>", "<mask>", *(f"w{i}" for i in range(60))]


def lstm_config():
    """The smoke preset's config with `model.kind=lstm`."""
    cfg = make_config(CONFIG, PRESETS, "smoke")
    cfg.model.kind = "lstm"
    return cfg


def test_the_lstm_preset_only_changes_the_kind_and_the_default_stays_a_transformer():
    assert PRESETS["lstm"].changes == {"model.kind": "lstm", "model.weights": "none"}  # no MLM encoder to start from
    assert make_config(CONFIG, PRESETS, "default").model.kind == "transformer"


def test_the_encoder_returns_h_and_c_and_the_decoder_starts_from_the_last_pair(tmp_path):
    import keras

    from projects.chatbot.model import build_model, step_models

    keras.utils.set_random_seed(0)
    cfg = lstm_config()
    d = cfg.model.d_model
    model = build_model(cfg, VOCABULARY)
    encoder, step = step_models(model)
    rng = np.random.default_rng(0)
    context = rng.integers(4, len(VOCABULARY), (3, cfg.data.context_len)).astype(np.int32)
    encoded = np.asarray(encoder(context)["encoded"])
    assert encoded.shape == (3, cfg.data.context_len, 2 * d)

    # The same weights in Keras's own LSTM: its outputs are the h half, its final carry the last step's c half.
    inner = model.get_layer("encoder")
    lstm = keras.layers.LSTM(d, return_sequences=True, return_state=True)
    words = inner.get_layer("context_words")(context)
    lstm.build(words.shape)
    lstm.set_weights(inner.get_layer("context_lstm").cell.get_weights())
    sequence, _, carry = lstm(words)
    np.testing.assert_allclose(encoded[..., :d], sequence, atol=1e-6)
    np.testing.assert_allclose(encoded[:, -1, d:], carry, atol=1e-6)

    reply = np.zeros((3, cfg.data.reply_len), np.int32)
    reply[:, 0] = 1

    def first_logits(states: np.ndarray) -> np.ndarray:
        inputs = {"encoded": states, "context": context, "reply": reply, "position": np.zeros(3, np.int32)}
        return np.asarray(step(inputs)["logits"])

    logits = first_logits(encoded)
    last_c_changed, earlier_c_changed = encoded.copy(), encoded.copy()
    last_c_changed[:, -1, d:] += 1.0
    earlier_c_changed[:, :-1, d:] += 1.0
    assert np.abs(first_logits(last_c_changed) - logits).max() > 1e-3  # the decoder starts from the last c
    np.testing.assert_array_equal(first_logits(earlier_c_changed), logits)  # attention reads h only

    model.save(tmp_path / "lstm.keras")
    reloaded = keras.models.load_model(tmp_path / "lstm.keras", safe_mode=True)
    np.testing.assert_array_equal(np.asarray(step_models(reloaded)[0](context)["encoded"]), encoded)


@pytest.fixture(scope="module")
def exported_lstm(tmp_path_factory) -> Path:
    """A briefly trained LSTM chatbot (`train`, then `export`), once for this module."""
    out = tmp_path_factory.mktemp("chatbot_lstm") / "chatbot"
    for command in (["train"], ["export", "--formats", "tflite_float32,tfjs"]):  # ONNX: as the GRU's, test_chatbot
        result = run_project("chatbot", *command, *LSTM_SETTINGS, "--output-dir", str(out), timeout=1800)
        assert result.returncode == 0, f"{command}\n" + result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.mark.slow
def test_a_trained_lstm_learns_and_every_format_gives_its_greedy_replies(exported_lstm):
    history = list(csv.DictReader((exported_lstm / "history.csv").open()))
    val_loss = [float(row["val_logits_loss"]) for row in history]
    assert val_loss[-1] < val_loss[0] - 0.5, val_loss  # measured 5.3 after the first epoch, 3.4 after the last
    parity = json.loads((exported_lstm / "parity.json").read_text())
    formats = {row["format"]: row for row in parity["formats"]}
    assert set(formats) == {"keras", "savedmodel", "tflite_float32", "tfjs"}
    for name, row in formats.items():
        assert row["error"] is None, (name, row["error"])
        assert row["agreement"] == 1.0 and row["max_abs_diff"] <= 1e-4, name
    assert parity["ok"] and parity["version"] == 1
    replies = {tuple(ids) for ids in parity["keras_reply_ids"]}
    assert len(replies) > 1, "every prompt got the same reply: the greedy loop was not checked on distinct replies"
    for path in ("tflite/encoder.tflite", "tflite/decoder_step.tflite", "tfjs/model.json", "tfjs/encoder/model.json"):
        assert (exported_lstm / "export" / path).exists(), path

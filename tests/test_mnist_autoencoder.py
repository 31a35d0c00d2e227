"""mnist's autoencoder kind: a denoising autoencoder trained from the command line rebuilds test digits far better
than their mean does, reports its error with a grid of reconstructions, and exports with parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from common.config import ConfigError, make_config
from projects.mnist.config import CONFIG, PRESETS

from .conftest import run_project

NOISE = 0.3
# The smoke preset's 2 epochs leave blurred digits (mse_ratio 0.51 measured); 4 reach 0.36, seconds more.
SETTINGS = [
    *("--preset", "smoke", "--set", "model.kind=autoencoder", "--set", f"model.noise={NOISE}"),
    *("--set", "train.epochs=4"),
]
# A float TF Lite and the browser's TF.js: the autoencoder's path through both kinds of converter.
FORMATS = "tflite_float32,tfjs"


def autoencoder_config(**model):
    """The smoke preset's config with `model.kind=autoencoder` and `model` keys changed."""
    cfg = make_config(CONFIG, PRESETS, "smoke")
    cfg.model.kind = "autoencoder"
    for key, value in model.items():
        setattr(cfg.model, key, value)
    return cfg


def test_the_default_model_stays_the_cnn():
    assert make_config(CONFIG, PRESETS, "default").model.kind == "cnn"


def test_autoencoder_squeezes_a_digit_into_its_code_and_rebuilds_its_shape():
    from projects.mnist.project import PROJECT

    model = PROJECT.build_model(autoencoder_config(latent=12))
    assert model.output.shape[1:] == (28, 28, 1) and model.get_layer("code").output.shape[1:] == (12,)
    out = model.predict(np.random.default_rng(0).random((2, 28, 28, 1), np.float32), verbose=0)
    assert out.min() >= 0 and out.max() <= 1
    with pytest.raises(ConfigError, match="1 or 2 entries"):
        PROJECT.build_model(autoencoder_config(filters=(8, 16, 32)))  # 28 px cannot be halved three times


def test_denoising_pairs_target_the_clean_digit_and_noise_stays_in_range():
    import tensorflow as tf

    from projects.mnist.reconstruction import denoising_pairs

    digits = tf.constant(np.random.default_rng(0).random((4, 28, 28, 1), np.float32))
    noisy, target = denoising_pairs(NOISE)(digits, tf.zeros(4))
    np.testing.assert_array_equal(target.numpy(), digits.numpy())
    assert noisy.numpy().min() >= 0 and noisy.numpy().max() <= 1
    assert 0.1 < np.std(noisy.numpy() - digits.numpy()) < NOISE
    plain, _ = denoising_pairs(0.0)(digits, tf.zeros(4))
    np.testing.assert_array_equal(plain.numpy(), digits.numpy())


@pytest.fixture(scope="module")
def autoencoder_run(tmp_path_factory) -> Path:
    """`all` then `export` of the smoke preset's denoising autoencoder, once for this module."""
    out = tmp_path_factory.mktemp("mnist_autoencoder")
    for command in (["all"], ["export", "--formats", FORMATS]):
        result = run_project("mnist", *command, *SETTINGS, "--output-dir", str(out), timeout=1200)
        assert result.returncode == 0, f"{command}\n" + result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.mark.slow
def test_trained_autoencoder_beats_the_mean_digit_and_the_noise_and_shows_its_reconstructions(autoencoder_run):
    from PIL import Image

    report = json.loads((autoencoder_run / "report.json").read_text())
    metrics = report["metrics"]
    # A model that ignores its input can do no better than the mean digit (mse_ratio 1).
    assert metrics["mse_ratio"] < 0.5, metrics
    assert metrics["reconstruction_mse"] < 0.7 * metrics["noisy_input_mse"], metrics  # it removes noise
    assert metrics["psnr_db"] == pytest.approx(10 * np.log10(1 / metrics["reconstruction_mse"]))
    assert "plots/reconstructions.png" in report["plots"]
    assert "reconstructions" in (autoencoder_run / "report.md").read_text()
    grid = Image.open(autoencoder_run / "plots" / "reconstructions.png")
    assert grid.height > grid.width / 8 * 2  # three rows: test digits, noisy inputs, outputs


@pytest.mark.slow
def test_exported_autoencoder_rebuilds_digits_like_keras_in_every_format(autoencoder_run):
    parity = json.loads((autoencoder_run / "parity.json").read_text())
    formats = {row["format"]: row for row in parity["formats"]}
    assert set(formats) == {"keras", "savedmodel", *FORMATS.split(",")}
    for name, row in formats.items():
        assert row["error"] is None, (name, row["error"])
        assert row["max_abs_diff"] <= (row["bound"] or 0.0), name  # Keras's own row: no bound, no difference
        assert row["agreement"] >= 0.999, name  # the same pixels are ink
    assert formats["tflite_float32"]["max_abs_diff"] <= 1e-4 and parity["ok"]
    assert parity["signature"]["outputs"] == {"reconstruction": "float32 (None, 28, 28, 1)"}
    assert formats["keras"]["metric"] > 0.9  # pixels on the right side of ink or background
    assert (autoencoder_run / "export" / "tflite" / "float32.tflite").exists()


@pytest.mark.slow
def test_predict_scores_a_digit_as_more_familiar_than_noise(autoencoder_run, tmp_path, capsys):
    import keras

    from projects.mnist.project import PROJECT

    cfg = autoencoder_config(noise=NOISE)
    digit = PROJECT.sample_inputs(cfg)[:1, ..., 0]
    noise = np.random.default_rng(0).random((1, 28, 28), np.float32)
    np.save(tmp_path / "digit.npy", digit)
    np.save(tmp_path / "noise.npy", noise)
    model = keras.models.load_model(autoencoder_run / "model.keras", safe_mode=True)
    failed = PROJECT.predict(cfg, model, [str(tmp_path / "digit.npy"), str(tmp_path / "noise.npy"), "missing.png"])
    lines = capsys.readouterr().out.splitlines()
    errors = {line.split(":")[0]: float(line.rsplit(" ", 1)[1]) for line in lines if "reconstruction error" in line}
    assert failed == 1 and any(line.startswith("error:") for line in lines)
    assert errors[str(tmp_path / "digit.npy")] < 0.5 * errors[str(tmp_path / "noise.npy")], errors

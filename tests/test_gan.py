"""The GAN: losses, FID/KID, the training step and its EMA, the serving model, and a smoke run end to end."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common.config import make_config
from common.paths import ArtifactPaths
from projects.gan.config import CONFIG, PRESETS, GanConfig

from .browser import demo_page, needs_chromium
from .conftest import REPO, project_env, run_project


def smoke() -> GanConfig:
    """The smoke preset's config."""
    return make_config(CONFIG, PRESETS, "smoke")


def test_losses_reward_the_right_scores():
    import tensorflow as tf

    from projects.gan.loss import discriminator_loss, generator_loss

    confident_real, confident_fake = tf.fill((4, 1), 2.0), tf.fill((4, 1), -2.0)
    assert float(discriminator_loss("hinge", confident_real, confident_fake)) == 0.0  # both beyond the margin
    assert float(discriminator_loss("hinge", confident_fake, confident_real)) == pytest.approx(6.0)
    assert float(generator_loss("hinge", confident_fake)) == pytest.approx(2.0)
    plain = float(discriminator_loss("nonsaturating", confident_real, confident_fake))
    smoothed = float(discriminator_loss("nonsaturating", confident_real, confident_fake, label_smoothing=0.2))
    assert 0.0 < plain < smoothed  # smoothing stops rewarding ever more confident real scores
    assert float(generator_loss("nonsaturating", confident_real)) < float(
        generator_loss("nonsaturating", confident_fake)
    )


def test_fid_and_kid_measure_distance_between_feature_sets():
    from projects.gan.features import diversity, frechet_distance, kernel_distance

    rng = np.random.default_rng(0)
    real, same = rng.standard_normal((2000, 8)), rng.standard_normal((2000, 8))
    shifted = same + np.array([2.0] + [0.0] * 7)
    assert frechet_distance(real, same) < 0.05
    assert frechet_distance(real, shifted) == pytest.approx(4.0, rel=0.05)  # |mean shift|^2, same covariance
    assert abs(kernel_distance(real, same)) < 0.01 < kernel_distance(real, shifted)
    images = rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    assert diversity(np.repeat(images[:1], 8, axis=0)) == 0.0 < diversity(images)


def test_idx_reader_reads_fashion_mnist_files(tmp_path):
    from projects.gan.data import read_idx

    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in images.shape)
    path.write_bytes(gzip.compress(header + images.tobytes()))
    np.testing.assert_array_equal(read_idx(path), images)


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="run `make project=gan install`")
def test_fashion_mnist_gives_labelled_64px_rgb_images():
    from projects.gan.data import class_names, load_splits

    cfg = make_config(CONFIG, PRESETS, "fashion").data
    cfg.max_images = 300
    data = load_splits(cfg)
    assert data.source == "debian:dataset-fashion-mnist" and data.class_names == class_names(cfg)
    image, label = next(iter(data.train.as_numpy_iterator()))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8 and 0 <= label < 10
    assert (image[..., 0] == image[..., 2]).all() and image.max() > 100  # grey, repeated over RGB


def _tiny_config(conditional: bool = False):
    cfg = smoke()
    cfg.model.latent_dim, cfg.model.conditional = 8, conditional
    cfg.train.g_learning_rate = cfg.train.d_learning_rate = 2e-3  # a visible change in a few steps
    return cfg


def test_training_moves_the_ema_generator_towards_the_data():
    """On a one-colour data set (red), a few steps turn the EMA generator's average output from grey towards red."""
    import keras
    import tensorflow as tf

    from projects.gan.project import PROJECT
    from projects.gan.sampling import generate, seeded_inputs

    keras.utils.set_random_seed(0)
    gan = PROJECT.build_gan(_tiny_config(), num_classes=1)
    red = np.zeros((16, 64, 64, 3), np.float32) + np.array([0.8, -0.8, -0.8], np.float32)
    ds = tf.data.Dataset.from_tensor_slices((red, np.zeros(16, np.int32))).batch(8).repeat()
    inputs = seeded_inputs(gan.ema_generator, 16, 0)
    before = generate(gan.ema_generator, inputs).mean(axis=(0, 1, 2))
    gan.fit(ds, steps_per_epoch=80, epochs=1, verbose=0)
    after = generate(gan.ema_generator, inputs).mean(axis=(0, 1, 2))
    assert abs(before[0] - before[1]) < 10  # grey at first
    assert after[0] - after[1] > 40 and after[0] - after[2] > 40, (before, after)
    ema, raw = gan.ema_generator.get_weights(), gan.generator.get_weights()
    assert any(not np.allclose(e, w) for e, w in zip(ema, raw, strict=True))  # a moving average, not a copy


def test_conditional_gan_trains_and_serves_uint8_images():
    import tensorflow as tf

    from projects.gan.project import PROJECT
    from projects.gan.serving_model import build_serving_model

    gan = PROJECT.build_gan(_tiny_config(conditional=True), num_classes=3)
    images = np.random.default_rng(0).uniform(-1, 1, (8, 64, 64, 3)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((images, np.arange(8, dtype=np.int32) % 3)).batch(4)
    history = gan.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"][0]) and np.isfinite(history.history["g_loss"][0])
    serving = build_serving_model(gan.ema_generator)
    assert {t.name for t in serving.inputs} == {"noise", "label"}
    noise = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
    out = serving({"noise": noise, "label": np.array([0, 2], np.int32)})
    image = np.asarray(out["image"])
    assert image.shape == (2, 64, 64, 3) and image.dtype == np.uint8
    expected = np.clip(np.round((np.asarray(gan.ema_generator([noise, np.array([0, 2])])) + 1) * 127.5), 0, 255)
    np.testing.assert_array_equal(image, expected.astype(np.uint8))


def test_conditional_needs_labelled_data():
    from common.config import ConfigError
    from projects.gan.project import PROJECT

    with pytest.raises(ConfigError, match=r"model\.conditional=false"):
        PROJECT.build_gan(_tiny_config(conditional=True), num_classes=1)


def test_demo_request_follows_the_served_signature():
    """The Gradio demo draws noise of the served length from the seed, and adds the class only when one is taken."""
    from types import SimpleNamespace

    from projects.gan.demo import DEMO, SCALE, noise_from_seed

    DEMO.use_signature(SimpleNamespace(inputs={"noise": SimpleNamespace(shape=(None, 16))}))
    request = DEMO.gradio_request(3, 5)
    assert set(request) == {"noise"} and request["noise"].shape == (1, 16)
    np.testing.assert_array_equal(request["noise"], noise_from_seed(3, 16))
    DEMO.use_signature(SimpleNamespace(inputs={"noise": SimpleNamespace(shape=(None, 8)), "label": None}))
    assert DEMO.gradio_request(3, 5)["label"].tolist() == [5]
    with pytest.raises(ValueError, match="seed"):
        DEMO.gradio_request(None, 0)
    image = DEMO.answer(request, {"image": np.zeros((1, 64, 64, 3), np.uint8)})
    assert image.shape == (64 * SCALE, 64 * SCALE, 3) and image.dtype == np.uint8


SMOKE_STEPS = ("--set", "train.steps_per_epoch=30")  # a second epoch long enough to be killed in


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`train --preset smoke` killed once its first epoch is backed up, then `all`, which resumes from there."""
    out = tmp_path_factory.mktemp("gan_smoke")
    command = [sys.executable, "-m", "projects.gan", "train", "--preset", "smoke", *SMOKE_STEPS, "--output-dir"]
    command.append(str(out))
    first = subprocess.Popen(command, cwd=REPO, env=project_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    backup = out / "checkpoints" / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 300
    while not backup.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    first.kill()
    assert first.wait() != 0, "the first run finished before it could be killed"
    result = run_project("gan", "all", "--preset", "smoke", *SMOKE_STEPS, "--output-dir", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


@pytest.mark.slow
def test_smoke_run_resumes_and_reports_progress(smoke_run):
    out, result = smoke_run
    assert "Resuming from the backup" in result.stdout and "1 of 2 epochs already done" in result.stdout
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "fid" in history[0]  # header + one row per epoch, across the two processes
    steps = (out / "steps.csv").read_text().splitlines()  # the optimizer's step count was restored too
    assert steps[0] == "step,d_loss,g_loss" and [int(r.split(",")[0]) for r in steps[1:]] == list(range(1, 61))
    grids = sorted(p.name for p in (out / "plots" / "samples").glob("*.png"))
    assert grids == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    from PIL import Image

    with Image.open(out / "plots" / "progress.gif") as gif:
        assert gif.n_frames == 3
    report = json.loads((out / "report.json").read_text())
    m = report["metrics"]
    assert m["fid"] > 0 and m["fid_initial"] > 0 and m["fid_ratio"] == pytest.approx(m["fid_initial"] / m["fid"])
    assert "not Inception" in m["fid_features"] and "not Inception" in (out / "report.md").read_text()
    for plot in ("losses", "fid", "final_grid", "interpolation", "nearest_neighbours"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 2_000, plot
    assert any((out / "logs" / "samples").iterdir())  # the grids in TensorBoard


@pytest.mark.slow
def test_generate_writes_a_grid(smoke_run):
    from types import SimpleNamespace

    from PIL import Image

    from projects.gan.project import PROJECT

    out, _ = smoke_run
    PROJECT.run_command("generate", smoke(), ArtifactPaths.for_project("gan", out), SimpleNamespace(inputs=["4", "3"]))
    with Image.open(out / "generated.png") as img:
        assert img.size == (2 * (4 * 66 + 2), 2 * 68)  # 4 images of 64 px with 2 px gaps, doubled


@pytest.fixture(scope="module")
def smoke_export(smoke_run) -> Path:
    out, _ = smoke_run
    result = run_project("gan", "export", "--preset", "smoke", *SMOKE_STEPS, "--output-dir", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.mark.slow
def test_export_matches_keras_in_every_format(smoke_export):
    from projects.gan.project import PROJECT

    parity = json.loads((smoke_export / "parity.json").read_text())
    assert parity["ok"] is True, parity
    assert parity["signature"] == {
        "inputs": {"noise": "float32 (None, 16)"},
        "outputs": {"image": "uint8 (None, 64, 64, 3)"},
    }
    rows = {r["format"]: r for r in parity["formats"]}
    for name in ("savedmodel", "tflite_float32", "tfjs", "onnx"):
        assert rows[name]["max_abs_diff"] <= PROJECT.float_tolerance and rows[name]["agreement"] > 0.99, name


@pytest.mark.slow
def test_gradio_demo_answers_a_seed_with_the_image_generate_draws(smoke_export):
    pytest.importorskip("gradio")
    from serving.gradio_app import predictor

    predict, source = predictor("gan", smoke_export / "serving")
    image = predict(3, 0)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8 and "version 1" in source
    import keras

    from projects.gan.sampling import generate, seeded_inputs

    model = keras.models.load_model(smoke_export / "model.keras")
    expected = generate(model, seeded_inputs(model, 1, 3))[0]
    assert np.max(np.abs(image[::4, ::4].astype(int) - expected.astype(int))) <= 1


@pytest.mark.slow
@needs_chromium
def test_browser_page_matches_keras_and_draws_the_grid(smoke_export):
    from common.web_demo import write_samples
    from projects.gan.project import PROJECT

    out = smoke_export
    write_samples(PROJECT, smoke(), ArtifactPaths.for_project("gan", out))
    with demo_page("gan", out) as (page, errors):
        samples = page.evaluate("window.demo.samples")
        assert samples["latent_dim"] == 16 and samples["conditional"] is False
        in_browser = np.asarray(page.evaluate("window.demo.predictSamples()")["image"])
        in_keras = np.asarray(samples["outputs"]["image"]["data"])
        assert in_browser.shape == in_keras.shape == (8 * 64 * 64 * 3,)
        assert np.max(np.abs(in_browser - in_keras)) <= PROJECT.float_tolerance
        assert page.locator("#grid canvas").count() == 16 and page.locator("#variations canvas").count() == 8
        page.locator("#grid canvas").nth(3).click()  # vary the fourth image
        page.fill("#t", "0.25")
        page.dispatch_event("#t", "input")
        assert not errors, errors

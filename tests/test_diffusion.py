"""The diffusion model: its schedule and DDIM arithmetic, bad input, and a smoke run end to end (killed and resumed)
whose loss falls, whose samples score a FID far below pure noise's, and whose denoiser's exports agree with Keras."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from common.config import ConfigError, make_config
from projects.diffusion.config import CONFIG, PRESETS, DiffusionConfig

from .browser import demo_page, needs_chromium
from .conftest import REPO, project_env, run_project


def smoke() -> DiffusionConfig:
    """The smoke preset's config."""
    return make_config(CONFIG, PRESETS, "smoke")


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_schedules_remove_the_image_step_by_step(kind):
    from projects.diffusion.schedule import alphas_cumprod

    abar = alphas_cumprod(kind, 1000)
    assert abar.shape == (1000,) and np.all(np.diff(abar) < 0)  # each step removes some of the image
    assert 0.99 < abar[0] < 1.0 and 0.0 < abar[-1] < 1e-3  # almost clean at t=0, almost pure noise at T-1


def test_ddim_timesteps_are_the_same_in_python_and_in_the_graph():
    import tensorflow as tf

    from projects.diffusion.sampling import timestep_at

    for steps in (1, 4, 50, 999, 1000):
        python = [timestep_at(i, steps, 1000) for i in range(steps + 1)]
        graph = timestep_at(tf.range(steps + 1), tf.constant(steps), 1000).numpy().tolist()
        assert python == graph and python[0] == 999 and python[-1] == 1000  # T-1 first, then "clean"
        assert python[-2] == (0 if steps > 1 else 999) and python[:-1] == sorted(python[:-1], reverse=True)


def test_ddim_and_ddpm_with_a_perfect_denoiser_return_the_clean_image():
    """A denoiser that knows the image predicts exactly its noise: every sampler must then land on that image."""
    import tensorflow as tf

    from projects.diffusion.sampling import Sampler
    from projects.diffusion.schedule import alphas_cumprod

    abar = alphas_cumprod("cosine", 100).astype(np.float32)
    clean = np.random.default_rng(0).uniform(-0.9, 0.9, (2, 8, 8, 3)).astype(np.float32)

    def oracle(noisy, timestep, label):
        a = abar[timestep].reshape(-1, 1, 1, 1)
        return (noisy - np.sqrt(a) * clean) / np.sqrt(1 - a)

    sampler = Sampler(oracle, abar, 0, 8)
    x = tf.random.normal(clean.shape, seed=1)
    for steps in (1, 7, 100):
        np.testing.assert_allclose(sampler.ddim(x, None, steps).numpy(), clean, atol=1e-3)  # float32 at abar ~ 0
    np.testing.assert_allclose(sampler.ddim(x, None, 10, eta=1.0, seed=3).numpy(), clean, atol=1e-3)
    np.testing.assert_allclose(sampler.ddpm(x, None).numpy(), clean, atol=1e-3)


def test_guidance_mixes_conditional_and_unconditional_noise():
    import tensorflow as tf

    from projects.diffusion.sampling import guided

    cond, uncond = tf.ones((2, 1, 1, 1)), tf.zeros((2, 1, 1, 1))
    assert guided(cond, uncond, 0.0).numpy().ravel().tolist() == [0.0, 0.0]  # the class ignored
    assert guided(cond, uncond, 1.0).numpy().ravel().tolist() == [1.0, 1.0]  # plain conditional
    assert guided(cond, uncond, [3.0, 0.5]).numpy().ravel().tolist() == [3.0, 0.5]  # per image


def test_guidance_applies_only_inside_its_interval_in_python_and_in_the_graph():
    import tensorflow as tf

    from projects.diffusion.sampling import Sampler, guided_timesteps, is_guided
    from projects.diffusion.schedule import alphas_cumprod

    assert guided_timesteps((0.0, 0.94), 1000) == (0, 940) and guided_timesteps((0.0, 1.0), 200) == (0, 200)
    bounds = guided_timesteps((0.2, 0.5), 100)
    python = [is_guided(t, bounds) for t in (0, 19, 20, 50, 51, 99)]
    graph = [bool(is_guided(tf.constant(t), bounds)) for t in (0, 19, 20, 50, 51, 99)]
    assert python == graph == [False, False, True, True, False, False]

    rows = []  # (timestep, batch) of each denoiser call: guidance runs the class and "no class" together

    def record(noisy, timestep, label):
        rows.append((int(timestep[0]), len(noisy)))
        return np.zeros_like(noisy)

    abar = alphas_cumprod("cosine", 100).astype(np.float32)
    x = tf.zeros((3, 4, 4, 3))
    Sampler(record, abar, 5, 4, (0.2, 0.5)).ddim(x, np.zeros(3, np.int32), 4, guidance=3.0)
    assert rows == [(99, 3), (66, 3), (33, 6), (0, 3)]  # timesteps 99, 66, 33, 0: only 33 lies in [20, 50]
    rows.clear()
    Sampler(record, abar, 5, 4).ddim(x, np.zeros(3, np.int32), 4, guidance=3.0)
    assert rows == [(99, 6), (66, 6), (33, 6), (0, 6)]  # the default interval guides every step


def test_the_loss_is_the_mean_squared_error_of_the_noise():
    import tensorflow as tf

    from projects.diffusion.loss import noise_mse

    noise = tf.constant(np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3))
    assert float(noise_mse(noise, noise)) == 0.0
    assert float(noise_mse(noise, noise + 2.0)) == pytest.approx(4.0)
    assert float(noise_mse(tf.ones((1, 2, 2, 3)), tf.zeros((1, 2, 2, 3)))) == pytest.approx(1.0)


def test_min_snr_weights_clamp_only_the_nearly_clean_timesteps():
    import tensorflow as tf

    from projects.diffusion.loss import min_snr_weights, noise_mse

    # abar 0.5 -> SNR 1, 0.8 -> 4, 0.9 -> 9, 0.99 -> 99: gamma 5 leaves the first two alone and scales the others
    abar = tf.constant([0.5, 0.8, 0.9, 0.99])
    assert min_snr_weights(abar, 5.0).numpy() == pytest.approx([1.0, 1.0, 5 / 9, 5 / 99], rel=1e-4)
    assert min_snr_weights(abar, 0.0).numpy().tolist() == [1.0, 1.0, 1.0, 1.0]  # off
    # weighted per example: only the second example's error (4 per pixel) counts, at half weight
    noise = tf.zeros((2, 2, 2, 3))
    predicted = tf.concat([tf.zeros((1, 2, 2, 3)), tf.fill((1, 2, 2, 3), 2.0)], 0)
    assert float(noise_mse(noise, predicted, tf.constant([1.0, 0.5]))) == pytest.approx((0 + 0.5 * 4) / 2)


def test_a_v_prediction_becomes_exactly_the_noise_it_implies():
    from projects.diffusion.model import NoiseFromVelocity
    from projects.diffusion.schedule import alphas_cumprod

    abar = alphas_cumprod("cosine", 100)
    timestep = np.array([0, 50, 99], np.int32)  # nearly clean, half, nearly pure noise (abar ~ 1e-9)
    rng = np.random.default_rng(0)
    x0, eps = rng.uniform(-1, 1, (3, 4, 4, 3)), rng.normal(size=(3, 4, 4, 3))
    a = abar[timestep].reshape(-1, 1, 1, 1)
    noisy, velocity = np.sqrt(a) * x0 + np.sqrt(1 - a) * eps, np.sqrt(a) * eps - np.sqrt(1 - a) * x0
    layer = NoiseFromVelocity(abar)
    out = np.asarray(layer([noisy.astype(np.float32), velocity.astype(np.float32), timestep]))
    np.testing.assert_allclose(out, eps, atol=1e-5)
    wrong = np.asarray(layer([noisy.astype(np.float32), velocity.astype(np.float32), timestep[::-1].copy()]))
    assert np.abs(wrong - eps).max() > 0.1  # the timestep's abar, not another's


@pytest.mark.parametrize(("scale_shift", "prediction"), [(False, "noise"), (True, "v")])
def test_the_class_steers_either_conditioning_and_the_denoiser_reloads(scale_shift, prediction, tmp_path):
    import keras

    from projects.diffusion.model import build_denoiser
    from projects.diffusion.schedule import alphas_cumprod

    cfg = smoke().model
    cfg.scale_shift, cfg.prediction = scale_shift, prediction
    keras.utils.set_random_seed(0)
    denoiser = build_denoiser(cfg, 16, alphas_cumprod("cosine", 200), num_classes=3)
    for layer in denoiser.layers:  # the zero-initialised output convolutions would hide every input's effect
        if layer.name.endswith("conv2") or (layer.name in ("noise", "velocity") and hasattr(layer, "kernel")):
            layer.kernel.assign(np.random.default_rng(1).normal(0, 0.05, layer.kernel.shape))
    noisy = np.random.default_rng(2).normal(size=(2, 16, 16, 3)).astype(np.float32)
    timestep = np.array([100, 100], np.int32)

    def noise(label: int) -> np.ndarray:
        inputs = {"noisy": noisy, "timestep": timestep, "label": np.full(2, label, np.int32)}
        return keras.ops.convert_to_numpy(denoiser(inputs)["noise"])

    assert np.abs(noise(0) - noise(1)).mean() > 1e-4  # the class reaches the output
    denoiser.save(tmp_path / "denoiser.keras")
    reloaded = keras.models.load_model(tmp_path / "denoiser.keras")
    inputs = {"noisy": noisy, "timestep": timestep, "label": np.zeros(2, np.int32)}
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reloaded(inputs)["noise"]), noise(0), atol=1e-5)


def test_bad_sampling_settings_name_the_valid_range():
    from projects.diffusion.config import check_class, check_sampling

    with pytest.raises(ConfigError, match=r"\[1, 200\]"):
        check_sampling(0, 200, 1.0)
    with pytest.raises(ConfigError, match=r"\[1, 200\]"):
        check_sampling(201, 200, 1.0)
    with pytest.raises(ConfigError, match=">= 0"):
        check_sampling(10, 200, -0.5)
    with pytest.raises(ConfigError, match="0 <= start <= end <= 1"):
        check_sampling(10, 200, 2.0, (0.5, 0.2))
    with pytest.raises(ConfigError, match="0 <= start <= end <= 1"):
        check_sampling(10, 200, 2.0, (0.0, 0.5, 1.0))
    with pytest.raises(ConfigError, match="0 to 8"):
        check_class(9, 9)
    check_sampling(200, 200, 0.0)
    check_class(-1, 9)


def test_steps_above_the_schedule_exit_2_with_the_range(tmp_path):
    result = run_project(
        "diffusion", "generate", "--preset", "smoke", "--set", "sampling.steps=500", "--output-dir", str(tmp_path)
    )
    assert result.returncode == 2 and "[1, 200]" in result.stderr, result.stderr[-2000:]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`train --preset smoke` killed once its first epoch is backed up, then `all`, which resumes from there."""
    out = tmp_path_factory.mktemp("diffusion_smoke")
    command = [sys.executable, "-m", "projects.diffusion", "train", "--preset", "smoke", "--output-dir", str(out)]
    first = subprocess.Popen(command, cwd=REPO, env=project_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    backup = out / "checkpoints" / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 900
    while not backup.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    first.kill()
    assert first.wait() != 0, "the first run finished before it could be killed"
    result = run_project("diffusion", "all", "--preset", "smoke", "--output-dir", str(out), timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


@pytest.mark.slow
def test_smoke_run_resumes_and_its_loss_falls(smoke_run):
    out, result = smoke_run
    steps_per_epoch = smoke().train.steps_per_epoch
    assert "Resuming from the backup" in result.stdout and "1 of 2 epochs already done" in result.stdout
    rows = (out / "steps.csv").read_text().splitlines()
    assert rows[0] == "step,loss"
    steps = [int(r.split(",")[0]) for r in rows[1:]]
    assert steps == list(range(1, 2 * steps_per_epoch + 1))  # the optimizer's step count was restored too
    loss = np.array([float(r.split(",")[1]) for r in rows[1:]])
    assert loss[-20:].mean() < 0.6 * loss[:10].mean(), loss
    grids = sorted(p.name for p in (out / "plots" / "samples").glob("*.png"))
    assert grids == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    for plot in ("loss", "final_grid", "steps_comparison", "denoising_strip", "ddpm_grid"):
        assert (out / "plots" / f"{plot}.png").exists(), plot


@pytest.mark.slow
def test_smoke_samples_score_below_pure_noise_and_improve_with_steps(smoke_run):
    """FID to held-out emoji in the GAN's feature space: well below pure noise's, and falling with more DDIM steps."""
    out, _ = smoke_run
    metrics = json.loads((out / "report.json").read_text())["metrics"]
    assert metrics["fid_floor"] < metrics["fid"]
    by_steps = {r["ddim_steps"]: r["fid"] for r in metrics["tables"]["FID by DDIM steps"]}
    assert set(by_steps) == {5, 10, 25}
    # The feature network is trained in the run, and how far it puts pure noise varies between runs (FID 6.4 to 9.3)
    # while the smoke samples' FID stays near 4.3-5.4: at 10 steps they measured 0.46, 0.53, 0.58, 0.71 and 0.78 of
    # noise's. A denoiser that learned nothing (learning rate 1e-9, same features) measured 6.27, 7.95 and 8.90 at 5,
    # 10 and 25 steps (0.96 of noise at 25), the trained one 7.60, 5.37 and 4.72: more steps help only a model that
    # learned to denoise, and its best FID sits far below noise's.
    assert by_steps[25] < by_steps[5], by_steps
    assert by_steps[25] < 0.85 * metrics["fid_noise"], (by_steps, metrics["fid_noise"])
    assert 0.0 <= metrics["precision"] <= 1.0 and 0.0 <= metrics["recall"] <= 1.0


@pytest.mark.slow
def test_generate_refuses_an_unknown_class_and_draws_a_grid(smoke_run):
    from PIL import Image

    from common.paths import ArtifactPaths
    from projects.diffusion.project import PROJECT

    out, _ = smoke_run
    paths = ArtifactPaths.for_project("diffusion", out)
    with pytest.raises(ConfigError, match="0 to 8"):
        PROJECT.run_command("generate", smoke(), paths, SimpleNamespace(inputs=["4", "0", "12"]))
    PROJECT.run_command("generate", smoke(), paths, SimpleNamespace(inputs=["4", "1", "2"]))
    with Image.open(out / "generated.png") as image:
        assert image.width > 4 * smoke().data.image_size


@pytest.fixture(scope="module")
def smoke_export(smoke_run) -> Path:
    out, _ = smoke_run
    result = run_project("diffusion", "export", "--preset", "smoke", "--output-dir", str(out), timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.mark.slow
def test_denoiser_exports_and_the_sampling_savedmodel_agree_with_keras(smoke_export):
    from projects.diffusion.project import PROJECT

    parity = json.loads((smoke_export / "parity.json").read_text())
    assert parity["ok"] is True, parity
    rows = {r["format"]: r for r in parity["formats"]}
    for name in ("savedmodel", "tflite_float32", "tfjs", "onnx"):
        assert rows[name]["max_abs_diff"] <= PROJECT.float_tolerance and rows[name]["agreement"] > 0.95, name
    size = smoke().data.image_size
    assert parity["signature"]["denoiser"]["inputs"]["noisy"] == f"float32 (None, {size}, {size}, 3)"


@pytest.mark.slow
def test_server_samples_and_refuses_bad_steps_classes_and_guidance(smoke_export):
    import httpx

    from serving.server import ModelServer

    size = smoke().data.image_size
    with (
        ModelServer(smoke_export / "serving", rest_port=0, grpc_port=0, report=lambda line: None) as server,
        httpx.Client(base_url=server.rest_url, timeout=120) as client,
    ):

        def ask(steps=3, label=2, guidance=2.0):
            body = {"inputs": {"seed": [1, 2], "steps": [steps] * 2, "label": [label] * 2, "guidance": [guidance] * 2}}
            return client.post("/v1/models/diffusion:predict", json=body)

        good = ask()
        assert good.status_code == 200, good.text
        assert np.asarray(good.json()["outputs"]).shape == (2, size, size, 3)
        for bad, message in (
            ({"steps": 0}, "[1, 200]"),
            ({"steps": 201}, "[1, 200]"),
            ({"label": 9}, "[0, 8]"),
            ({"guidance": -1.0}, ">= 0"),
        ):
            refused = ask(**bad)
            assert refused.status_code == 400 and message in refused.json()["error"], (bad, refused.text)


@pytest.mark.slow
@needs_chromium
def test_browser_page_runs_ddim_in_tfjs_and_its_denoiser_matches_keras(smoke_export):
    from common.paths import ArtifactPaths
    from common.web_demo import write_samples
    from projects.diffusion.project import PROJECT

    write_samples(PROJECT, smoke(), ArtifactPaths.for_project("diffusion", smoke_export))
    with demo_page("diffusion", smoke_export) as (page, errors):
        samples = page.evaluate("window.demo.samples")
        assert samples["timesteps"] == 200 and len(samples["alphas_cumprod"]) == 200
        assert samples["class_names"][2] == "Animals & Nature"
        assert samples["guided_timesteps"] == [0, 188]  # the smoke preset's guidance interval, 0 to 0.94 of T
        in_browser = np.asarray(page.evaluate("window.demo.predictSamples()")["noise"])
        in_keras = np.asarray(samples["outputs"]["noise"]["data"])
        assert in_browser.shape == in_keras.shape and np.max(np.abs(in_browser - in_keras)) < 1e-3
        steps = [page.evaluate(f"window.demo.timestepAt({i}, 7, 200)") for i in range(8)]
        assert steps == [199, 166, 133, 100, 67, 34, 0, 200]  # the Python loop's timesteps (sampling.timestep_at)
        page.fill("#steps", "3")
        page.dispatch_event("#steps", "input")
        page.click("#sample")
        page.wait_for_function("document.querySelector('#progress').textContent.includes('ms per image')")
        assert page.locator("#clean canvas").count() == 4
        assert not errors, errors


@pytest.mark.slow
def test_gradio_demo_answers_a_seed_with_the_image_generate_draws(smoke_export):
    import keras

    from projects.diffusion.project import PROJECT
    from projects.diffusion.sampling import generate
    from serving.gradio_app import predictor

    predict, source = predictor("diffusion", smoke_export / "serving")
    image = predict(3, 4, 2, 2.0)
    side = smoke().data.image_size
    scale = 256 // side
    assert image.shape == (side * scale, side * scale, 3) and image.dtype == np.uint8 and "version 1" in source
    sampler = PROJECT.sampler(smoke(), keras.models.load_model(smoke_export / "model.keras"))
    expected = generate(sampler, np.array([3], np.int32), np.array([2], np.int32), 4, 0.0, 2.0)[0]
    assert np.max(np.abs(image[::scale, ::scale].astype(int) - expected.astype(int))) <= 1

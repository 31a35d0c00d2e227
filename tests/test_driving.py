"""The self-driving car: simulator, expert, augmentation, and a smoke train -> closed-loop drive -> export run."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from common.config import make_config
from projects.driving.config import CONFIG, PRESETS, DataConfig, ExpertConfig
from projects.driving.episodes import drive
from projects.driving.expert import ExpertDriver
from projects.driving.simulator import BAR_ROWS, Simulator

from .browser import demo_page, needs_chromium
from .conftest import run_project

SMOKE = ("--preset", "smoke")


def smoke():
    """The smoke preset's config."""
    return make_config(CONFIG, PRESETS, "smoke")


@pytest.fixture(scope="module")
def sim() -> Simulator:
    simulator = Simulator(max_steps=250)
    yield simulator
    simulator.close()


def test_expert_drives_a_short_seeded_run_above_the_reward_floor(sim):
    episode = drive(sim, ExpertDriver(ExpertConfig()), seed=7)
    assert len(episode.frames) == 250
    # 250 frames cost 25 points; at least 60 tiles (of ~300) must have been visited, and never off the road.
    assert episode.reward > 150, episode.summary()
    assert episode.off_track_events == 0, episode.summary()
    assert episode.speed.max() > 40  # it really drives, not creeps
    # Its steering is smooth, so a CNN can learn it from one frame: consecutive frames' steering differ by far
    # less than the steering varies (white noise would give 1.0; yaw damping at 0.3 gave 0.76 here).
    steering = episode.expert[:, 0]
    assert np.var(np.diff(steering)) / 2 < 0.2 * np.var(steering), episode.summary()


def test_a_missing_box2d_names_the_install_command(monkeypatch):
    from projects.driving.simulator import SimulatorMissingError

    monkeypatch.setitem(sys.modules, "Box2D", None)  # `import Box2D` now raises ImportError
    with pytest.raises(SimulatorMissingError, match=r"pip install 'gymnasium\[box2d\]"):
        Simulator()


def test_the_simulator_is_deterministic_per_seed(sim):
    actions = np.random.default_rng(0).uniform([-1, 0, 0], [1, 1, 0.2], (40, 3))

    def rollout(seed: int) -> tuple[np.ndarray, list]:
        frame, telemetry = sim.reset(seed)
        frames, telemetries = [frame], [telemetry]
        for action in actions:
            frame, _, _, telemetry = sim.step(action)
            frames.append(frame)
            telemetries.append(telemetry)
        return np.stack(frames), telemetries

    first, again, other = rollout(3), rollout(3), rollout(4)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1]
    assert not np.array_equal(first[0], other[0])
    assert first[0].shape == (41, 96, 96, 3) and first[0].dtype == np.uint8


def _batch(n: int = 64) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
    targets = {"steering": rng.uniform(-1, 1, (n, 1)).astype(np.float32), "throttle": np.zeros((n, 1), np.float32)}
    return frames, targets


def _augment(cfg: DataConfig, frames: np.ndarray, targets: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`augment_pairs(cfg)` on one batch, as numpy: frames, steering (n, 1), throttle (n, 1)."""
    from projects.driving.augmentation import augment_pairs

    out_frames, out_targets = augment_pairs(cfg)(frames, targets)
    return np.asarray(out_frames), np.asarray(out_targets["steering"]), np.asarray(out_targets["throttle"])


def test_the_flip_mirrors_the_road_negates_the_steering_and_keeps_the_telemetry_bar():
    frames, targets = _batch()
    out_frames, steering, throttle = _augment(DataConfig(flip=True, brightness=0.0, shift=0), frames, targets)
    road = slice(0, 96 - BAR_ROWS)
    np.testing.assert_array_equal(out_frames[:, 96 - BAR_ROWS :], frames[:, 96 - BAR_ROWS :])
    flipped = np.array([np.array_equal(out_frames[i, road], frames[i, road, ::-1]) for i in range(len(frames))])
    kept = np.array([np.array_equal(out_frames[i, road], frames[i, road]) for i in range(len(frames))])
    assert np.all(flipped ^ kept) and 10 < flipped.sum() < 54  # each frame one or the other, about half flipped
    np.testing.assert_allclose(steering[flipped], -targets["steering"][flipped])
    np.testing.assert_allclose(steering[kept], targets["steering"][kept])
    np.testing.assert_array_equal(throttle, targets["throttle"])


def test_a_sideways_shift_keeps_the_car_and_corrects_the_steering_by_the_shift():
    from projects.driving.augmentation import CAR_COLUMNS, CAR_ROWS

    frames, targets = _batch()
    targets["steering"][:] = 0.0
    cfg = DataConfig(flip=False, brightness=0.0, shift=4, shift_steering=0.05)
    out_frames, steering, _ = _augment(cfg, frames, targets)
    car = (slice(None), slice(*CAR_ROWS), slice(*CAR_COLUMNS))
    np.testing.assert_array_equal(out_frames[car], frames[car])
    dx = steering[:, 0] / cfg.shift_steering
    np.testing.assert_allclose(dx, np.round(dx), atol=1e-4)  # whole pixels
    assert np.abs(dx).max() <= 4 and len(set(np.round(dx))) > 3
    for i in np.nonzero(np.round(dx) == 2)[0][:3]:  # the road (away from the car and the edges) moved 2 px right
        np.testing.assert_array_equal(out_frames[i, :40, 10:90], frames[i, :40, 8:88])


def test_the_model_sees_only_the_speed_bar_of_the_telemetry():
    from projects.driving.model import SPEED_BAR_COLUMNS, telemetry_mask

    mask = telemetry_mask()[..., 0]
    assert mask[: 96 - BAR_ROWS].all()
    bar = mask[96 - BAR_ROWS :]
    assert bar[:, slice(*SPEED_BAR_COLUMNS)].all() and bar.sum() == BAR_ROWS * np.subtract(*SPEED_BAR_COLUMNS[::-1])


def test_held_out_seeds_must_not_be_training_seeds():
    from projects.driving.data import check_seeds

    cfg = smoke()
    check_seeds(cfg)  # seeds 0-1 held out, 1000-1002 for training and validation
    cfg.evaluate.seed = 1002
    with pytest.raises(ValueError, match=r"evaluation track seeds \[1002\] are also training or validation seeds"):
        check_seeds(cfg)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    """`all --preset smoke`: expert drives, behaviour cloning, one DAgger round, closed-loop evaluation."""
    out = tmp_path_factory.mktemp("driving_smoke") / "driving"
    out.mkdir()
    result = run_project(
        "driving", "all", *SMOKE, "--set", f"data.cache_dir={out / 'episodes'}", "--output-dir", str(out)
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def smoke_export(smoke_run) -> Path:
    """The smoke model exported in every format (the folder of `smoke_run`, with export/, serving/, parity.json)."""
    result = run_project(
        "driving", "export", *SMOKE, "--set", f"data.cache_dir={smoke_run / 'episodes'}", "--output-dir", str(smoke_run)
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return smoke_run


@pytest.mark.slow
def test_smoke_train_and_closed_loop_drive(smoke_run):
    with open(smoke_run / "rounds" / "round0" / "history.csv") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert losses[-1] < losses[0], losses
    train = json.loads((smoke_run / "train.json").read_text())
    assert [r["round"] for r in train["rounds"]] == [0, 1] and "drive_mean_reward" in train["rounds"][1]
    assert len(list((smoke_run / "dagger").glob("round1-*.npz"))) == 1

    metrics = json.loads((smoke_run / "report.json").read_text())["metrics"]
    for driver in ("cnn", "expert", "random"):
        assert f"{driver}_mean_reward" in metrics and f"{driver}_off_track_events" in metrics
    assert metrics["expert_mean_reward"] > metrics["random_mean_reward"] + 50
    # Quality floor: the smoke CNN drives at least half-way from the random driver to the expert (measured here:
    # random 3.5, expert 74.6, CNN 63-85 over training seeds 0-4 and 6-8 on the two short held-out tracks); a CNN
    # that has not learnt to steer stays near random.
    halfway = (metrics["random_mean_reward"] + metrics["expert_mean_reward"]) / 2
    assert metrics["cnn_mean_reward"] > halfway, metrics
    assert set(metrics["tracks"]) == {"0", "1"}
    assert metrics["reward_ratio"] == pytest.approx(metrics["cnn_mean_reward"] / metrics["expert_mean_reward"], 1e-2)
    for plot in ("steering_over_time.png", "driven_paths.png", "dagger_rewards.png"):
        assert (smoke_run / "plots" / plot).stat().st_size > 5_000
    assert (smoke_run / "drive.gif").read_bytes()[:6] == b"GIF89a"

    # A second `train` re-drives nothing: the expert's and DAgger's drives and both rounds come from disk.
    cache = sorted(p.stat().st_mtime_ns for p in (smoke_run / "episodes").glob("*.npz"))
    again = run_project(
        "driving", "train", *SMOKE, "--set", f"data.cache_dir={smoke_run / 'episodes'}", "--output-dir", str(smoke_run)
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Round 0 already trained" in again.stdout and "Round 1 already trained" in again.stdout
    assert sorted(p.stat().st_mtime_ns for p in (smoke_run / "episodes").glob("*.npz")) == cache


@pytest.mark.slow
def test_export_parity_and_names(smoke_export):
    parity = json.loads((smoke_export / "parity.json").read_text())
    assert parity["ok"], parity
    assert parity["signature"] == {
        "inputs": {"frame": "uint8 (None, 96, 96, 3)"},
        "outputs": {"steering": "float32 (None,)", "throttle": "float32 (None, 1)"},
    }
    rows = {row["format"]: row for row in parity["formats"]}
    for name in ("savedmodel", "tflite_float32", "tfjs", "onnx"):
        assert rows[name]["max_abs_diff"] < 1e-4 and rows[name]["agreement"] > 0.95, rows[name]
    assert rows["tflite_int8"]["max_abs_diff"] < 0.3


@pytest.mark.slow
@needs_chromium
def test_browser_replay_steers_like_keras(smoke_export):
    """The page's TF.js model, fed the shipped replay frames, steers as Keras does."""

    from common.paths import ArtifactPaths
    from common.web_demo import write_samples
    from projects.driving.project import PROJECT

    smoke_run = smoke_export
    cfg = smoke()
    cfg.data.cache_dir = str(smoke_run / "episodes")
    write_samples(PROJECT, cfg, ArtifactPaths.for_project("driving", smoke_run))
    with demo_page("driving", smoke_run, viewport={"width": 1100, "height": 800}) as (page, errors):
        outputs = page.evaluate("window.demo.samples.outputs")
        browser_out = page.evaluate("window.demo.predictSamples()")
        assert set(browser_out) == {"steering", "throttle"}  # by name, not position
        for name in ("steering", "throttle"):
            keras_values = np.asarray(outputs[name]["data"])
            assert len(keras_values) == 8
            assert np.max(np.abs(np.asarray(browser_out[name]) - keras_values)) < 1e-4

        replay = page.evaluate("window.demo.samples.replay")
        steering = page.evaluate("window.demo.predictReplay()")  # frames decoded from the PNG sprite
        assert len(steering) == replay["frames"] == 12
        assert np.max(np.abs(np.asarray(steering) - np.asarray(replay["keras_steering"]))) < 1e-4
        assert "mean |CNN - expert|" in page.inner_text("#error")
        screenshot = smoke_run / "driving-demo.png"
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 10_000
        assert not errors, errors


@pytest.mark.slow
def test_gradio_steers_an_uploaded_frame(smoke_export, tmp_path):
    """The Gradio predict function over the exported SavedModel: a PNG frame in, the steering as text out."""
    from PIL import Image

    from projects.driving.episodes import Episode
    from serving.gradio_app import predictor

    frame = Episode.load(next((smoke_export / "episodes").glob("expert-seed0-*.npz"))).frames[60]
    Image.fromarray(frame).resize((192, 192)).save(tmp_path / "frame.png")  # resized back to 96x96
    predict, source = predictor("driving", smoke_export / "serving")
    answer = predict(str(tmp_path / "frame.png"))
    assert source.startswith("Model: driving version 1")
    assert answer.startswith("steering ") and "throttle " in answer


@pytest.mark.slow
def test_tune_searches_behaviour_cloning_on_the_expert_drives(smoke_run, tmp_path):
    cache = ("--set", f"data.cache_dir={smoke_run / 'episodes'}")  # the smoke run's drives: nothing is driven again
    result = run_project("driving", "tune", *SMOKE, *cache, "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "tuning" / "results.json").read_text())
    assert results["objective"] == {"name": "val_loss", "direction": "min"} and results["algorithm"] == "grid"
    scores = [trial["score"] for trial in results["trials"]]
    assert len(scores) == 2 and all(np.isfinite(scores)) and min(scores) > 0, results["trials"]
    best = json.loads((tmp_path / "tuning" / "best.json").read_text())
    assert set(best) <= {"model.filters", "model.dense", "model.dropout", "train.learning_rate", "train.batch_size"}
    assert best and (tmp_path / "tuning" / "results.md").stat().st_size > 200


@pytest.mark.slow
def test_optimize_prunes_and_quantizes_pilotnet_through_the_keras2_bridge(smoke_export, tmp_path):
    """`optimize` copies PilotNet (its TelemetryMask included) to Keras 2, prunes it and trains it
    quantization-aware (ELU layers through the bridge's own quantize config), and scores every TF Lite model by
    its steering error on the held-out drive."""
    shutil.copy(smoke_export / "model.keras", tmp_path / "model.keras")
    cache = ("--set", f"data.cache_dir={smoke_export / 'episodes'}")
    result = run_project("driving", "optimize", *SMOKE, *cache, "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "optimize" / "optimize.json").read_text())
    assert summary["metric"] == "steering_mae" and summary["metric_is_share"] is False
    models = summary["models"]
    assert list(models) == ["baseline_float32", "ptq_int8", "pruned_float32", "pruned_int8", "qat_int8"]
    base = models["baseline_float32"]
    # The float32 baseline scores what export's parity check measured of Keras on the same frames (there rounded to
    # 0.01): the right output, against the right targets.
    parity = json.loads((smoke_export / "parity.json").read_text())
    keras_mae = next(row["metric"] for row in parity["formats"] if row["format"] == "keras")
    assert base["metric"] == pytest.approx(keras_mae, abs=0.006), (base["metric"], keras_mae)
    for name in ("ptq_int8", "pruned_float32", "pruned_int8", "qat_int8"):
        assert models[name]["metric"] < base["metric"] + 0.1, (name, models[name]["metric"], base["metric"])
    for name in ("ptq_int8", "pruned_int8", "qat_int8"):
        assert models[name]["size_bytes"] < 0.4 * base["size_bytes"], name
    assert models["pruned_float32"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert models["pruned_float32"]["gzip_bytes"] < 0.75 * base["gzip_bytes"]
    table = (tmp_path / "optimize" / "optimize.md").read_text()
    assert "| model | steering_mae | change | size |" in table and "| quantization-aware, int8 | " in table

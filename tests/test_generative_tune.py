"""`tune` for the projects trained in a loop of their own (the GAN, the diffusion model): each trial trains in that
loop in its own folder under tuning/ and is scored by FID against the validation split's real emoji; a killed search
resumes without training its finished trials again; what cannot work is refused with the fix."""

from __future__ import annotations

import csv
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common import registry
from common.config import ConfigError, make_config
from common.tuning import search_space

from .conftest import REPO, project_env, run_project

# The smoke preset (2 trials of 1 epoch) with the fewest steps that still train: each trial a few dozen seconds.
TINY = {
    "gan": ["--set", "train.steps_per_epoch=20"],
    "diffusion": [
        "--set",
        "train.steps_per_epoch=10",
        "--set",
        "model.multipliers=1",  # one level, no attention: the step traces in half the time
        "--set",
        "model.attention=false",
        "--set",
        "sampling.grid_steps=1",
        "--set",
        "sampling.tune_steps=2",
    ],
}


def _smoke(name: str):
    config = registry.config_module(name)
    return make_config(config.CONFIG, config.PRESETS, "smoke")


@pytest.mark.parametrize("name", ["gan", "diffusion"])
def test_spaces_are_lists_for_grid_and_hyperband_is_refused_with_the_fix(name):
    project, cfg = registry.load(name), _smoke(name)
    space = search_space(project, cfg)  # random: the config's default algorithm
    assert space and all(isinstance(values, list) and len(values) > 1 for values in space.values()), space
    cfg.tune.algorithm = "grid"
    assert search_space(project, cfg) == space
    cfg.tune.algorithm = "hyperband"
    with pytest.raises(ConfigError, match=rf"hyperband .* {name} trains its trials in a loop of its own: use --set "):
        search_space(project, cfg)


def test_a_trial_whose_config_cannot_work_stops_the_search_with_exit_2(tmp_path):
    """keras-tuner records a failing trial and goes on; a bad config would fail every trial alike, so it stops."""
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"train.diff_augment": ["color,zoom"]}))
    result = run_project(
        "gan", "tune", "--preset", "smoke", "--set", f"tune.space={space}", "--output-dir", str(tmp_path), timeout=300
    )
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert "train.diff_augment: unknown zoom; use a comma list of" in result.stderr
    assert "Trial 1 Complete" not in result.stdout and not (tmp_path / "tuning" / "results.json").exists()


def _trials(search: Path) -> dict[str, str]:
    """{trial id: status} of the trials keras-tuner has begun."""
    trials = {}
    for path in search.glob("trial_*/trial.json"):
        try:
            trial = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        trials[trial["trial_id"]] = trial["status"]
    return trials


def _completed(search: Path) -> list[str]:
    return [trial for trial, status in _trials(search).items() if status == "COMPLETED"]


def _metric(search: Path, trial: str, name: str) -> float:
    metrics = json.loads((search / f"trial_{trial}" / "trial.json").read_text())["metrics"]["metrics"]
    return metrics[name]["observations"][0]["value"][0]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gan", "diffusion"])
def test_killed_search_resumes_and_ranks_trials_trained_in_their_own_loop_by_fid(name, tmp_path):
    args = ["tune", "--preset", "smoke", *TINY[name], "--output-dir", str(tmp_path)]
    search = tmp_path / "tuning" / "search"
    proc = subprocess.Popen(
        [sys.executable, "-m", f"projects.{name}", *args],
        cwd=REPO,
        env=project_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        # Killed once the second trial has begun: the first is then recorded as done in the tuner's state too.
        while not (_completed(search) and len(_trials(search)) == 2) and proc.poll() is None:
            assert time.monotonic() < deadline, "the second trial did not begin in 600 s"
            time.sleep(0.2)
        assert proc.poll() is None, "the search ended before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (first,) = _completed(search)
    first_run = search / f"trial_{first}" / "execution0"
    trained_at = (first_run / "model.keras").stat().st_mtime_ns

    resumed = run_project(name, *args, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Reloading Tuner from" in resumed.stdout
    assert resumed.stdout.count("Search: Running Trial #") == 1, "only the unfinished trial runs again"
    assert (first_run / "model.keras").stat().st_mtime_ns == trained_at, "the finished trial was trained again"

    out = tmp_path / "tuning"
    results = json.loads((out / "results.json").read_text())
    assert results["objective"] == {"name": "fid", "direction": "min"} and results["algorithm"] == "random"
    scores = [row["score"] for row in results["trials"]]
    assert len(scores) == 2 and all(math.isfinite(s) and s > 0 for s in scores), scores
    assert results["best"]["score"] == min(scores) == scores[0]
    best = json.loads((out / "best.json").read_text())
    assert best == results["best"]["values"] and set(best) == set(search_space(registry.load(name), _smoke(name)))
    assert "| rank | trial | fid | epochs |" in (out / "results.md").read_text()
    assert (out / "trials.png").stat().st_size > 5_000
    for row in results["trials"]:
        run = search / f"trial_{row['trial']}" / "execution0"  # each trial trained in its own folder
        assert (run / "model.keras").exists() and (run / "plots" / "samples" / "epoch_001.png").exists()
        with open(run / "history.csv") as f:
            history = list(csv.DictReader(f))
        assert len(history) == 1, "one epoch per trial (tune.max_epochs=1)"
        if name == "gan":  # the loop's own validation FID after its one (so best) epoch: same generator, same noise
            assert row["score"] == pytest.approx(float(history[-1]["val_fid"]), rel=1e-6)
        assert _metric(search, row["trial"], "fid_floor") < row["score"], "real emoji score below generated ones"
    assert not (tmp_path / "model.keras").exists() and not (tmp_path / "history.csv").exists()

"""keras-tuner over mnist's search space: bad spaces rejected up front, resume after a kill, best.json reused,
and a distributed search with a chief and two workers on 127.0.0.1."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from common import registry
from common.config import ConfigError, make_config
from common.tuning import validate_space

from .conftest import REPO, project_env, run_project
from .local_cluster import free_port, run_together

MNIST = registry.config_module("mnist")
PROJECT = registry.load("mnist")

TINY = ["--preset", "smoke", "--set", "tune.algorithm=random", "--set", "tune.max_epochs=1", "--set", "data.limit=256"]


def test_mnist_space_is_valid_and_maps_to_config_keys():
    cfg = make_config(MNIST.CONFIG, MNIST.PRESETS, "default")
    space = validate_space(cfg, PROJECT.search_space(cfg))
    assert {"model.kind", "model.hidden", "model.dropout", "train.learning_rate", "train.optimizer"} <= set(space)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"model.widht": [64, 128]}, "search space: unknown config key 'model.widht'; valid keys: data.online"),
        ({"model.kind": ["cnn", "rnn"]}, "search space: bad value for model.kind: 'rnn'; choose one of cnn, mlp"),
        ({"train.epochs": ["many"]}, "search space: bad value for train.epochs"),
        ({"model.dropout": {"min": 0.5, "max": 0.1}}, "needs min < max"),
        ({"train.learning_rate": {"min": 0.0, "max": 0.1, "log": True}}, "min > 0 with log"),
        ({"model.dropout": {"low": 0.0}}, "give a list of values or a range"),
        ({"model.kind": []}, "empty list of values"),
        ({"train.optimizer": {"min": "adam", "max": "sgd"}}, "is not a number"),
        ({}, "the search space is empty"),
    ],
)
def test_bad_search_spaces_name_the_problem(space, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate_space(make_config(MNIST.CONFIG, MNIST.PRESETS, "default"), space)


def test_cli_rejects_an_unknown_hyperparameter_before_any_work(tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"model.dropout": [0.0, 0.25], "model.widht": [64, 128]}))
    result = run_project("mnist", "tune", "--set", f"tune.space={space}", "--output-dir", str(tmp_path), timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "search space: unknown config key 'model.widht'; valid keys:" in result.stderr
    assert "Data:" not in result.stdout and not (tmp_path / "tuning").exists()


def _finished_trials(search_dir) -> int:
    done = 0
    for trial in search_dir.glob("trial_*/trial.json"):
        try:
            done += json.loads(trial.read_text())["status"] == "COMPLETED"
        except (OSError, ValueError, KeyError):
            continue
    return done


@pytest.mark.slow
def test_killed_search_resumes_and_writes_the_best_config_for_train(tmp_path):
    args = ["tune", *TINY, "--set", "tune.max_trials=2", "--output-dir", str(tmp_path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "projects.mnist", *args],
        cwd=REPO,
        env=project_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while _finished_trials(tmp_path / "tuning" / "search") < 1 and proc.poll() is None:
            assert time.monotonic() < deadline, "the first trial did not finish in 300 s"
            time.sleep(0.2)
        assert proc.poll() is None, "the search ended before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (tmp_path / "tuning" / "results.json").exists()

    resumed = run_project("mnist", *args, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Reloading Tuner from" in resumed.stdout
    assert resumed.stdout.count("Search: Running Trial #") == 1, "only the unfinished trial runs again"

    results = json.loads((tmp_path / "tuning" / "results.json").read_text())
    assert len(results["trials"]) == 2 and results["algorithm"] == "random"
    assert results["trials"][0]["score"] >= results["trials"][1]["score"]
    best = json.loads((tmp_path / "tuning" / "best.json").read_text())
    assert set(best) == set(PROJECT.search_space(make_config(MNIST.CONFIG, MNIST.PRESETS, "smoke")))
    assert best == results["best"]["values"]
    assert (tmp_path / "tuning" / "trials.png").stat().st_size > 5_000
    assert "| rank | trial | val_accuracy | epochs | model.kind |" in (tmp_path / "tuning" / "results.md").read_text()

    # `train --config best.json` reads it as `config` does: the preset with the best trial's keys set.
    shown = run_project("mnist", "config", "--preset", "smoke", "--config", str(tmp_path / "tuning" / "best.json"))
    assert shown.returncode == 0, shown.stderr
    assert f"model.kind = {best['model.kind']!r}" in shown.stdout
    assert f"train.optimizer = {best['train.optimizer']!r}" in shown.stdout
    assert f"train.learning_rate = {best['train.learning_rate']!r}" in shown.stdout


@pytest.mark.slow
def test_distributed_search_with_a_chief_and_two_workers(tmp_path):
    port = str(free_port())
    envs = [
        {"KERASTUNER_TUNER_ID": tuner, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port}
        for tuner in ("chief", "tuner0", "tuner1")
    ]
    args = ["tune", *TINY, "--set", "tune.max_trials=2", "--output-dir", str(tmp_path)]

    chief, *workers = run_together("mnist", args, envs, timeout=400)

    for result in (chief, *workers):
        assert result.returncode == 0, result.output[-3000:]
    for tuner, worker in zip(("tuner0", "tuner1"), workers, strict=True):
        assert f"Tuner {tuner} finished its trials; the chief writes the results." in worker.output
    epoch_line = re.compile(r"^\d+/\d+ - .* val_accuracy: ", re.MULTILINE)
    assert not epoch_line.search(chief.output), "the chief hands out trials, the workers train"
    assert sum(len(epoch_line.findall(worker.output)) for worker in workers) == 2  # 2 trials of 1 epoch
    results = json.loads((tmp_path / "tuning" / "results.json").read_text())
    assert len(results["trials"]) == 2
    assert json.loads((tmp_path / "tuning" / "best.json").read_text()) == results["best"]["values"]


def test_grid_search_needs_a_step_for_every_range():
    from common.tuning import search_space
    from projects.mnist.config import CONFIG, PRESETS
    from projects.mnist.project import PROJECT

    cfg = make_config(CONFIG, PRESETS, "smoke")
    cfg.tune.algorithm = "grid"
    with pytest.raises(ConfigError, match=r"grid needs a step for every range.*train.learning_rate"):
        search_space(PROJECT, cfg)

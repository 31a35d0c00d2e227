"""Config presets and --set overrides: typed, validated, and rejected before any work."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from common import registry
from common.config import ConfigError, Expected, Preset, apply_json, apply_overrides, iter_keys, make_config

from .conftest import REPO, project_env, run_project

MNIST = registry.config_module("mnist")
PROJECTS = registry.names()


def mnist(preset: str = "default"):
    return make_config(MNIST.CONFIG, MNIST.PRESETS, preset)


def test_overrides_are_typed():
    cfg = apply_overrides(
        mnist(),
        ["train.epochs=3", "train.learning_rate=0.01", "data.augment=false", "model.filters=8,16,32"],
    )
    assert cfg.train.epochs == 3
    assert cfg.train.learning_rate == 0.01
    assert cfg.data.augment is False
    assert cfg.model.filters == (8, 16, 32)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epoch=3", "unknown config key 'train.epoch'; valid keys: data.online"),
        ("train.epochs=three", "bad value for train.epochs"),
        ("data.augment=maybe", "is not a boolean"),
        ("model.kind=rnn", "choose one of cnn, mlp"),
        ("train", "--set expects key=value"),
    ],
)
def test_bad_overrides_name_the_problem(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        apply_overrides(mnist(), [override])


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="choose one of smoke, default, full"):
        mnist("huge")


def test_all_seven_projects_are_found():
    assert PROJECTS == ["chatbot", "classifier", "detector", "diffusion", "driving", "gan", "mnist"]


@pytest.mark.parametrize("project", PROJECTS)
def test_every_preset_builds_validates_and_states_its_expected_result(project):
    config = registry.config_module(project)
    assert set(config.PRESETS) >= {"smoke", "default"} and config.DEFAULT_PRESET == "default"
    # The dataclass defaults are the default preset: it changes nothing.
    assert config.PRESETS["default"].changes == {}
    defaults = config.CONFIG()
    for name, preset in config.PRESETS.items():
        assert isinstance(preset, Preset) and preset.summary, (project, name)
        expected = preset.expected
        assert isinstance(expected, Expected) and expected.metric and expected.minutes > 0, (project, name)
        cfg = make_config(config.CONFIG, config.PRESETS, name)  # every change is a valid, typed key
        changed = {k for (k, v, _), (_, d, _) in zip(iter_keys(cfg), iter_keys(defaults), strict=True) if v != d}
        assert changed == set(preset.changes), (project, name)  # a preset differs only where it says so
    assert config.PRESETS["smoke"].expected.minutes < config.PRESETS["default"].expected.minutes


def test_a_preset_with_a_bad_key_is_refused():
    bad = {"broken": Preset("typo", Expected("accuracy", 0.5, 1), changes={"train.epoch": 3})}
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.epoch'"):
        make_config(MNIST.CONFIG, bad, "broken")


def test_json_config_file(tmp_path):
    path = tmp_path / "best.json"
    path.write_text(json.dumps({"model": {"kind": "mlp", "hidden": [64, 32]}, "train.learning_rate": 0.005}))
    cfg = apply_json(mnist(), path)
    assert cfg.model.kind == "mlp" and cfg.model.hidden == (64, 32) and cfg.train.learning_rate == 0.005


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--set", "train.epoch=3"], "valid keys:"),
        (["train", "--set", "train.epochs=x"], "bad value for train.epochs"),
        (["train", "--preset", "huge"], "unknown preset 'huge'; choose one of smoke, default, full"),
        (["predict"], "predict needs at least one input file"),
    ],
)
def test_cli_rejects_bad_config_before_any_work(args, message):
    result = run_project("mnist", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Epoch" not in result.stdout


def test_cli_rejects_before_importing_tensorflow():
    code = (
        "import sys\n"
        "from common.cli import main\n"
        "try:\n    main('mnist', ['train', '--set', 'nope=1'])\n"
        "except SystemExit as e:\n    print('exit', e.code, 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=project_env(), capture_output=True, text=True)
    assert result.stdout.strip() == "exit 2 False", result.stdout + result.stderr


def test_cli_config_command_prints_every_key():
    result = run_project("mnist", "config", "--preset", "smoke", "--set", "train.epochs=7")
    assert result.returncode == 0, result.stderr
    assert "train.epochs = 7" in result.stdout
    assert "model.kind = 'cnn' (cnn|mlp|autoencoder)" in result.stdout


def test_op_threads_are_set_before_the_first_op_and_kept_after_it():
    code = (
        "from common.runtime import quiet_tensorflow, set_op_threads\n"
        "quiet_tensorflow()\n"
        "import tensorflow as tf\n"
        "print(set_op_threads(1), tf.config.threading.get_intra_op_parallelism_threads())\n"
        "tf.constant(1.0) + 1.0\n"
        "print(set_op_threads(2), tf.config.threading.get_intra_op_parallelism_threads())\n"
        "print(set_op_threads(1))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=project_env(), capture_output=True, text=True)
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "True 1", result.stdout + result.stderr
    assert lines[1].startswith("note: intra_op_threads=2 not applied: TensorFlow already ran"), lines
    assert lines[2:] == ["False 1", "True"], lines

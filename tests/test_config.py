"""Config presets and --set overrides: typed, validated, and rejected before any work."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from common.config import ConfigError, apply_json, apply_overrides, iter_keys, make_config
from projects.mnist.config import PRESETS

from .conftest import REPO, project_env, run_project


def test_overrides_are_typed():
    cfg = apply_overrides(
        make_config(PRESETS, "default"),
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
        apply_overrides(make_config(PRESETS, "default"), [override])


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="choose one of smoke, default, full"):
        make_config(PRESETS, "huge")


def test_presets_document_expected_result_and_time():
    for name, preset in PRESETS.items():
        doc = preset.__doc__ or ""
        assert "accuracy" in doc and ("s" in doc or "minutes" in doc), name
        keys = [k for k, _, _ in iter_keys(preset())]
        assert "train.epochs" in keys and "model.kind" in keys


def test_json_config_file(tmp_path):
    path = tmp_path / "best.json"
    path.write_text(json.dumps({"model": {"kind": "mlp", "hidden": [64, 32]}, "train.learning_rate": 0.005}))
    cfg = apply_json(make_config(PRESETS, "default"), path)
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
    assert "model.kind = 'cnn' (cnn|mlp)" in result.stdout

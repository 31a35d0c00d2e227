"""Classification metrics against hand-checked values, the report schema and its plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.evaluation import classification_metrics, classification_plots, write_report
from common.paths import ArtifactPaths


def test_metrics_on_a_hand_checked_example():
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array(
        [[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.5, 0.2, 0.3]]
    )
    m = classification_metrics(y, probs, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    # predictions: 0 1 1 1 2 0 -> class a: P 1/2 R 1/2, b: P 2/3 R 1, c: P 1 R 1/2
    assert m["per_class"]["a"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["b"]["recall"] == pytest.approx(1.0)
    assert m["per_class"]["c"]["recall"] == pytest.approx(0.5)
    assert m["macro_precision"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert 0.5 < m["roc_auc"] <= 1.0


def test_perfect_and_absent_classes():
    y = np.array([0, 1, 0, 1])
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.7, 0.2, 0.1], [0.2, 0.7, 0.1]])
    m = classification_metrics(y, probs, ["x", "y", "z"])  # class z never occurs
    assert m["accuracy"] == 1.0 and m["roc_auc"] == 1.0
    assert m["per_class"]["z"]["support"] == 0


def test_report_files_follow_the_schema(tmp_path):
    paths = ArtifactPaths.for_project("unit", tmp_path)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    probs = rng.dirichlet(np.ones(3), 60)
    plots = classification_plots(y, probs, ["a", "b", "c"], paths)
    report = {
        "project": "unit",
        "preset": "smoke",
        "data": {"source": "generated", "splits": {"train": 1, "val": 1, "test": 60}},
        "metrics": classification_metrics(y, probs, ["a", "b", "c"]),
        "train_seconds": 1.5,
        "plots": plots,
    }
    write_report(paths, report)
    saved = json.loads(paths.report_json.read_text())
    assert saved["plots"] == ["plots/confusion_matrix.png", "plots/roc_curves.png"]
    md = paths.report_md.read_text()
    assert "| accuracy |" in md and "![confusion matrix](plots/confusion_matrix.png)" in md
    assert all((tmp_path / p).stat().st_size > 5_000 for p in saved["plots"])

"""tf.distribute: the mnist smoke preset trained by two local workers with MultiWorkerMirroredStrategy."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from .local_cluster import free_port, run_together

pytestmark = pytest.mark.slow


def test_two_workers_train_one_model_written_by_the_chief(tmp_path):
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    envs = [{"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})} for i in range(2)]
    args = ["train", "--preset", "smoke", "--set", "train.strategy=multiworker", "--set", "train.epochs=1"]
    args += ["--set", "data.limit=512", "--output-dir", str(tmp_path)]

    chief, worker = run_together("mnist", args, envs, timeout=400)

    assert chief.returncode == 0, chief.output[-3000:]
    assert worker.returncode == 0, worker.output[-3000:]
    assert f"Model written to {tmp_path / 'model.keras'}" in chief.output
    assert "Model written" not in worker.output
    moved = re.search(
        r"worker 1 finished; the chief writes the model \(this worker's files in (\S+) are", worker.output
    )
    assert moved, worker.output[-2000:]
    assert not Path(moved.group(1)).exists(), "the worker's temporary folder is removed"
    # Both trained the same global batches: 512 digits / 64 per step, each worker computing half of each.
    for result in (chief, worker):
        assert re.search(r"^8/8 .* val_accuracy: ", result.output, re.MULTILINE), result.output[-2000:]

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoints",
        "history.csv",
        "logs",
        "model.keras",
        "train.json",
    ]
    with open(tmp_path / "history.csv", newline="") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0"], "one epoch, logged by the chief alone"
    summary = json.loads((tmp_path / "train.json").read_text())
    assert summary["config"]["train"]["strategy"] == "multiworker"

"""`bench-edge`: each int8 and float16 TF Lite model measured alone, on one thread, into a results file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO, project_env


def bench_edge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.edge", *args],
        cwd=REPO,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_edge_benchmark_measures_each_small_model_alone(mnist_export, tmp_path):
    results = tmp_path / "edge.json"
    run = bench_edge("--project", "mnist", "--output-dir", str(mnist_export), "--runs", "30", "--results", str(results))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    entry = json.loads(results.read_text())["projects"]["mnist"]
    models = entry["models"]
    assert set(models) == {"tflite/int8.tflite", "tflite/float16.tflite"}
    for name, row in models.items():
        assert row["size_bytes"] == (mnist_export / "export" / name).stat().st_size
        assert 0 < row["batch1_ms_median"] <= row["batch1_ms_p99"] and row["threads"] == 1
        assert row["peak_memory_mib"] > 0.05, row  # the weights (0.1 to 0.3 MB here) and the tensors, at least
    # int8 weights are a quarter of float32's, float16's a half.
    assert models["tflite/int8.tflite"]["size_bytes"] < 0.7 * models["tflite/float16.tflite"]["size_bytes"]
    machine = entry["machine"]
    assert machine["commit"] and machine["command"].startswith("python -m benchmarks.edge")
    assert len(machine["load_average"]["start"]) == 3


def test_edge_benchmark_names_what_is_missing(tmp_path):
    run = bench_edge("--project", "mnist", "--output-dir", str(tmp_path), "--results", str(tmp_path / "edge.json"))
    assert run.returncode == 1 and "make project=mnist export" in run.stdout + run.stderr
    assert not (tmp_path / "edge.json").exists()
    unknown = bench_edge("--project", "nope")
    assert unknown.returncode == 2 and "known: " in unknown.stderr and "mnist" in unknown.stderr

"""Measure the mnist default preset end to end: test accuracy and training time.

Run: `make project=mnist bench` (or `python -m benchmarks.mnist [--preset default] [--runs 1]`).
Writes benchmarks/results/mnist.json; the README's figures are quoted from it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from common.runtime import quiet_tensorflow

from .runs import run_preset, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--runs", type=int, default=1, help="repeat with the same config to see the spread")
    args = parser.parse_args()
    quiet_tensorflow()

    runs = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            report = run_preset("mnist", args.preset, Path(tmp))
        m = report["metrics"]
        runs.append(
            {
                "accuracy": round(m["accuracy"], 4),
                "macro_f1": round(m["macro_f1"], 4),
                "roc_auc": round(m["roc_auc"], 5),
                "train_seconds": report["train_seconds"],
                "wall_seconds": report["wall_seconds"],
            }
        )
        print(f"run {i + 1}/{args.runs}: {runs[-1]}")
    result = {
        "benchmark": "mnist end to end (train + evaluate)",
        "preset": args.preset,
        "data": report["data"],
        "runs": runs,
        "accuracy_mean": round(statistics.mean(r["accuracy"] for r in runs), 4),
        "accuracy_min": min(r["accuracy"] for r in runs),
        "train_seconds_mean": round(statistics.mean(r["train_seconds"] for r in runs), 1),
    }
    write_results("mnist", result, keep_other_keys=True)  # e.g. benchmarks/mnist_optimize.py's keys


if __name__ == "__main__":
    main()

"""Measure the mnist default preset end to end: test accuracy and training time.

Run: `make project=mnist bench` (or `python -m benchmarks.mnist [--preset default] [--runs 1]`).
Writes benchmarks/results/mnist.json; the README's figures are quoted from it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common.runtime import quiet_tensorflow

from .machine import describe_machine

RESULTS = Path(__file__).parent / "results" / "mnist.json"
REPO = Path(__file__).resolve().parent.parent


def run_once(preset: str, out: Path) -> dict:
    """One `python -m projects.mnist all` run; returns its report plus wall-clock seconds."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "projects.mnist", "all", "--preset", preset, "--output-dir", str(out)],
        cwd=REPO,
        check=True,
    )
    report = json.loads((out / "report.json").read_text())
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--runs", type=int, default=1, help="repeat with the same config to see the spread")
    args = parser.parse_args()
    quiet_tensorflow()

    runs = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            report = run_once(args.preset, Path(tmp))
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
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": describe_machine(),
        "runs": runs,
        "accuracy_mean": round(statistics.mean(r["accuracy"] for r in runs), 4),
        "accuracy_min": min(r["accuracy"] for r in runs),
        "train_seconds_mean": round(statistics.mean(r["train_seconds"] for r in runs), 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    kept = {k: v for k, v in previous.items() if k not in result}  # e.g. benchmarks/mnist_optimize.py's keys
    RESULTS.write_text(json.dumps({**result, **kept}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

"""Measure mnist's pruning and quantization-aware training against their goals; merge into mnist.json.

Goals (measured here, never asserted in tests), against the float32 baseline as TF Lite:
- pruned to 50% sparsity: accuracy drop <= 0.5 points and gzip size <= 0.6x;
- quantization-aware int8: accuracy drop <= 0.3 points.

Run on a quiet machine: `make project=mnist bench-optimize` (or `python -m benchmarks.mnist_optimize
[--preset default] [--model artifacts/mnist/model.keras]`). It trains the preset (unless given a model),
runs `optimize`, and adds `pruned_accuracy_drop_points`, `pruned_gzip_size_ratio`,
`qat_accuracy_drop_points` and the details under `optimize` to benchmarks/results/mnist.json,
keeping every other key. A quick check of the benchmark itself, written elsewhere:
`python -m benchmarks.mnist_optimize --preset smoke --set data.limit=512 --results /tmp/mnist.json`.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from common.runtime import quiet_tensorflow

from .machine import describe_machine
from .runs import optimized

RESULTS = Path(__file__).parent / "results" / "mnist.json"
GOALS = {"pruned_accuracy_drop_points": 0.5, "pruned_gzip_size_ratio": 0.6, "qat_accuracy_drop_points": 0.3}


def figures(summary: dict) -> dict[str, float]:
    """The three goal figures from optimize.json: drops in accuracy points and the gzip size ratio."""
    models = summary["models"]
    base, pruned, qat = models["baseline_float32"], models["pruned_float32"], models["qat_int8"]
    return {
        "pruned_accuracy_drop_points": round(100 * (base["metric"] - pruned["metric"]), 2),
        "pruned_gzip_size_ratio": round(pruned["gzip_bytes"] / base["gzip_bytes"], 3),
        "qat_accuracy_drop_points": round(100 * (base["metric"] - qat["metric"]), 2),
    }


def merge(path: Path, keys: dict) -> None:
    """Add `keys` to the JSON object at `path` (created if missing), keeping its other keys; atomic."""
    current = json.loads(path.read_text()) if path.exists() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({**current, **keys}, indent=2) + "\n")
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--model", type=Path, help="a trained model.keras of this preset (skips training)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"JSON file to merge into (default {RESULTS})")
    args = parser.parse_args()
    quiet_tensorflow()

    summary = optimized("mnist", args.preset, args.model, "all", args.overrides)["summary"]
    measured = figures(summary)
    goals = {key: {"goal": f"<= {limit}", "met": measured[key] <= limit} for key, limit in GOALS.items()}
    details = {
        "preset": args.preset,
        "overrides": args.overrides,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": describe_machine(),
        "data": summary["data"],
        "settings": summary["optimize"],
        "goals": goals,
        "models": summary["models"],
    }
    merge(args.results, {**measured, "optimize": details})
    for key, value in measured.items():
        print(f"{key}: {value} (goal {goals[key]['goal']}: {'met' if goals[key]['met'] else 'NOT met'})")
    print(f"merged into {args.results}")


if __name__ == "__main__":
    main()

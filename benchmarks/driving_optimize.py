"""Measure PilotNet's pruning and quantization-aware training against their goals: driving_optimize.json.

Goals (measured here, never asserted in tests), against the float32 baseline as TF Lite, on the held-out
drive's frames (steering MAE: mean |steering - the expert's|, lower is better):
- pruned to 50% sparsity: steering MAE up by at most 0.01 and gzip size <= 0.6x;
- post-training and quantization-aware int8: steering MAE up by at most 0.01.

Run on a quiet machine: `make project=driving bench-optimize` (or `python -m benchmarks.driving_optimize
[--preset default] [--model model.keras]`). It trains the preset (`train`: behaviour cloning and DAgger, no
closed-loop evaluation) unless given a model of that preset, runs `optimize`, and writes
benchmarks/results/driving_optimize.json.
"""

from __future__ import annotations

from .runs import optimize_benchmark

GOALS = {
    "pruned_steering_mae_increase": 0.01,
    "pruned_gzip_size_ratio": 0.6,
    "ptq_steering_mae_increase": 0.01,
    "qat_steering_mae_increase": 0.01,
}


def figures(models: dict[str, dict]) -> dict[str, float]:
    """The goal figures from optimize.json's models: steering MAE increases and the pruned gzip size ratio."""
    base = models["baseline_float32"]

    def increase(name: str) -> float:
        return round(models[name]["metric"] - base["metric"], 4)

    return {
        "pruned_steering_mae_increase": increase("pruned_float32"),
        "pruned_gzip_size_ratio": round(models["pruned_float32"]["gzip_bytes"] / base["gzip_bytes"], 3),
        "ptq_steering_mae_increase": increase("ptq_int8"),
        "qat_steering_mae_increase": increase("qat_int8"),
    }


def main() -> None:
    optimize_benchmark(
        "driving",
        "PilotNet pruned and quantization-aware trained against its float32 TF Lite baseline",
        GOALS,
        figures,
        __doc__.splitlines()[0],
    )


if __name__ == "__main__":
    main()

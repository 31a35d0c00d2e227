"""Measure the image classifier's pruning and quantization-aware training against their goals: classifier_optimize.json.

Goals (measured here, never asserted in tests), against the float32 baseline as TF Lite, on the test split
(accuracy, in points):
- pruned to 50% sparsity: accuracy drop <= 1 point and gzip size <= 0.6x;
- post-training and quantization-aware int8: accuracy drop <= 1 point.

Run on a quiet machine: `make project=classifier bench-optimize` (or `python -m benchmarks.classifier_optimize
[--preset scratch] [--model model.keras]`). It trains the preset (`train`; `scratch`, MobileNetV3Small from scratch,
unless told) unless given a model of that preset, runs `optimize`, and writes
benchmarks/results/classifier_optimize.json (another preset: classifier_optimize_<preset>.json).
"""

from __future__ import annotations

from .runs import optimize_benchmark

GOALS = {
    "pruned_accuracy_drop_points": 1.0,
    "pruned_gzip_size_ratio": 0.6,
    "ptq_accuracy_drop_points": 1.0,
    "qat_accuracy_drop_points": 1.0,
}


def figures(models: dict[str, dict]) -> dict[str, float]:
    """The goal figures from optimize.json's models: accuracy drops in points and the pruned gzip size ratio."""
    base = models["baseline_float32"]

    def drop(name: str) -> float:
        return round(100 * (base["metric"] - models[name]["metric"]), 2)

    return {
        "pruned_accuracy_drop_points": drop("pruned_float32"),
        "pruned_gzip_size_ratio": round(models["pruned_float32"]["gzip_bytes"] / base["gzip_bytes"], 3),
        "ptq_accuracy_drop_points": drop("ptq_int8"),
        "qat_accuracy_drop_points": drop("qat_int8"),
    }


def main() -> None:
    optimize_benchmark(
        "classifier",
        "the image classifier pruned and quantization-aware trained against its float32 TF Lite baseline",
        GOALS,
        figures,
        __doc__.splitlines()[0],
        preset="scratch",
    )


if __name__ == "__main__":
    main()

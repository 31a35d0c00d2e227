"""Speed, size and accuracy of a project's exported formats, side by side.

Run after `make project=mnist export`: `make project=mnist bench-formats`
(or `python -m benchmarks.formats --project mnist`). Writes
benchmarks/results/<project>_formats.json; the README's table is quoted from it.

Per format: batch-1 latency (median and p99 over `--runs` calls, after a warm-up),
batch-64 throughput, file size, and the accuracy on the test split from parity.json.
Every runtime may use all the cores. The goals are measured here, never asserted
in tests: int8 TF Lite at most 0.28x the float32 file, its accuracy within 0.5
points of Keras, and a batch-1 latency at most 1/10 of `model.predict` on one sample.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from common import registry
from common.config import make_config
from common.paths import REPO_ROOT, ArtifactPaths
from common.runtime import quiet_tensorflow

from .machine import describe_machine

RESULTS_DIR = Path(__file__).parent / "results"
BATCH = 64  # for throughput
THROUGHPUT_SECONDS = 2.0  # how long each format runs batches of BATCH


def timings(run: Callable[[], object], runs: int, warmup: int = 20) -> dict[str, float]:
    """Median and p99 latency of `run()` in milliseconds."""
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1e3)
    return {
        "batch1_ms_median": round(statistics.median(samples), 3),
        "batch1_ms_p99": round(float(np.percentile(samples, 99)), 3),
    }


def throughput(run: Callable[[], object], batch: int) -> float:
    """Examples per second running `run()` (one batch) repeatedly for THROUGHPUT_SECONDS."""
    run()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < THROUGHPUT_SECONDS:
        run()
        calls += 1
    return round(calls * batch / (time.perf_counter() - start), 1)


def tflite_runner(path: Path, x: np.ndarray, threads: int) -> Callable[[], object]:
    """A TF Lite interpreter sized for `x`, as a no-argument call (set input, invoke, read outputs)."""
    from common.export.tflite import interpreter_for

    interpreter = interpreter_for(path, num_threads=threads, batch_size=len(x))
    (inp,) = interpreter.get_input_details()
    outputs = [o["index"] for o in interpreter.get_output_details()]

    def run() -> list[np.ndarray]:
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        return [interpreter.get_tensor(i) for i in outputs]

    return run


def runners(parity: dict, serving, x: np.ndarray, threads: int) -> dict[str, Callable[[], object]]:
    """No-argument callables running `x` (one input, batch first) through each benchmarked format."""
    import tensorflow as tf

    from common.export import onnx as onnx_export
    from common.export.savedmodel import SIGNATURE

    path = {r["format"]: REPO_ROOT / r["path"] for r in parity["formats"]}
    signature = tf.saved_model.load(str(path["savedmodel"])).signatures[SIGNATURE]
    session = onnx_export.session(path["onnx"], threads)
    name = serving.inputs[0].name
    x_tf = tf.constant(x)
    return {
        "keras_predict": lambda: serving.predict(x, verbose=0),
        "keras_call": lambda: serving(x_tf, training=False),
        "savedmodel": lambda: signature(**{name: x_tf}),
        "tflite_float32": tflite_runner(path["tflite_float32"], x, threads),
        "tflite_int8": tflite_runner(path["tflite_int8"], x, threads),
        "onnx": lambda: session.run(None, {name: x}),
    }


def goals(table: dict[str, dict]) -> dict[str, dict]:
    """The export's three goals as measured: value, target, met."""
    size_ratio = table["tflite_int8"]["size_bytes"] / table["tflite_float32"]["size_bytes"]
    drop = (table["keras_predict"]["accuracy"] - table["tflite_int8"]["accuracy"]) * 100
    latency = table["tflite_int8"]["batch1_vs_predict"]
    return {
        "int8_size_vs_float32": {"value": round(size_ratio, 3), "target": "<= 0.28", "met": size_ratio <= 0.28},
        "int8_accuracy_drop_points": {"value": round(drop, 2), "target": "<= 0.5", "met": drop <= 0.5},
        "int8_batch1_latency_vs_predict": {"value": latency, "target": "<= 0.1", "met": latency <= 0.1},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="mnist")
    parser.add_argument("--preset", help="the preset whose data config gives the test inputs (default: the project's)")
    parser.add_argument("--output-dir", type=Path, help="the project's artifacts (default artifacts/<project>/)")
    parser.add_argument("--runs", type=int, default=300, help="batch-1 calls timed per format")
    args = parser.parse_args()
    quiet_tensorflow()
    import keras

    config = registry.config_module(args.project)
    cfg = make_config(config.CONFIG, config.PRESETS, args.preset or config.DEFAULT_PRESET)
    project = registry.load(args.project)
    paths = ArtifactPaths.for_project(args.project, args.output_dir)
    if not paths.parity_json.exists():
        sys.exit(f"error: no export at {paths.parity_json}; run `make project={args.project} export` first")
    parity = json.loads(paths.parity_json.read_text())
    measured = {r["format"]: r for r in parity["formats"]}
    serving = project.serving_model(keras.models.load_model(paths.model), cfg)
    examples, _ = project.export_examples(cfg, project.load_data(cfg))
    threads = len(os.sched_getaffinity(0))
    load = [round(x, 2) for x in os.getloadavg()]  # other work on the machine skews every timing

    single = runners(parity, serving, examples[:1], threads)
    batched = runners(parity, serving, examples[:BATCH], threads)
    table: dict[str, dict] = {}
    for fmt, run in single.items():
        row = measured["keras" if fmt.startswith("keras") else fmt]
        table[fmt] = {
            **timings(run, args.runs),
            "batch64_per_s": throughput(batched[fmt], BATCH),
            "size_bytes": row["size_bytes"],
            "accuracy": row["metric"],
        }
        print(f"{fmt:<15} {table[fmt]}", flush=True)
    for row in table.values():
        row["batch1_vs_predict"] = round(row["batch1_ms_median"] / table["keras_predict"]["batch1_ms_median"], 4)

    result = {
        "benchmark": f"{args.project} exported formats: batch-1 latency, batch-{BATCH} throughput, size, accuracy",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": {**describe_machine(), "threads_per_runtime": threads, "load_average_at_start": load},
        "savedmodel": parity["savedmodel"],
        "accuracy_on": f"{parity['examples']} test examples ({parity['data_source']})",
        "runs": args.runs,
        "formats": table,
        "goals": goals(table),
    }
    out = RESULTS_DIR / f"{args.project}_formats.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["goals"], indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

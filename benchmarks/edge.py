"""What an edge CPU (a Raspberry Pi, a Jetson Nano's ARM cores) gets from each project's small TF Lite models.

Run after `make project=<name> export`: `make project=<name> bench-edge` (or `python -m benchmarks.edge --project
mnist`; `--project all` measures every exported project). For every int8 and float16 TF Lite file of the export
(the chatbot's encoder and decoder step included) it measures, each in a fresh process so one model's memory is
not counted in another's:

- batch-1 latency on ONE thread (median and p99 over `--runs` calls after a warm-up), as a small board runs it;
- peak memory: how far the process's resident set rose above where it stood once the runtime was imported
  (`ai_edge_litert`, the same package a Raspberry Pi installs), while loading and running the model: its weights,
  tensors and arena (Linux: VmHWM, reset through /proc/self/clear_refs);
- the file size.

Writes benchmarks/results/edge.json, one entry per project with its machine, commit and load average.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import registry
from common.paths import DEFAULT_ARTIFACTS
from common.runtime import quiet_tensorflow

from .machine import describe_machine

RESULTS = Path(__file__).parent / "results" / "edge.json"
VARIANTS = ("int8", "float16")

# Run in a fresh interpreter: loads one .tflite (or none), runs it, prints what it measured as JSON.
PROBE = r"""
import json, statistics, sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter


def status_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])


path, runs = sys.argv[1], int(sys.argv[2])
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak resident set starts again from here: the imports' peak is not the model's
before = status_kib("VmRSS")
interpreter = Interpreter(model_path=path, num_threads=1)
for spec in interpreter.get_input_details():
    interpreter.resize_tensor_input(spec["index"], [1, *[max(d, 1) for d in spec["shape_signature"][1:]]])
interpreter.allocate_tensors()
rng = np.random.default_rng(0)
inputs = []
for spec in interpreter.get_input_details():
    shape, dtype = spec["shape"], spec["dtype"]
    if np.issubdtype(dtype, np.floating):
        inputs.append((spec["index"], rng.random(shape).astype(dtype)))
    else:
        inputs.append((spec["index"], np.zeros(shape, dtype)))

def run():
    for index, value in inputs:
        interpreter.set_tensor(index, value)
    interpreter.invoke()

for _ in range(min(runs, 20)):
    run()
samples = []
for _ in range(runs):
    start = time.perf_counter()
    run()
    samples.append((time.perf_counter() - start) * 1e3)
result = {
    "batch1_ms_median": round(statistics.median(samples), 3),
    "batch1_ms_p99": round(float(np.percentile(samples, 99)), 3),
    "model_peak_kib": status_kib("VmHWM") - before,
}
print(json.dumps(result))
"""


def probe(path: Path, runs: int) -> dict[str, float]:
    """Run PROBE on `path` in a fresh process; what it measured."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), str(runs)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"measuring {path} failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def tflite_files(export_dir: Path) -> list[Path]:
    """The int8 and float16 TF Lite files under `export_dir` (the chatbot's parts sit in sub-folders)."""
    return sorted(p for p in export_dir.rglob("*.tflite") if p.stem in VARIANTS)


def measure_project(export_dir: Path, runs: int) -> dict[str, dict[str, Any]]:
    """Per file (its path below `export_dir`): size, single-thread batch-1 latency, peak memory above the runtime's."""
    rows = {}
    for path in tflite_files(export_dir):
        measured = probe(path, runs)
        rows[str(path.relative_to(export_dir))] = {
            "variant": path.stem,
            "size_bytes": path.stat().st_size,
            "batch1_ms_median": measured["batch1_ms_median"],
            "batch1_ms_p99": measured["batch1_ms_p99"],
            "peak_memory_mib": round(measured["model_peak_kib"] / 1024, 2),
            "threads": 1,
        }
        print(f"  {path.relative_to(export_dir)!s:<34} {rows[str(path.relative_to(export_dir))]}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="mnist", help="a project name, or `all` for every exported project")
    parser.add_argument("--output-dir", type=Path, help="the project's artifacts (default artifacts/<project>/)")
    parser.add_argument("--runs", type=int, default=200, help="batch-1 calls timed per model")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"the JSON written (default {RESULTS})")
    args = parser.parse_args(argv)
    quiet_tensorflow()
    if args.project != "all" and args.project not in registry.names():
        parser.error(f"unknown project {args.project!r}; known: {', '.join(registry.names())}, or all")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    names = registry.names() if args.project == "all" else [args.project]
    results = json.loads(args.results.read_text()) if args.results.exists() else {"projects": {}}
    measured_any = False
    for name in names:
        root = args.output_dir if args.output_dir and args.project != "all" else DEFAULT_ARTIFACTS / name
        files = tflite_files(root / "export")
        if not files:
            print(f"{name}: no int8 or float16 TF Lite model under {root / 'export'}; run `make project={name} export`")
            continue
        print(f"{name}: {len(files)} models, one thread, batch 1")
        models = measure_project(root / "export", args.runs)
        results["projects"][name] = {"models": models, "machine": describe_machine()}
        measured_any = True
    if not measured_any:
        sys.exit("error: nothing to measure: export a project first (make project=mnist export)")
    results["benchmark"] = __doc__.splitlines()[0]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    print(f"Results: {args.results}")


if __name__ == "__main__":
    main()

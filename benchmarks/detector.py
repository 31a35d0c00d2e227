"""Measure the detector's default preset: COCO mAP on the generated test scenes and the CPU training time.

Runs `python -m projects.detector all` (train, then evaluate) from scratch and records
`map_50` (mAP@0.5), `map_50_95` (COCO mAP@[.5:.95]) and `train_seconds` (the `fit` time,
scene generation excluded), with the machine and its load average, since other work on a
shared machine slows training. The quality goal is mAP@0.5 >= 0.85 within 15 minutes of CPU training.
The grid of test detections is copied to docs/images/detector-detections.png for the README.

Run: `make project=detector bench` (or `python -m benchmarks.detector [--preset default] [--output-dir DIR]`).
Writes benchmarks/results/detector.json; the README's figures are quoted from it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from .machine import describe_machine

RESULTS = Path(__file__).parent / "results" / "detector.json"
REPO = Path(__file__).resolve().parent.parent
PICTURE = REPO / "docs" / "images" / "detector-detections.png"
GOAL_MAP_50 = 0.85
GOAL_SECONDS = 15 * 60


def run_preset(preset: str, out: Path) -> dict:
    """One `python -m projects.detector all` run into `out`; returns its report plus wall-clock seconds."""
    if (out / "checkpoints" / "backup").exists():
        sys.exit(f"error: {out} holds a resumable run; a benchmark trains from scratch: choose an empty --output-dir")
    start = time.perf_counter()
    load_before = os.getloadavg()
    subprocess.run(
        [sys.executable, "-m", "projects.detector", "all", "--preset", preset, "--output-dir", str(out)],
        cwd=REPO,
        check=True,
    )
    report = json.loads((out / "report.json").read_text())
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    report["load_average"] = {
        "before": [round(x, 2) for x in load_before],
        "after": [round(x, 2) for x in os.getloadavg()],
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--output-dir", type=Path, help="keep the run's artifacts here (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = args.output_dir or Path(tmp)
        report = run_preset(args.preset, out)
        PICTURE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "plots" / "detections.png", PICTURE)
    m = report["metrics"]
    result = {
        "benchmark": "detector end to end (generate scenes, train, evaluate with pycocotools)",
        "preset": args.preset,
        "data": report["data"],
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": describe_machine(),
        "load_average": report["load_average"],
        "map_50": round(m["map_50"], 4),
        "map_50_95": round(m["map_50_95"], 4),
        "map_75": round(m["map_75"], 4),
        "train_seconds": report["train_seconds"],
        "wall_seconds": report["wall_seconds"],
        "goal": {"map_50": GOAL_MAP_50, "train_seconds": GOAL_SECONDS},
        "goal_met": m["map_50"] >= GOAL_MAP_50 and report["train_seconds"] <= GOAL_SECONDS,
        "per_class_ap_50": {name: c["ap_50"] for name, c in m["per_class_ap"].items()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("machine", "data", "per_class_ap_50")}, indent=2))
    print(f"wrote {RESULTS} and {PICTURE}")


if __name__ == "__main__":
    main()

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
import shutil
import tempfile
from pathlib import Path

from .runs import REPO, run_preset, write_results

PICTURE = REPO / "docs" / "images" / "detector-detections.png"
GOAL_MAP_50 = 0.85
GOAL_SECONDS = 15 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--output-dir", type=Path, help="keep the run's artifacts here (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = args.output_dir or Path(tmp)
        report = run_preset("detector", args.preset, out)
        PICTURE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "plots" / "detections.png", PICTURE)
    m = report["metrics"]
    result = {
        "benchmark": "detector end to end (generate scenes, train, evaluate with pycocotools)",
        "preset": args.preset,
        "data": report["data"],
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
    print(json.dumps({k: v for k, v in result.items() if k not in ("data", "per_class_ap_50")}, indent=2))
    write_results("detector", result)
    print(f"wrote {PICTURE}")


if __name__ == "__main__":
    main()

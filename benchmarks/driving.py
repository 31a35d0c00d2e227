"""Measure the driving project's default preset end to end, from an empty episode cache.

`python -m projects.driving train` (the expert's drives, behaviour cloning, DAgger
rounds) then `evaluate` (the CNN, the expert and a random policy on 5 held-out
tracks), both timed: wall-clock seconds and the CPU seconds the runs used (on a
shared machine the CPU time is the fairer figure; the load average is recorded).

Run: `make project=driving bench` (or `python -m benchmarks.driving [--preset default]`).
Writes benchmarks/results/driving.json (the README quotes it) and the README's
pictures, docs/images/driving-*.png and driving-drive.gif.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from .machine import describe_machine
from .runs import expected_versus_measured

RESULTS = Path(__file__).parent / "results" / "driving.json"
REPO = Path(__file__).resolve().parent.parent
IMAGES = REPO / "docs" / "images"
TARGET_RATIO = 0.8  # the CNN's mean reward must reach 0.8x the expert's
CPU_BUDGET_SECONDS = 20 * 60


def run(command: str, preset: str, out: Path) -> dict[str, float]:
    """One `python -m projects.driving <command>`; its wall-clock and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "projects.driving",
            command,
            "--preset",
            preset,
            "--output-dir",
            str(out),
            "--set",
            f"data.cache_dir={out / 'episodes'}",
        ],
        cwd=REPO,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": round(time.perf_counter() - start, 1), "cpu": round(cpu, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--output-dir", type=Path, help="keep the run here (must not exist)")
    args = parser.parse_args()
    if args.output_dir and args.output_dir.exists():
        parser.error(f"--output-dir {args.output_dir} exists; the benchmark starts from nothing (remove it first)")

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.output_dir or Path(tmp) / "driving"
        train = run("train", args.preset, out)
        evaluate = run("evaluate", args.preset, out)
        report = json.loads((out / "report.json").read_text())
        rounds = json.loads((out / "train.json").read_text())["rounds"]
        IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "drive.gif", IMAGES / "driving-drive.gif")
        for plot in ("driven_paths", "steering_over_time", "dagger_rewards"):
            if (out / "plots" / f"{plot}.png").exists():
                shutil.copy(out / "plots" / f"{plot}.png", IMAGES / f"driving-{plot.replace('_', '-')}.png")
    m = report["metrics"]
    total_cpu = train["cpu"] + evaluate["cpu"]
    result = {
        "benchmark": "driving end to end from an empty cache: expert drives, training with DAgger, closed loop",
        "preset": args.preset,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": {
            **describe_machine(),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
        },
        "held_out_tracks": list(m["tracks"]),
        "cnn_mean_reward": m["cnn_mean_reward"],
        "cnn_min_reward": m["cnn_min_reward"],
        "expert_mean_reward": m["expert_mean_reward"],
        "expert_min_reward": m["expert_min_reward"],
        "random_mean_reward": m["random_mean_reward"],
        "reward_ratio": m["reward_ratio"],
        "target_ratio": TARGET_RATIO,
        "cnn_laps": m["cnn_laps"],
        "expert_laps": m["expert_laps"],
        "cnn_off_track_events": m["cnn_off_track_events"],
        "cnn_mean_track_progress": m["cnn_mean_track_progress"],
        "open_loop_steering_mae": m["open_loop_steering_mae"],
        "dagger_rounds": [
            {k: r[k] for k in ("round", "train_frames", "fit_seconds", "drive_mean_reward") if k in r} for r in rounds
        ],
        "total_seconds": round(train["wall"] + evaluate["wall"], 1),
        "train_seconds": train["wall"],
        "evaluate_seconds": evaluate["wall"],
        "cpu_seconds": round(total_cpu, 1),
        "train_cpu_seconds": train["cpu"],
        "cpu_budget_seconds": CPU_BUDGET_SECONDS,
        "tracks": m["tracks"],
        "expected": expected_versus_measured("driving", args.preset, report | {"wall_seconds": train["wall"]}),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("machine", "tracks")}, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

"""Measure the GAN's default preset: FID at initialisation and after training, and the CPU time it took.

Runs `python -m projects.gan all --preset default` (train, then evaluate) and reads its report. FID is computed
in the feature space of the project's own classifier (Inception's weights are not available offline), on the
same seeded noise before and after training: `fid_ratio` = fid_initial / fid_final; the goal is at least 3 within
30 minutes of CPU training.

Run: `make project=gan bench` (or `python -m benchmarks.gan [--preset default] [--output-dir DIR]`).
Writes benchmarks/results/gan.json; the README's figures are quoted from it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common.runtime import quiet_tensorflow

from .machine import describe_machine

RESULTS = Path(__file__).parent / "results" / "gan.json"
REPO = Path(__file__).resolve().parent.parent
GOAL_RATIO, GOAL_SECONDS = 3.0, 30 * 60


def run_preset(preset: str, out: Path) -> dict:
    """One fresh `python -m projects.gan all` run into `out`; returns its report plus wall-clock seconds."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "projects.gan", "all", "--preset", preset, "--output-dir", str(out)]
    subprocess.run(command, cwd=REPO, check=True)
    report = json.loads((out / "report.json").read_text())
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--output-dir", type=Path, help="keep the run's artifacts here (default: a temporary folder)")
    args = parser.parse_args()
    quiet_tensorflow()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.output_dir or Path(tmp)
        if (out / "checkpoints" / "backup").exists():
            sys.exit(f"error: {out} holds a resumable run; the benchmark needs a fresh folder")
        report = run_preset(args.preset, out)
    m = report["metrics"]
    result = {
        "benchmark": "GAN default preset: FID (own feature network) at initialisation and after training",
        "preset": args.preset,
        "data": report["data"],
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": describe_machine(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "fid_initial": round(m["fid_initial"], 3),
        "fid_final": round(m["fid"], 3),
        "fid_ratio": round(m["fid_ratio"], 3),
        "kid_initial": round(m["kid_initial"], 4),
        "kid_final": round(m["kid"], 4),
        "fid_real_test_images": round(m["fid_real_test_images"], 3),
        "fid_samples": m["fid_samples"],
        "fid_features": m["fid_features"],
        "diversity_ratio": round(m["diversity_ratio"], 3),
        "train_seconds": report["train_seconds"],
        "wall_seconds": report["wall_seconds"],
        "goal_met": m["fid_ratio"] >= GOAL_RATIO and report["train_seconds"] <= GOAL_SECONDS,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("machine", "data")}, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

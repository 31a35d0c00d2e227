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
import tempfile
from pathlib import Path

from common.runtime import quiet_tensorflow

from .runs import run_preset, write_results

GOAL_RATIO, GOAL_SECONDS = 3.0, 30 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--output-dir", type=Path, help="keep the run's artifacts here (default: a temporary folder)")
    args = parser.parse_args()
    quiet_tensorflow()

    with tempfile.TemporaryDirectory() as tmp:
        report = run_preset("gan", args.preset, args.output_dir or Path(tmp))
    m = report["metrics"]
    result = {
        "benchmark": "GAN default preset: FID (own feature network) at initialisation and after training",
        "preset": args.preset,
        "data": report["data"],
        "load_average": report["load_average"],
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
    print(json.dumps({k: v for k, v in result.items() if k != "data"}, indent=2))
    write_results("gan", result)


if __name__ == "__main__":
    main()

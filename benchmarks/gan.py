"""Measure the GAN's default preset against held-out real emoji: FID to the floor, precision, recall, CPU time.

Runs `python -m projects.gan all --preset default` (feature network if not cached, train, evaluate) and reads its
report. FID is computed in the feature space of the project's own emoji-category classifier (Inception's weights
are not available offline), generated images against held-out real emoji (emoji neither the GAN nor the feature
network saw), and divided by the floor: real training emoji against the same held-out ones, as many. Precision
and recall (Kynkaanniemi et al., 2019) use the same features. Goals: `fid_to_floor_ratio` <= 2, precision >= 0.6,
recall >= 0.3, within 20 minutes of training on 2 CPU cores.

Single runs of one preset differ by a third in FID (the threads of a CPU make each run its own), so the benchmark
trains once per seed (`--seeds`, three by default) and reports the means, each run's figures and the spread.

Run: `make project=gan bench` (or `python -m benchmarks.gan [--preset default] [--seeds 42,43,44] [--output-dir
DIR]`). Writes benchmarks/results/gan.json (the means; the median run's FID / floor against the validation images
after every epoch, and the epoch whose generator is kept and scored against the test images), and copies the median
run's final grid and nearest-neighbour grid to docs/images/gan-*.png; the README's figures are quoted from the
results file.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from common.plots import read_history
from common.runtime import quiet_tensorflow

from .generative import IMAGES, copy_pictures, generated_image_figures
from .runs import run_preset, write_results

PICTURES = {"final_grid.png": "gan-final-grid.png", "nearest_neighbours.png": "gan-nearest-neighbours.png"}
GOAL = {"fid_to_floor_ratio": 2.0, "precision": 0.6, "recall": 0.3, "train_seconds": 20 * 60}


MEANS = ("fid_to_floor_ratio", "fid", "precision", "recall", "kid", "train_seconds", "wall_seconds")


def one_run(preset: str, seed: int, out: Path, export: bool) -> dict[str, Any]:
    """`python -m projects.gan all` of `preset` with `train.seed=seed` into `out` (then `export` with `export`): its
    figures, and its validation FID / floor after every epoch, which picks the epoch kept and scored."""
    report = run_preset("gan", preset, out, f"train.seed={seed}", export=export)
    m = report["metrics"]
    return {
        "seed": seed,
        **generated_image_figures(report),
        "fid_initial": round(m["fid_initial"], 4),
        "diversity_ratio": round(m["diversity_ratio"], 3),
        "val_fid_to_floor_ratio_by_epoch": [
            round(x, 2) for x in read_history(out / "history.csv").get("val_fid_to_floor_ratio", [])
        ],
        "kept_epoch": m.get("kept_epoch"),
        "held_out_images": m["held_out_images"],
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run's figures (by FID / floor; its pictures are the README's), then the mean of `MEANS` over
    every run with the standard deviation of FID / floor, each run's headline figures, and the goals judged on
    the means."""
    pictured = sorted(runs, key=lambda run: run["fid_to_floor_ratio"])[len(runs) // 2]
    means = {key: round(float(np.mean([run[key] for run in runs])), 4) for key in MEANS}
    result = {
        **{key: value for key, value in pictured.items() if key != "seed"},
        **means,
        "fid_to_floor_ratio_sd": round(float(np.std([run["fid_to_floor_ratio"] for run in runs])), 3),
        "seeds": [run["seed"] for run in runs],
        "pictured_seed": pictured["seed"],
        "runs": [{key: run[key] for key in ("seed", *MEANS, "kept_epoch")} for run in runs],
        "goal": GOAL,
    }
    result["goal_met"] = (
        result["fid_to_floor_ratio"] <= GOAL["fid_to_floor_ratio"]
        and result["precision"] >= GOAL["precision"]
        and result["recall"] >= GOAL["recall"]
        and result["train_seconds"] <= GOAL["train_seconds"]
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument(
        "--seeds",
        default="42,43,44",
        help="comma-separated train.seed values, one run each (default 42,43,44); the figures are their means, the "
        "pictures the median run's",
    )
    parser.add_argument("--output-dir", type=Path, help="keep the runs' artifacts here (default: a temporary folder)")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    quiet_tensorflow()

    with tempfile.TemporaryDirectory() as tmp:
        out = args.output_dir or Path(tmp)
        runs = [one_run(args.preset, seed, out / f"seed_{seed}", export=i == 0) for i, seed in enumerate(seeds)]
        result = {
            "benchmark": "GAN against held-out real emoji: FID / floor, precision, recall (own feature network)",
            "preset": args.preset,
            **summarise(runs),
        }
        copy_pictures(out / f"seed_{result['pictured_seed']}", PICTURES)
    print(json.dumps({k: v for k, v in result.items() if k != "data"}, indent=2))
    write_results("gan", result)
    print(f"wrote {', '.join(str(IMAGES / t) for t in PICTURES.values())}")


if __name__ == "__main__":
    main()

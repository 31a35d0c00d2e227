"""Measure the GAN's default preset against held-out real emoji: FID to the floor, precision, recall, CPU time.

Runs `python -m projects.gan all --preset default` (feature network if not cached, train, evaluate) and reads its
report. FID is computed in the feature space of the project's own emoji-category classifier (Inception's weights
are not available offline), generated images against held-out real emoji (emoji neither the GAN nor the feature
network saw), and divided by the floor: real training emoji against the same held-out ones, as many. Precision
and recall (Kynkaanniemi et al., 2019) use the same features. Goals: `fid_to_floor_ratio` <= 2, precision >= 0.6,
recall >= 0.3, within 20 minutes of training on 2 CPU cores.

Run: `make project=gan bench` (or `python -m benchmarks.gan [--preset default] [--output-dir DIR]`).
Writes benchmarks/results/gan.json (with FID / floor against the validation images after every epoch, and the
epoch whose generator is kept and scored against the test images), and copies the final grid and the
nearest-neighbour grid to docs/images/gan-*.png; the README's figures are quoted from the results file.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common.plots import read_history
from common.runtime import quiet_tensorflow

from .generative import IMAGES, generated_image_figures, run_keeping_pictures
from .runs import write_results

PICTURES = {"final_grid.png": "gan-final-grid.png", "nearest_neighbours.png": "gan-nearest-neighbours.png"}
GOAL = {"fid_to_floor_ratio": 2.0, "precision": 0.6, "recall": 0.3, "train_seconds": 20 * 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--output-dir", type=Path, help="keep the run's artifacts here (default: a temporary folder)")
    args = parser.parse_args()
    quiet_tensorflow()

    with tempfile.TemporaryDirectory() as tmp:
        out = args.output_dir or Path(tmp)
        report = run_keeping_pictures("gan", args.preset, out, PICTURES)
        by_epoch = [round(x, 2) for x in read_history(out / "history.csv").get("val_fid_to_floor_ratio", [])]
    m = report["metrics"]
    result = {
        "benchmark": "GAN against held-out real emoji: FID / floor, precision, recall (own feature network)",
        "preset": args.preset,
        **generated_image_figures(report),
        "fid_initial": round(m["fid_initial"], 4),
        "diversity_ratio": round(m["diversity_ratio"], 3),
        "val_fid_to_floor_ratio_by_epoch": by_epoch,  # against the validation split, which picks the kept epoch
        "kept_epoch": m.get("kept_epoch"),
        "held_out_images": m["held_out_images"],
        "goal": GOAL,
        "goal_met": m["fid_to_floor_ratio"] <= GOAL["fid_to_floor_ratio"]
        and m["precision"] >= GOAL["precision"]
        and m["recall"] >= GOAL["recall"]
        and report["train_seconds"] <= GOAL["train_seconds"],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "data"}, indent=2))
    write_results("gan", result)
    print(f"wrote {', '.join(str(IMAGES / t) for t in PICTURES.values())}")


if __name__ == "__main__":
    main()

"""The GAN's training time with one TensorFlow thread per op against TensorFlow's default, side by side.

`python -m benchmarks.gan_threads [--pairs 2] [--epochs 2]`: short trainings of the default preset, alternating
`train.intra_op_threads=1` (the default) and `=0` (TensorFlow's default: one thread per core), so that both settings
share the machine's moments; writes benchmarks/results/gan_threads.json with each run's training seconds, the
means and their ratio. Only time is compared: short runs say nothing about the images (`make project=gan bench`
does).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .runs import run_command, write_results

SETTINGS = (1, 0)  # train.intra_op_threads: one thread per op, then TensorFlow's default


def one_run(threads: int, epochs: int, seed: int, out: Path) -> dict[str, Any]:
    """A `train` of the default preset with `threads` per op for `epochs` epochs: its train.json's seconds."""
    load = os.getloadavg()[0]
    wall = run_command(
        "gan",
        "train",
        "default",
        out,
        [f"train.intra_op_threads={threads}", f"train.epochs={epochs}", f"train.seed={seed}"],
    )
    train = json.loads((out / "train.json").read_text())
    return {
        "intra_op_threads": threads,
        "intra_op_threads_used": train["intra_op_threads"],
        "train_seconds": train["train_seconds"],
        "wall_seconds": wall,
        "load_average_before": round(load, 2),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean training seconds per setting and the ratio of one thread's to the default's (below 1: faster)."""
    means = {
        threads: round(float(np.mean([r["train_seconds"] for r in runs if r["intra_op_threads"] == threads])), 1)
        for threads in SETTINGS
    }
    return {
        "train_seconds_one_thread": means[1],
        "train_seconds_default_threads": means[0],
        "one_thread_over_default": round(means[1] / means[0], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2, help="runs per setting, alternating (default 2)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of 1,000 steps per run (default 2)")
    parser.add_argument("--seed", type=int, default=43, help="train.seed of every run (default 43)")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            for threads in SETTINGS:
                runs.append(one_run(threads, args.epochs, args.seed, Path(tmp) / f"{pair}_{threads}"))
                print(json.dumps(runs[-1]))
    result = {
        "benchmark": "GAN training seconds: one TensorFlow thread per op against the default (one per core)",
        "preset": "default",
        "epochs": args.epochs,
        "seed": args.seed,
        **summarise(runs),
        "runs": runs,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    write_results("gan_threads", result)


if __name__ == "__main__":
    main()

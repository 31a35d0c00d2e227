"""Measure the diffusion model's default preset against held-out real emoji, beside the GAN's committed figures.

Runs `python -m projects.diffusion all --preset default` (feature network if not cached, train, evaluate), then
`export` (benchmarks/runs.py: the sampling SavedModel and the denoiser's formats), and reads the report.
FID is computed in the feature space shared with the GAN
(common/feature_space.py), generated images against held-out real emoji, divided by the floor (real training
emoji against the same held-out ones, as many), at 10, 25, 50 and 250 DDIM steps. Sampling time per image at 50
steps is measured three times: the Python loop of `evaluate` (Keras), the SavedModel's own loop (batch of 16) and
the browser page's TF.js loop in headless Chromium (benchmarks/diffusion_browser.py, its own results file).
Goals: `fid_to_floor_ratio` <= 3 at 50 DDIM steps, within 30 minutes of training on 2 CPU cores.

Run: `make project=diffusion bench` (or `python -m benchmarks.diffusion [--preset default] [--output-dir DIR]`).
Writes benchmarks/results/diffusion.json and copies the final grid, the step comparison and the denoising strip to
docs/images/diffusion-*.png; the README's figures are quoted from the results file.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common.runtime import quiet_tensorflow

from .diffusion_browser import browser_figures
from .generative import IMAGES, generated_image_figures, run_keeping_pictures
from .runs import write_results

PICTURES = {
    "final_grid.png": "diffusion-final-grid.png",
    "steps_comparison.png": "diffusion-steps.png",
    "denoising_strip.png": "diffusion-denoising-strip.png",
}
GOAL = {"fid_to_floor_ratio": 3.0, "train_seconds": 30 * 60}
TIMED_BATCH, TIMED_STEPS = 16, 50


def savedmodel_seconds_per_image(out: Path) -> float:
    """Time the exported SavedModel (its newest version) sampling `TIMED_BATCH` images in `TIMED_STEPS` steps."""
    import numpy as np
    import tensorflow as tf

    version = max((out / "serving" / "diffusion").iterdir(), key=lambda p: int(p.name))
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    inputs = {"seed": tf.range(TIMED_BATCH), "steps": tf.fill([TIMED_BATCH], TIMED_STEPS)}
    if "label" in signature.structured_input_signature[1]:
        inputs.update(label=tf.zeros([TIMED_BATCH], tf.int32), guidance=tf.fill([TIMED_BATCH], 2.0))
    signature(**{k: v[:1] for k, v in inputs.items()})  # warm up
    start = time.perf_counter()
    images = signature(**inputs)["image"].numpy()
    assert images.shape[0] == TIMED_BATCH and images.dtype == np.uint8
    return (time.perf_counter() - start) / TIMED_BATCH


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--output-dir", type=Path, help="keep the run's artifacts here (default: a temporary folder)")
    args = parser.parse_args()
    quiet_tensorflow()

    with tempfile.TemporaryDirectory() as tmp:
        out = args.output_dir or Path(tmp)
        report = run_keeping_pictures("diffusion", args.preset, out, PICTURES)
        served = savedmodel_seconds_per_image(out)
        browser = browser_figures(out, args.preset)
        model_bytes = (out / "model.keras").stat().st_size
    m = report["metrics"]
    result = {
        "benchmark": "diffusion (DDPM, DDIM sampling) against held-out real emoji: FID / floor, precision, recall",
        "preset": args.preset,
        **generated_image_figures(report),
        "ddim_steps": m["ddim_steps"],
        "fid_noise": round(m["fid_noise"], 4),
        "fid_by_ddim_steps": m["tables"]["FID by DDIM steps"],
        "seconds_per_image_python_loop": round(m["seconds_per_image"], 4),
        f"seconds_per_image_savedmodel_{TIMED_STEPS}_steps": round(served, 4),
        "model_bytes": model_bytes,
        "goal": GOAL,
        "goal_met": m["fid_to_floor_ratio"] <= GOAL["fid_to_floor_ratio"]
        and report["train_seconds"] <= GOAL["train_seconds"],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "data"}, indent=2))
    write_results("diffusion", result)
    write_results("diffusion_browser", browser)
    print(f"wrote {', '.join(str(IMAGES / t) for t in PICTURES.values())}")


if __name__ == "__main__":
    main()

"""What the GAN and diffusion benchmarks share: a run whose pictures are kept in docs/images, and the
figures both report against held-out real images in the same feature space."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .runs import REPO, run_preset

IMAGES = REPO / "docs" / "images"


def run_keeping_pictures(project: str, preset: str, out: Path, pictures: dict[str, str]) -> dict[str, Any]:
    """`run_preset` into `out`, then `copy_pictures` of it."""
    report = run_preset(project, preset, out)
    copy_pictures(out, pictures)
    return report


def copy_pictures(out: Path, pictures: dict[str, str]) -> None:
    """Copy a run's `out/plots/<source>` to `docs/images/<target>` for each pair of `pictures`."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    for source, target in pictures.items():
        shutil.copy(out / "plots" / source, IMAGES / target)


def generated_image_figures(report: dict[str, Any]) -> dict[str, Any]:
    """FID to the floor, FID, KID, precision and recall (of generated and of real training images), the feature
    network, the data, the time and the load: the report's figures both generative projects state."""
    m = report["metrics"]
    return {
        "data": report["data"],
        "load_average": report["load_average"],
        "fid_to_floor_ratio": round(m["fid_to_floor_ratio"], 3),
        "fid": round(m["fid"], 4),
        "fid_floor": round(m["fid_floor"], 4),
        "fid_floor_sd": round(m["fid_floor_sd"], 4),  # between draws of real training images (the floor: their mean)
        "fid_floor_draws": m["fid_floor_draws"],
        "precision": round(m["precision"], 3),
        "recall": round(m["recall"], 3),
        "precision_real_train": round(m["precision_real_train"], 3),
        "recall_real_train": round(m["recall_real_train"], 3),
        "kid": round(m["kid"], 5),
        "fid_samples": m["fid_samples"],
        "feature_net_test_accuracy": round(m["feature_net_test_accuracy"], 4),
        "fid_features": m["fid_features"],
        "train_seconds": report["train_seconds"],
        "wall_seconds": report["wall_seconds"],
    }

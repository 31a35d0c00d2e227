"""Learning-rate schedules and optimizers built from the train config; the CSV history of a resumed fit."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.config import TrainConfig
from common.data.splits import DataSplits
from common.paths import ArtifactPaths
from common.training import fit, make_optimizer, make_schedule

STEPS = 10


def _rates(cfg: TrainConfig) -> np.ndarray:
    schedule = make_schedule(cfg, STEPS)
    steps = range(cfg.epochs * STEPS)
    if isinstance(schedule, float):
        return np.full(len(steps), schedule)
    return np.array([float(schedule(s)) for s in steps])


def test_constant():
    assert np.allclose(_rates(TrainConfig(epochs=3, learning_rate=0.1)), 0.1)


def test_step_halves_every_step_epochs():
    rates = _rates(TrainConfig(epochs=6, learning_rate=0.1, schedule="step", step_epochs=2, step_gamma=0.5))
    assert rates[0] == pytest.approx(0.1) and rates[2 * STEPS + 1] == pytest.approx(0.05)
    assert rates[-1] == pytest.approx(0.025)


def test_cosine_with_warmup_rises_then_decays_to_zero():
    rates = _rates(TrainConfig(epochs=10, learning_rate=0.1, schedule="cosine", warmup_epochs=1))
    peak = int(np.argmax(rates))
    assert peak == pytest.approx(STEPS, abs=1) and rates.max() == pytest.approx(0.1, rel=1e-3)
    assert np.all(np.diff(rates[:peak]) > 0) and np.all(np.diff(rates[peak:]) <= 1e-9)
    assert rates[-1] < 0.002


def test_one_cycle_starts_low_peaks_and_ends_near_zero():
    rates = _rates(TrainConfig(epochs=10, learning_rate=0.1, schedule="one_cycle"))
    assert rates[0] == pytest.approx(0.1 / 25)
    assert int(np.argmax(rates)) == pytest.approx(0.3 * 10 * STEPS, abs=1)
    assert rates[-1] < 0.001


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sgd", keras.optimizers.SGD),
        ("momentum", keras.optimizers.SGD),
        ("rmsprop", keras.optimizers.RMSprop),
        ("adam", keras.optimizers.Adam),
        ("nadam", keras.optimizers.Nadam),
        ("adamw", keras.optimizers.AdamW),
    ],
)
def test_optimizers(name, cls):
    opt = make_optimizer(TrainConfig(optimizer=name), STEPS)
    assert isinstance(opt, cls)
    if name == "momentum":
        assert opt.momentum == 0.9 and opt.nesterov


class _KilledAtEpochEnd(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that stops the run at the end of epoch 1, before or after writing its backup."""

    save_first = True

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1 and self.save_first:
            super().on_epoch_end(epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt  # what SIGKILL does to the files: nothing written after this point
        super().on_epoch_end(epoch, logs)


@pytest.mark.parametrize("save_first", [True, False], ids=["killed-after-the-backup", "killed-before-the-backup"])
def test_a_run_killed_at_an_epoch_end_resumes_with_each_epoch_once_in_its_history(tmp_path, monkeypatch, save_first):
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    pairs = tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1)))
    data = DataSplits(pairs, pairs, pairs, "synthetic", {"train": 64, "val": 64, "test": 64})
    paths = ArtifactPaths(tmp_path, tmp_path / "serving")
    cfg = TrainConfig(epochs=3, batch_size=16)

    def model() -> keras.Model:
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        m.compile(optimizer="adam", loss="mse")
        return m

    monkeypatch.setattr(_KilledAtEpochEnd, "save_first", save_first)
    with monkeypatch.context() as patch:
        patch.setattr(keras.callbacks, "BackupAndRestore", _KilledAtEpochEnd)
        with pytest.raises(KeyboardInterrupt):
            fit(model(), data, cfg, paths, monitor=("val_loss", "min"))
    fit(model(), data, cfg, paths, monitor=("val_loss", "min"))
    with open(paths.history_csv, newline="") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1, 2]

"""Learning-rate schedules and optimizers built from the train config."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from common.config import TrainConfig
from common.training import make_optimizer, make_schedule

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

"""The GAN benchmark's summary of several seeds' runs: means, the median run's pictures, goals on the means."""

from __future__ import annotations

import pytest

from benchmarks.gan import GOAL, summarise


def _run(seed: int, ratio: float, precision: float = 0.9, seconds: float = 800.0) -> dict:
    return {
        "seed": seed,
        "fid_to_floor_ratio": ratio,
        "fid": ratio * 0.36,
        "precision": precision,
        "recall": 0.45,
        "kid": 0.005,
        "train_seconds": seconds,
        "wall_seconds": seconds + 60,
        "kept_epoch": seed - 40,
        "val_fid_to_floor_ratio_by_epoch": [10.0, ratio],
    }


def test_summary_takes_means_and_pictures_the_median_run() -> None:
    runs = [_run(42, 6.0), _run(43, 1.5), _run(44, 3.0)]
    summary = summarise(runs)
    assert summary["fid_to_floor_ratio"] == pytest.approx(3.5)
    assert summary["fid_to_floor_ratio_sd"] == pytest.approx(1.871, abs=1e-3)
    assert summary["pictured_seed"] == 44  # ratios 1.5, 3.0, 6.0: the median run is seed 44's
    assert summary["kept_epoch"] == 4 and summary["val_fid_to_floor_ratio_by_epoch"] == [10.0, 3.0]
    assert summary["seeds"] == [42, 43, 44]
    assert [run["fid_to_floor_ratio"] for run in summary["runs"]] == [6.0, 1.5, 3.0]
    assert not summary["goal_met"]  # the mean ratio is above 2 although one run is below


def test_goals_are_judged_on_the_means() -> None:
    met = summarise([_run(42, 1.8), _run(43, 1.9), _run(44, 1.7)])
    assert met["goal_met"] and met["fid_to_floor_ratio"] <= GOAL["fid_to_floor_ratio"]
    slow = summarise([_run(42, 1.8, seconds=1500), _run(43, 1.9, seconds=1400), _run(44, 1.7)])
    assert slow["train_seconds"] == pytest.approx((1500 + 1400 + 800) / 3)  # 1,233 s: over the 1,200 s goal
    assert not slow["goal_met"]


def test_thread_benchmark_compares_the_means_of_each_setting() -> None:
    from benchmarks.gan_threads import summarise as threads_summary

    runs = [
        {"intra_op_threads": threads, "train_seconds": seconds}
        for threads, seconds in ((1, 100.0), (0, 150.0), (1, 110.0), (0, 146.0))
    ]
    summary = threads_summary(runs)
    assert summary["train_seconds_one_thread"] == 105.0 and summary["train_seconds_default_threads"] == 148.0
    assert summary["one_thread_over_default"] == pytest.approx(105 / 148, abs=1e-3)

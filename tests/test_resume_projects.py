"""Training killed with SIGKILL mid-epoch, then the same command rerun: it resumes from the last finished epoch and
finishes, in every project that trains with `fit` (mnist's and the GAN's own tests cover those two).

- classifier: from a backbone weights file, so training has two phases. Killed once while training the head on
  the frozen backbone and once while fine-tuning; the third run neither redoes phase one nor restarts phase two.
- detector and chatbot: one `fit`, killed in its second epoch.
- driving: killed in the fit of DAgger round 1; the rerun skips round 0, reuses the round's drives and resumes.

`--set` makes each run short: small data and a few short epochs, so a kill lands after an epoch is backed up and
well before the run ends.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from common.paths import ArtifactPaths
from common.training import backup_epoch

from .conftest import REPO, project_env, run_project

pytestmark = pytest.mark.slow

EPOCHS = 4
START_LIMIT_S = 900  # the killed run must back up an epoch within this, or the test fails with its output
# Small data for one-`fit` projects: the kill comes in epoch 2, the rerun runs epochs 2 to EPOCHS.
SINGLE_FIT = {
    "detector": ["data.train_scenes=96", "data.val_scenes=16", "data.test_scenes=16"],
    "chatbot": ["data.max_conversations=300"],
}


def train_args(out: Path, *changes: str) -> list[str]:
    """`train --preset smoke --set <change> ... --output-dir out`."""
    return ["train", "--preset", "smoke", *(a for c in changes for a in ("--set", c)), "--output-dir", str(out)]


def kill_mid_epoch(name: str, args: list[str], fitting: ArtifactPaths, epochs: int, after: str = "") -> tuple[int, str]:
    """Run `python -m projects.<name> *args` and SIGKILL it in the epoch after the first one backed up in `fitting`.

    `after`: a line the output shows first (a later phase or round), so an earlier fit's epochs do not count.
    Returns (the epochs backed up in `fitting` at the kill, the output).
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", f"projects.{name}", *args],
        cwd=REPO,
        env={**project_env(), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + START_LIMIT_S
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            output = "".join(lines)
            current = output.partition(after)[2] if after else output  # this fit's output so far
            done = backup_epoch(fitting) if current else None
            if done and done < epochs and f"Epoch {done + 1}/{epochs}" in current:  # the next epoch has begun
                time.sleep(0.3)  # into its steps
                break
            time.sleep(0.05)
        else:
            tail = "".join(lines)[-5000:]
            pytest.fail(f"`{name} {' '.join(args)}` ended or stalled before it could be killed:\n{tail}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(timeout=30)
    output = "".join(lines)
    done = backup_epoch(fitting)
    assert proc.returncode == -signal.SIGKILL, output[-5000:]
    assert done is not None and 1 <= done < epochs, (done, output[-5000:])
    assert not fitting.model.exists(), "the killed fit wrote its final model"
    return done, output


def rerun(name: str, args: list[str]) -> str:
    """The same command again, to its end; its output."""
    result = run_project(name, *args)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return result.stdout


def assert_resumed(output: str, fitting: ArtifactPaths, done: int, epochs: int) -> None:
    """`output` resumed the fit in `fitting` after `done` of its `epochs` epochs, and finished it."""
    assert f"Resuming from the backup in {fitting.backup_dir}: {done} of {epochs} epochs" in output, output[-5000:]
    assert f"Epoch {done + 1}/{epochs}" in output, output[-5000:]
    with open(fitting.history_csv, newline="") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(range(epochs))  # each epoch once
    summary = json.loads(fitting.train_summary.read_text())
    assert summary["resumed_from_epoch"] == done and summary["epochs_run_now"] == epochs - done
    assert fitting.model.is_file() and not fitting.backup_dir.exists()  # a finished fit removes its backup


def assert_finished(out: Path) -> dict:
    """The run's model and its train.json are written; returns train.json."""
    assert (out / "model.keras").is_file()
    summary = json.loads((out / "train.json").read_text())
    assert summary["train_seconds"] > 0
    return summary


@pytest.mark.parametrize("name", sorted(SINGLE_FIT))
def test_a_killed_fit_resumes(name, tmp_path):
    out = tmp_path / name
    args = train_args(out, f"train.epochs={EPOCHS}", *SINGLE_FIT[name])
    done, _ = kill_mid_epoch(name, args, ArtifactPaths(out), EPOCHS)
    output = rerun(name, args)
    assert_resumed(output, ArtifactPaths(out), done, EPOCHS)
    assert "Epoch 1/" not in output
    assert assert_finished(out)["project"] == name


def test_classifier_resumes_in_either_phase(tmp_path):
    """Killed in phase one, rerun and killed in phase two, rerun: each run goes on where the last stopped."""
    import keras

    from common.config import make_config
    from projects.classifier.config import CONFIG, PRESETS
    from projects.classifier.model import build_encoder

    size = 32
    keras.utils.set_random_seed(0)
    _, backbone = build_encoder(make_config(CONFIG, PRESETS, "smoke").model, size)  # the smoke backbone, untrained
    weights = tmp_path / "backbone.weights.h5"
    backbone.save_weights(weights)
    out = tmp_path / "classifier"
    args = train_args(
        out,
        f"model.weights={weights}",
        f"data.image_size={size}",
        "data.max_per_class=24",
        f"train.epochs={EPOCHS}",
        f"fine_tune.epochs={EPOCHS}",
        "fine_tune.layers=20",
    )
    frozen, final = ArtifactPaths(out / "frozen_backbone"), ArtifactPaths(out)

    done, first = kill_mid_epoch("classifier", args, frozen, EPOCHS)
    assert "Phase 2:" not in first
    done_ft, second = kill_mid_epoch("classifier", args, final, EPOCHS, after="Phase 2:")
    assert_resumed(second.partition("Phase 2:")[0], frozen, done, EPOCHS)
    third = rerun("classifier", args)
    assert "Phase 1:" not in third and "Resuming" not in third.partition("Phase 2:")[0]  # phase one is kept as is
    assert_resumed(third, final, done_ft, EPOCHS)
    summary = assert_finished(out)
    assert set(summary["phase_seconds"]) == {"frozen_backbone", "fine_tune"}


def test_driving_resumes_mid_dagger_round(tmp_path):
    out = tmp_path / "driving"
    args = train_args(out, "train.epochs=1", f"dagger.epochs={EPOCHS}")
    round0, round1 = ArtifactPaths(out / "rounds" / "round0"), ArtifactPaths(out / "rounds" / "round1")
    done, _ = kill_mid_epoch("driving", args, round1, EPOCHS, after="Round 1: training")
    assert round0.model.is_file()
    drives = {p: p.stat().st_mtime_ns for p in (out / "dagger").glob("round1-*.npz")}
    assert drives, "round 1's drives were not kept"

    output = rerun("driving", args)
    assert f"Round 0 already trained ({round0.model}); skipping." in output
    assert {p: p.stat().st_mtime_ns for p in (out / "dagger").glob("round1-*.npz")} == drives  # not driven again
    assert_resumed(output, round1, done, EPOCHS)
    assert [r["round"] for r in assert_finished(out)["rounds"]] == [0, 1]

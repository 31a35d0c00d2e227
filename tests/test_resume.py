"""A training run killed with SIGKILL mid-epoch resumes from its last finished epoch when rerun."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time

import pytest

from .conftest import REPO, project_env, run_project

pytestmark = pytest.mark.slow

EPOCHS = 4
ARGS = ["--preset", "smoke", "--set", f"train.epochs={EPOCHS}", "--set", "train.schedule=cosine"]


def _finished_epochs(out) -> int:
    meta = out / "checkpoints" / "backup" / "training_metadata.json"
    try:
        return json.loads(meta.read_text())["epoch"]
    except (OSError, ValueError):
        return 0


def test_killed_training_resumes_and_matches_an_uninterrupted_run(tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "projects.mnist", "train", *ARGS, "--output-dir", str(killed)],
        cwd=REPO,
        env=project_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while _finished_epochs(killed) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # into the next epoch
    assert proc.poll() is None, "training ended before it could be killed:\n" + proc.stdout.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _finished_epochs(killed)
    assert 2 <= done < EPOCHS
    assert not (killed / "model.keras").exists()

    resumed = run_project("mnist", "all", *ARGS, "--output-dir", str(killed))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (
        f"Resuming from the backup in {killed / 'checkpoints' / 'backup'}: {done} of {EPOCHS} epochs" in resumed.stdout
    )
    assert f"Epoch {done + 1}/{EPOCHS}" in resumed.stdout and "Epoch 1/" not in resumed.stdout
    with open(killed / "history.csv", newline="") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == list(range(EPOCHS))
    summary = json.loads((killed / "train.json").read_text())
    assert summary["resumed_from_epoch"] == done and summary["epochs_run_now"] == EPOCHS - done

    straight = tmp_path / "straight"
    uninterrupted = run_project("mnist", "all", *ARGS, "--output-dir", str(straight))
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    acc_resumed = json.loads((killed / "report.json").read_text())["metrics"]["accuracy"]
    acc_straight = json.loads((straight / "report.json").read_text())["metrics"]["accuracy"]
    assert acc_resumed >= acc_straight - 0.03, (acc_resumed, acc_straight)

"""The Makefile: help by default, project selection that fails fast on a typo."""

from __future__ import annotations

import subprocess

from .conftest import REPO


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_make_alone_prints_every_target():
    result = make()
    assert result.returncode == 0
    targets = (
        "install",
        "train",
        "evaluate",
        "predict",
        "all",
        "tune",
        "optimize",
        "coreml",
        "bench-optimize",
        "test",
        "lint",
    )
    for target in (*targets, "export", "bench-formats", "tensorboard", "clean"):
        assert f"\n  {target} " in result.stdout, target
    assert "projects: " in result.stdout and "mnist" in result.stdout


def test_unknown_project_fails_at_once_with_the_known_ones():
    result = make("project=mnsit", "train")
    assert result.returncode != 0
    assert "unknown project 'mnsit'; known projects: " in result.stderr
    assert "mnist" in result.stderr.split("known projects:")[1]


def test_dry_run_installs_before_training():
    result = make("-n", "project=mnist", "train", "ARGS=--set train.epochs=1")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    train_line = next(i for i, line in enumerate(lines) if "-m projects.mnist train" in line)
    assert "--set train.epochs=1" in lines[train_line]
    # On a fresh clone the install steps come first; once installed, make skips them.
    assert all("pip install" not in line for line in lines[train_line:])


def test_tune_and_optimize_run_the_project_command_with_its_arguments():
    for target in ("tune", "optimize", "coreml"):
        result = make("-n", "project=mnist", "preset=smoke", target, "ARGS=--set tune.max_trials=2")
        assert result.returncode == 0, result.stderr
        assert f"-m projects.mnist {target} --preset smoke --set tune.max_trials=2" in result.stdout

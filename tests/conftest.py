"""Shared test helpers: run a project's command line in a subprocess, as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def project_env() -> dict[str, str]:
    """The environment for a project's subprocess: one-line-per-epoch logs, repo on the path."""
    env = dict(os.environ, CI="1", PYTHONPATH=str(REPO))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


def run_project(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m projects.<name> *args` from the repo root; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", f"projects.{name}", *args],
        cwd=REPO,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def save_untrained_mnist(path: Path, preset: str) -> Path:
    """Write the `preset` config's mnist model, seeded and untrained, to `path` (an export needs a model, not a good
    one)."""
    import keras

    from common.config import make_config
    from projects.mnist.config import CONFIG, PRESETS
    from projects.mnist.project import PROJECT

    keras.utils.set_random_seed(0)
    PROJECT.build_model(make_config(CONFIG, PRESETS, preset)).save(path)
    return path


@pytest.fixture(scope="session")
def mnist_smoke_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One `all --preset smoke` run shared by the tests that need a trained mnist model."""
    out = tmp_path_factory.mktemp("mnist_smoke")
    result = run_project("mnist", "all", "--preset", "smoke", "--output-dir", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result


@pytest.fixture(scope="session")
def mnist_export_run(mnist_smoke_run, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The smoke model exported once to every format, in a folder named `mnist` laid out like artifacts/mnist/.

    100 test digits (a seeded subset of the 1,000) keep TF.js's pure-JavaScript runs short.
    """
    out = tmp_path_factory.mktemp("exported") / "mnist"
    out.mkdir()
    shutil.copy(mnist_smoke_run[0] / "model.keras", out / "model.keras")
    result = run_project(
        "mnist", "export", "--preset", "smoke", "--set", "data.test_fraction=0.01", "--output-dir", str(out)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result


@pytest.fixture(scope="session")
def mnist_export(mnist_export_run) -> Path:
    """The folder of `mnist_export_run`: model.keras, export/, serving/, parity.json."""
    return mnist_export_run[0]


# Fixtures that train or export once per session; the files that use them must run on one pytest-xdist worker.
SESSION_RUNS = {"mnist_smoke_run", "mnist_export_run", "mnist_export"}
# Files whose tests share nothing, each test a long run of its own: every test is a unit, so workers split the file.
TEST_PER_UNIT = {"test_lessons.py", "test_resume_projects.py"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Units of work for `pytest -n 2 --dist loadgroup` (what `make test` runs).

    A test file is one unit, so its module fixtures (a smoke training) are built on one worker only; the files
    that share the session's mnist run form one unit; each test of `TEST_PER_UNIT` (a lesson, a killed training)
    is a unit of its own.
    """
    shared = {item.path.name for item in items if SESSION_RUNS & set(getattr(item, "fixturenames", ()))}
    groups = {}
    for item in items:
        name = item.path.name
        groups[item] = "mnist-session" if name in shared else item.name if name in TEST_PER_UNIT else name
        item.add_marker(pytest.mark.xdist_group(groups[item]))
    # Units are handed to the workers in order: the ones with the most slow tests first, so that the last minutes
    # are not one long unit on one worker while the other has nothing left.
    slow = Counter(groups[item] for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[groups[item]])

"""Disk faults: an export that runs out of space publishes nothing and says why; a version folder that cannot be
read is reported while the server keeps answering with the versions it has."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from serving.server import ModelServer

from .conftest import REPO, project_env, save_untrained_mnist
from .serving_models import add_version, wait_until, write_scaler

EXPORT = ("export", "--set", "data.test_fraction=0.01")
FILE_SIZE_LIMIT = 64 * 1024  # bytes any one file of the export may reach: the SavedModel's variables need more


# Runs the command after it with writes past FILE_SIZE_LIMIT failing with EFBIG (as ENOSPC would) instead of killing
# it: the limit and the ignored SIGXFSZ survive exec. Not a preexec_fn, which forks this test process (its gRPC
# threads started by earlier serving tests, whose fork handlers then run in the child): in one CI run that child
# printed only a gRPC poller error and exited without running the export.
DISK_FULL = f"""
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({FILE_SIZE_LIMIT}, {FILE_SIZE_LIMIT}))
os.execv(sys.argv[1], sys.argv[1:])
"""


@pytest.mark.slow
def test_an_export_that_runs_out_of_space_publishes_nothing_and_says_why(tmp_path):
    out = tmp_path / "mnist"
    out.mkdir()
    save_untrained_mnist(out / "model.keras", "default")  # ~1.5 MB of weights
    add_version(out / "serving", "mnist", 1, write_scaler(tmp_path / "scaler", 1.0))
    result = subprocess.run(
        [sys.executable, "-c", DISK_FULL, sys.executable, "-m", "projects.mnist", *EXPORT, "--output-dir", str(out)],
        cwd=REPO,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    said = result.stdout + result.stderr
    assert "File too large" in said or "No space" in said, said[-3000:]
    assert sorted(p.name for p in (out / "serving" / "mnist").iterdir()) == ["1"]  # nothing new, no staging left


def test_an_unreadable_version_is_reported_and_the_last_good_one_keeps_answering(tmp_path):
    add_version(tmp_path, "scaler", 1, write_scaler(tmp_path / "source", 3.0))
    events: list[str] = []
    with (
        ModelServer(tmp_path, rest_port=0, grpc_port=0, poll_seconds=0.05, report=events.append) as server,
        httpx.Client(base_url=server.rest_url, timeout=30) as client,
    ):
        broken = tmp_path / "scaler" / ".staging-2"
        broken.mkdir()
        (broken / "saved_model.pb").symlink_to("/proc/self/mem")  # a file whose every read fails (EIO), even as root
        (broken / "variables").mkdir()
        broken.rename(tmp_path / "scaler" / "2")
        assert wait_until(lambda: any("version 2 failed to load" in e for e in events)), events
        for _ in range(5):
            response = client.post("/v1/models/scaler:predict", json={"instances": [[1, 2, 3]]})
            assert response.status_code == 200 and response.json() == {"predictions": [[3.0, 6.0, 9.0]]}
        states = {s["version"]: s["state"] for s in client.get("/v1/models/scaler").json()["model_version_status"]}
        assert states["1"] == "AVAILABLE" and states.get("2") in (None, "END"), states

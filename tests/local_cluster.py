"""Several project processes at once on 127.0.0.1 (multi-worker training, distributed search), bounded in time."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass

from .conftest import REPO, project_env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Finished:
    returncode: int
    output: str  # stdout and stderr together


def run_together(name: str, args: list[str], envs: list[dict[str, str]], timeout: float) -> list[Finished]:
    """Start `python -m projects.<name> *args` once per entry of `envs` (added to the environment) and wait for all.

    All are killed if any is still running after `timeout` seconds, or as soon as one fails (a cluster with a
    dead member would otherwise wait for it until the timeout). Output goes to files, so no pipe fills up.
    """
    with ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile(mode="w+")) for _ in envs]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", f"projects.{name}", *args],
                cwd=REPO,
                env={**project_env(), **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for env, log in zip(envs, logs, strict=True)
        ]
        deadline = time.monotonic() + timeout
        try:
            while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
                if any(p.poll() not in (None, 0) for p in procs):
                    break
                time.sleep(0.5)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        finished = []
        for p, log in zip(procs, logs, strict=True):
            code = p.wait()
            log.seek(0)
            finished.append(Finished(code, log.read()))
        return finished

"""A description of the machine a benchmark ran on, and of the code and command, stored beside every figure."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Imported as a benchmark starts: other work on the machine slows every figure, so the load is kept from here on.
LOAD_AT_START = [round(x, 2) for x in os.getloadavg()]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


# The code as the benchmark starts: its own outputs (docs/images, results files) change the tree as it ends.
_COMMIT_AT_START = _git("rev-parse", "HEAD") or "unknown"
_DIRTY_AT_START = bool(_git("status", "--porcelain", "--untracked-files=no"))


def _program() -> str:
    """`python -m benchmarks.<name>` for a benchmark module run with -m, else the script as run."""
    script = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if script is not None and script.is_relative_to(REPO) and script.suffix == ".py":
        return "python -m " + ".".join(script.relative_to(REPO).with_suffix("").parts)
    return " ".join(sys.argv[:1]) or "python"


def provenance() -> dict[str, Any]:
    """The commit measured (and whether the tree had changes not committed, both as the benchmark started), the
    command, the load average."""
    return {
        "commit": _COMMIT_AT_START,
        "dirty": _DIRTY_AT_START,
        "command": " ".join([_program(), *sys.argv[1:]]),
        "load_average": {"start": LOAD_AT_START, "end": [round(x, 2) for x in os.getloadavg()]},
    }


def describe_machine() -> dict[str, Any]:
    """CPU model, core count, memory, Python and TensorFlow/Keras versions, and the run's `provenance`."""
    import keras
    import tensorflow as tf

    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": mem_gib,
        "gpu": ", ".join(d.name for d in tf.config.list_physical_devices("GPU")) or "none",
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        **provenance(),
    }

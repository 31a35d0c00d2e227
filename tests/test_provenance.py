"""Every benchmark figure can be traced: the results carry the commit, the command and the load average."""

from __future__ import annotations

import re
import subprocess
import sys

from benchmarks.machine import provenance

from .conftest import REPO


def test_provenance_names_the_commit_the_command_and_the_load():
    stamp = provenance()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert stamp["commit"] == head and re.fullmatch(r"[0-9a-f]{40}", head)
    assert isinstance(stamp["dirty"], bool)
    assert len(stamp["load_average"]["start"]) == len(stamp["load_average"]["end"]) == 3
    assert stamp["command"]


def test_a_benchmark_run_with_dash_m_is_named_as_such():
    script = REPO / "benchmarks" / "mnist.py"
    code = (
        f"import sys; sys.argv = [{str(script)!r}, '--preset', 'smoke']\n"
        "from benchmarks.machine import provenance; print(provenance()['command'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "python -m benchmarks.mnist --preset smoke", done.stderr

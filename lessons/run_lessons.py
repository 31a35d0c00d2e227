"""Execute the lessons in place, so they are committed with their outputs, stripped of what changes every run.

    .venv/bin/python lessons/run_lessons.py                        # every lesson
    .venv/bin/python lessons/run_lessons.py lessons/06_*.ipynb     # the ones named

Run it after editing a notebook, then commit the notebook: its plots show on the repository page and
tests/test_lessons.py runs it again. Each notebook runs in a fresh kernel with lessons/ as its working directory.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

LESSONS = Path(__file__).resolve().parent
# The longest any lesson may take; the budget is 3 minutes on 2 loaded cores, this leaves room for load.
TIMEOUT_S = 300
# Notebook-level metadata worth keeping: which kernel and language to open it with. The rest (Python's patch
# version, widget state, a kernel's id) changes from machine to machine and would make every rerun a diff.
KEPT_METADATA = ("kernelspec", "language_info", "colab")


def strip_volatile(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop what differs between two runs of the same code: timings, kernel ids, versions."""
    notebook.metadata = nbformat.NotebookNode(
        {key: value for key, value in notebook.metadata.items() if key in KEPT_METADATA}
    )
    if "language_info" in notebook.metadata:
        notebook.metadata.language_info = nbformat.NotebookNode({"name": "python"})
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
    return notebook


def execute(path: Path, timeout: int = TIMEOUT_S) -> nbformat.NotebookNode:
    """Run every cell of the notebook at `path` in a fresh kernel; raises CellExecutionError on the first error."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
        # TensorFlow's C++ start-up lines (no GPU, plugins registered twice) go to the terminal, not the notebook.
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
    )
    client.execute()
    return strip_volatile(notebook)


def main(paths: list[str]) -> int:
    """Run each notebook, write back the ones that pass; the exit status counts the ones that failed."""
    notebooks = [Path(p).resolve() for p in paths] or sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
    failed = 0
    for path in notebooks:
        start = time.perf_counter()
        try:
            notebook = execute(path)
        except CellExecutionError as error:  # leave the notebook as it was; show the failing cell
            failed += 1
            print(f"{path.name}: FAILED after {time.perf_counter() - start:.1f} s\n{error}", flush=True)
            continue
        nbformat.write(notebook, path)
        print(f"{path.name}: {time.perf_counter() - start:.1f} s", flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The lessons (lessons/*.ipynb): every notebook runs from top to bottom, its assertions included, and is committed
with its outputs and without the metadata that changes every run."""

from __future__ import annotations

import time

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from .conftest import REPO

LESSONS = sorted((REPO / "lessons").glob("[0-9][0-9]_*.ipynb"))
# Per notebook: the budget is 3 minutes on 2 cores; the rest is room for a loaded machine.
TIMEOUT_S = 300
# What lessons/run_lessons.py keeps; anything else at the notebook level is a machine's or a run's.
KEPT_METADATA = {"kernelspec", "language_info", "colab"}


def test_there_is_a_lesson_per_topic_in_roadmap_order():
    numbers = [int(path.name[:2]) for path in LESSONS]
    assert len(LESSONS) >= 13 and numbers == sorted(set(numbers)), [path.name for path in LESSONS]


@pytest.mark.parametrize("path", LESSONS, ids=[path.stem for path in LESSONS])
def test_committed_notebook_has_its_outputs_and_no_volatile_metadata(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert set(notebook.metadata) <= KEPT_METADATA, f"{path.name}: run lessons/run_lessons.py to strip it"
    assert notebook.metadata.get("language_info", {}).keys() <= {"name"}, path.name
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all("execution" not in cell.metadata for cell in code_cells), f"{path.name}: timings were kept"
    executed = [cell.execution_count for cell in code_cells if cell.execution_count is not None]
    assert executed == list(range(1, len(code_cells) + 1)), f"{path.name}: not run top to bottom in one go"
    outputs = [output for cell in code_cells for output in cell.outputs]
    assert any("image/png" in output.get("data", {}) for output in outputs), f"{path.name}: no plot committed"
    assert not [output for output in outputs if output.output_type == "error"], f"{path.name}: committed with an error"
    assert not [output for output in outputs if output.output_type == "stream" and output.name == "stderr"], (
        f"{path.name}: warnings or logs in the committed outputs"
    )
    assert path.stat().st_size < 600_000, f"{path.name}: outputs too large ({path.stat().st_size:,} bytes)"


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize("path", LESSONS, ids=[path.stem for path in LESSONS])
def test_lesson_runs_and_its_assertions_hold(path):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as error:  # the failing cell, its output and the traceback, as the notebook shows it
        pytest.fail(f"{path.name} failed after {time.perf_counter() - start:.0f} s:\n{error}", pytrace=False)

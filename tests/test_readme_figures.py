"""Every figure a README states can be traced to a committed results file, and that file to a commit.

A figure is a number with a unit of time, size, rate or share (`12 ms`, `3.4 MB`, `970 req/s`, `99.8%`,
`2.9x`), a number that follows a metric's name (`accuracy 0.992`, `FID 41.3`, `mAP@0.5 of 0.87`), or a
decimal number in a table. It is traced when some number of some file in benchmarks/results/ equals it at
the precision the README shows (as a share, a percentage; as bytes, KB/MB/MiB; as seconds, ms or minutes).
Numbers in fenced code blocks (example commands and what they print) and in image captions are examples,
not claims, and are not checked; the few prose figures that are not measurements are listed in `NOT_MEASURED`
with the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmarks.readme_tables import readmes, rewritten

from .conftest import REPO

RESULTS = REPO / "benchmarks" / "results"

# (README, the figure as written): why it is not a measurement.
NOT_MEASURED: dict[tuple[str, str], str] = {
    ("projects/mnist/README.md", "0.125"): "the step of a tuning search space, not a measurement",
    ("projects/driving/README.md", "99.9"): "the mean of the expert's five track_progress figures in driving.json",
    ("projects/driving/README.md", "6.6"): "the mean of the random policy's track_progress figures in driving.json",
    ("projects/detector/README.md", "65"): "detector.json's 913 s of training divided by its 14 epochs, as prose",
    ("projects/mnist/README.md", "0.97"): "the goal, which mnist_real_world.json holds as the text '>= 0.97'",
    ("serving/README.md", "16.6"): "a one-off cProfile of the server before its rewrite, told as prose",
    ("serving/README.md", "163"): "a one-off timing of the parser before the rewrite, told as prose",
}

# Results files measured before every file recorded its commit, command and load average; each leaves this set
# when its benchmark is run again (the test below fails while a listed file already has them).
MEASURED_BEFORE_STAMPS: set[str] = set()

UNIT = r"ms|s|sec|seconds?|min|minutes?|hours?|h|KB|KiB|MB|MiB|GB|GiB|%|x|×|req/s|requests/s|examples/s|images/s"
METRIC = r"accuracy|mAP(?:@[\d.:]+)?|FID|KID|perplexity|reward|F1|BLEU|hits@1|precision|recall|p50|p99|latency"
NUMBER = r"\d[\d,]*(?:\.\d+)?(?:e-?\d+)?"
WITH_UNIT = re.compile(rf"(?<![\w.@-])({NUMBER}) ?(?:{UNIT})(?![\w/])")
AFTER_METRIC = re.compile(rf"\b(?:{METRIC})\b[^\d\n|]{{0,20}}?(?<![\w.@-])({NUMBER})(?![\w.])", re.I)
TABLE_DECIMAL = re.compile(r"(?<![\w.@-])(\d[\d,]*\.\d+(?:e-?\d+)?|\d(?:\.\d+)?e-?\d+)(?![\w.])")
SCALES = (1, 100, 1e3, 1e-3, 1e-6, 1 / 1024, 1 / 2**20, 1 / 2**30, 1 / 60, 1 / 3600)


def _numbers(value: object) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return []


def _measured() -> list[float]:
    return sorted({x for path in RESULTS.glob("*.json") for x in _numbers(json.loads(path.read_text()))})


def _traced(figure: str, measured: list[float]) -> bool:
    """Whether some measured number, in some unit, rounds to `figure` at the precision it is written with."""
    text = figure.replace(",", "")
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2]) - int(exponent or 0)
    value, tolerance = float(text), 0.5 * 10.0**-decimals * (1 + 1e-9)
    return any(abs(x * scale - value) <= tolerance for x in measured for scale in SCALES)


def _claims(text: str) -> list[tuple[int, str]]:
    """(line number, figure) of every figure in a README's prose and tables, outside code blocks and images."""
    found, in_code = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code or line.lstrip().startswith("!["):
            continue
        line = re.sub(r"`[^`]*`|\[!\[.*?\]\(.*?\)\]\(.*?\)|\]\([^)]*\)|<!--.*?-->", " ", line)
        figures = [m[1] for pattern in (WITH_UNIT, AFTER_METRIC) for m in pattern.finditer(line)]
        if line.lstrip().startswith("|"):
            figures += [m[1] for m in TABLE_DECIMAL.finditer(line)]
        found += [(number, figure) for figure in dict.fromkeys(figures)]
    return found


def test_the_figure_finder_finds_figures_and_traces_them_at_their_precision():
    text = "It reaches 97.5% in 3.2 min.\n| a | 0.8712 | 1,515 s |\n```\nmake x  # 12 ms\n```\nFID of 41.3\n"
    assert _claims(text) == [(1, "97.5"), (1, "3.2"), (2, "1,515"), (2, "0.8712"), (6, "41.3")]
    assert _traced("97.5", [0.9751]) and _traced("1,515", [1515.2]) and _traced("3.2", [192.0])
    assert _traced("2.9e-2", [0.0291]) and _traced("859", [879_600.0])
    assert not _traced("97.5", [0.9761]) and not _traced("0.8712", [0.8715])


@pytest.mark.parametrize("readme", readmes(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_figure_in_a_readme_comes_from_a_results_file(readme: Path):
    measured, name = _measured(), str(readme.relative_to(REPO))
    untraced = [
        f"{name}:{line}: {figure}"
        for line, figure in _claims(readme.read_text())
        if (name, figure) not in NOT_MEASURED and not _traced(figure, measured)
    ]
    assert not untraced, "figures that no file in benchmarks/results/ holds:\n" + "\n".join(untraced)


def test_parity_tables_are_written_from_their_results_files():
    stale = [str(p.relative_to(REPO)) for p in readmes() if rewritten(p) != p.read_text()]
    assert not stale, f"run `python -m benchmarks.readme_tables`: the parity tables of {stale} differ from results"


def test_every_results_file_records_its_commit_command_and_load():
    stamped = set()
    for path in sorted(RESULTS.glob("*.json")):
        machine = json.loads(path.read_text()).get("machine", {})
        if re.fullmatch(r"[0-9a-f]{40}", str(machine.get("commit"))):
            assert machine["command"].startswith("python -m benchmarks."), path.name
            assert isinstance(machine["dirty"], bool) and len(machine["load_average"]["start"]) == 3, path.name
            stamped.add(path.name)
    unstamped = {p.name for p in RESULTS.glob("*.json")} - stamped
    assert unstamped == MEASURED_BEFORE_STAMPS, (
        f"not stamped but not listed: {sorted(unstamped - MEASURED_BEFORE_STAMPS)}; "
        f"stamped now, remove from the list: {sorted(MEASURED_BEFORE_STAMPS - unstamped)}"
    )

"""Parity: the same real test inputs through Keras and every exported format, compared.

For each format: the largest absolute difference of any float output to Keras's,
the share of final answers (a classifier's class) that agree with Keras's, the
project's metric on the test split, and the file size. Float formats must match
Keras within `FLOAT_TOLERANCE` (or the project's `float_tolerance`); quantized ones
within the project's documented bound (`Project.quantized_tolerance`). A project
may measure the difference its own way (`Project.output_distance`), and may require
every answer to equal Keras's (`Project.exact_answers`: the chatbot's greedy replies), except
in a format with a metric bound of its own (`ExportPlan.metric_bounds`), which it is held to instead.
The result goes to `parity.json` and `parity.md`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.project import Project

FLOAT_TOLERANCE = Project.float_tolerance  # unless a project sets its own

Arrays = dict[str, np.ndarray]  # named arrays, batch first: a format's inputs or outputs


@dataclass
class ParityRow:
    """One format's result. `error` is set when it could not be converted or run."""

    format: str
    path: str
    size_bytes: int | None = None
    max_abs_diff: float | None = None
    agreement: float | None = None
    metric: float | None = None
    bound: float | None = None
    seconds: float | None = None  # converting and running it over the examples
    metric_gap: float | None = None  # |metric - Keras's metric|
    metric_bound: float | None = None  # the largest metric_gap allowed (`ExportPlan.metric_bounds`); None: any
    error: str | None = None

    @property
    def within_bound(self) -> bool:
        return _within(asdict(self))

    @property
    def ok(self) -> bool:
        return self.error is None and self.within_bound

    @property
    def problem(self) -> str | None:
        """What went wrong, in one line, or None."""
        if self.error:
            return f"{self.format} failed: {self.error.splitlines()[0]}"
        if not _within({**asdict(self), "bound": None}):
            return (
                f"{self.format} broke its bound: its metric differs from Keras's by {self.metric_gap:.3g} "
                f"> {self.metric_bound:.3g}"
            )
        if not self.within_bound:
            return f"{self.format} broke its bound: max|diff| {self.max_abs_diff:.3g} > {self.bound:.3g}"
        return None


def _within(row: dict[str, Any]) -> bool:
    """A parity.json row's distance within its `bound`, and its metric within `metric_bound` of Keras's (when set)."""
    close = row["bound"] is None or (row["max_abs_diff"] is not None and row["max_abs_diff"] <= row["bound"])
    gap, most = row.get("metric_gap"), row.get("metric_bound")
    return close and (most is None or (gap is not None and gap <= most))


def in_batches(predict: Callable[[Arrays], Arrays], inputs: Arrays, batch_size: int | None = 256) -> Arrays:
    """Run `predict` over `inputs` in slices of `batch_size` (None: all at once) and concatenate the outputs."""
    n = len(next(iter(inputs.values())))
    batch_size = batch_size or n
    parts = [predict({k: v[i : i + batch_size] for k, v in inputs.items()}) for i in range(0, n, batch_size)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def write(rows: list[ParityRow], summary: dict[str, Any], json_path: Path, md_path: Path) -> None:
    """parity.json (`summary` plus one entry per format) and parity.md (the same as a table)."""
    document = {**summary, "ok": all(r.ok for r in rows), "formats": [asdict(r) for r in rows]}
    json_path.write_text(json.dumps(document, indent=2))
    lines = [
        f"# {summary['project']}: export parity",
        "",
        f"{summary['examples']} test examples ({summary['data_source']}) through Keras and every format. "
        f"Float formats must match Keras within {summary['float_tolerance']:g}; "
        "quantized ones within the project's bound. "
        f"SavedModel: `{summary['savedmodel']}`.",
        "",
        *table(document),
    ]
    md_path.write_text("\n".join(lines) + "\n")


def table(document: dict[str, Any]) -> list[str]:
    """The lines of parity.md's table, from a parity.json document (what a README quotes)."""
    lines = [
        f"| format | size | max abs diff to Keras | bound | answers agreeing | {document['metric']} | ok |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in document["formats"]:
        if r["error"]:
            lines.append(f"| {r['format']} | | | | | | failed: {r['error'].splitlines()[0]} |")
            continue
        within = _within(r)
        size = f"{r['size_bytes'] / 1024:,.0f} KB" if r["size_bytes"] is not None else ""
        bound = f"{r['bound']:g}" if r["bound"] is not None else ""
        if r.get("metric_bound") is not None:
            bound += f"{'; ' if bound else ''}{document['metric']} within {r['metric_bound']:g}"
        agreement = f"{r['agreement']:.2%}" if r["agreement"] is not None else ""
        lines.append(
            f"| {r['format']} | {size} | {r['max_abs_diff']:.2e} | {bound} | {agreement} | {r['metric']:.4f} | "
            f"{'yes' if within else '**no**'} |"
        )
    return lines

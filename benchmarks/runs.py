"""What every project benchmark does: run a preset end to end in a fresh folder, and record the figures.

`run_preset` runs `python -m projects.<name> all` (train, then evaluate) and `export` as a user would and
returns its report, with the preset's expected result (its `Expected`, from the project's config.py)
beside what was measured; the export's parity.json goes to `benchmarks/results/<name>_parity.json`, which the
README's parity table is written from (`python -m benchmarks.readme_tables`). `optimized` trains (or takes) a
model and runs `optimize` on it, for the compression benchmarks; `optimize_benchmark` is the whole command line of
one that writes `<name>.json` with its goals judged. `write_results` stores a benchmark's figures
with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import registry
from common.runtime import quiet_tensorflow

from .machine import describe_machine

RESULTS_DIR = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parent.parent


def run_preset(project: str, preset: str, out: Path, *overrides: str, export: bool = True) -> dict[str, Any]:
    """One fresh `python -m projects.<project> all --preset <preset>` into `out`: its report.json, plus
    `wall_seconds` and `load_average` (before and after: other work on a shared machine slows training).
    With `export`, then the export of the trained model, whose parity.json is written to
    `benchmarks/results/<project>_parity.json` (the README's parity table quotes it).

    `overrides`: extra `--set key=value` arguments. Exits if `out` holds a resumable run (a benchmark trains from
    scratch); raises CalledProcessError if the run fails.
    """
    if (out / "checkpoints" / "backup").exists():
        sys.exit(f"error: {out} holds a resumable run; a benchmark trains from scratch: choose an empty folder")
    load_before = os.getloadavg()
    start = time.perf_counter()
    command = [sys.executable, "-m", f"projects.{project}", "all", "--preset", preset, "--output-dir", str(out)]
    for override in overrides:
        command += ["--set", override]
    subprocess.run(command, cwd=REPO, check=True)
    report = json.loads((out / "report.json").read_text())
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    report["load_average"] = {
        "before": [round(x, 2) for x in load_before],
        "after": [round(x, 2) for x in os.getloadavg()],
    }
    report["expected"] = expected_versus_measured(project, preset, report)
    if export:
        command[3] = "export"
        subprocess.run(command, cwd=REPO, check=True)
        parity = json.loads((out / "parity.json").read_text())
        write_results(f"{project}_parity", {"benchmark": f"{project} export parity", "preset": preset, **parity})
    return report


def expected_versus_measured(project: str, preset: str, report: dict[str, Any]) -> dict[str, Any]:
    """The preset's expected figures (the goal) beside the run's, printed and returned for the results file.

    `report`: a report.json with "metrics" and "wall_seconds" (or "train_seconds").
    """
    expected = registry.config_module(project).PRESETS[preset].expected
    measured = report["metrics"].get(expected.metric)
    minutes = (report.get("wall_seconds") or report.get("train_seconds") or 0) / 60
    row = {
        "metric": expected.metric,
        "expected": expected.value,
        "measured": measured,
        "met": measured is not None and expected.met_by(float(measured)),
        "expected_minutes": expected.minutes,
        "measured_minutes": round(minutes, 1),
    }
    shown = "not reported" if measured is None else f"{float(measured):.4g}"
    print(
        f"{project} {preset}: {expected.metric} {shown} (expected {expected.describe()}; "
        f"{'met' if row['met'] else 'NOT met'}), {minutes:.1f} min"
    )
    return row


def write_results(name: str, result: dict[str, Any], keep_other_keys: bool = False) -> Path:
    """Write `benchmarks/results/<name>.json`: `result` plus today's date and the machine.

    `keep_other_keys`: keep keys of the existing file that `result` lacks (figures another benchmark merges in).
    """
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    stamped = {**result, "date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": describe_machine()}
    previous = json.loads(path.read_text()) if keep_other_keys and path.exists() else {}
    path.write_text(json.dumps({**stamped, **{k: v for k, v in previous.items() if k not in stamped}}, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def run_command(project: str, command: str, preset: str, out: Path, overrides: list[str] = ()) -> float:
    """`python -m projects.<project> <command> --preset <preset> --set ...` into `out`; its wall seconds.

    Raises:
        subprocess.CalledProcessError: the command failed.
    """
    sets = [arg for item in overrides for arg in ("--set", item)]
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", f"projects.{project}", command, "--preset", preset, *sets, "--output-dir", str(out)],
        cwd=REPO,
        check=True,
    )
    return round(time.perf_counter() - start, 1)


def optimized(
    project: str, preset: str, model: Path | None, train_command: str, overrides: list[str] = ()
) -> dict[str, Any]:
    """Train `preset` with `train_command` (or copy the trained `model`), then `optimize` it, in a temporary folder.

    Returns:
        {"summary": optimize.json, "table": optimize.md's text, "train_seconds" (None with `model`),
        "optimize_seconds"}.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if model:
            shutil.copy(model, out / "model.keras")
            train_seconds = None
        else:
            train_seconds = run_command(project, train_command, preset, out, overrides)
        optimize_seconds = run_command(project, "optimize", preset, out, overrides)
        return {
            "summary": json.loads((out / "optimize" / "optimize.json").read_text()),
            "table": (out / "optimize" / "optimize.md").read_text(),
            "train_seconds": train_seconds,
            "optimize_seconds": optimize_seconds,
        }


def optimize_benchmark(
    project: str,
    benchmark: str,
    goals: dict[str, float],
    figures: Callable[[dict[str, dict]], dict[str, float]],
    description: str,
    preset: str = "default",
) -> None:
    """The command line of a compression benchmark: train the preset (`preset` unless `--preset`; or take
    `--model`), `optimize` it, judge each of `figures(optimize.json's models)` against its upper limit in `goals`,
    and write benchmarks/results/<project>_optimize.json with the optimize table (another `--preset`:
    <project>_optimize_<preset>.json). `benchmark` says what was measured."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--preset", default=preset)
    parser.add_argument("--model", type=Path, help="a trained model.keras of this preset (skips training)")
    args = parser.parse_args()
    quiet_tensorflow()

    outcome = optimized(project, args.preset, args.model, "train")
    summary = outcome["summary"]
    measured = figures(summary["models"])
    judged = {key: {"goal": f"<= {limit}", "met": measured[key] <= limit} for key, limit in goals.items()}
    result = {
        "benchmark": benchmark,
        "preset": args.preset,
        **measured,
        "goals": judged,
        "train_wall_seconds": outcome["train_seconds"],
        "optimize_wall_seconds": outcome["optimize_seconds"],
        "data": summary["data"],
        "settings": summary["optimize"],
        "layers": {"pruned": len(summary["prunable_layers"]), "quantized": len(summary["quantized_layers"])},
        "models": summary["models"],
        "table": outcome["table"],
    }
    write_results(f"{project}_optimize" + ("" if args.preset == preset else f"_{args.preset}"), result)
    for key, value in measured.items():
        print(f"{key}: {value} (goal {judged[key]['goal']}: {'met' if judged[key]['met'] else 'NOT met'})")

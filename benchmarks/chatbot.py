"""Measure the chatbot's default preset against a unigram baseline and the GRU baseline, on the same data.

- the default preset end to end (`python -m projects.chatbot all`): validation perplexity and its
  ratio to a unigram model of the same split, token accuracy, BLEU and distinct-n on test replies;
- the `gru` preset (a GRU encoder-decoder with attention, same data, epochs and schedule) the same way.

Run: `make project=chatbot bench` (or `python -m benchmarks.chatbot`). Writes benchmarks/results/chatbot.json
(the figures of the default preset at the top level; the README quotes them). The machine is described
beside the figures, with its load average, since the CPU may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from common.paths import DEFAULT_ARTIFACTS

from .machine import describe_machine
from .runs import expected_versus_measured

RESULTS = Path(__file__).parent / "results" / "chatbot.json"
REPO = Path(__file__).resolve().parent.parent
RUNS = DEFAULT_ARTIFACTS / "chatbot" / "benchmark"


def run_preset(preset: str) -> dict:
    """One fresh `python -m projects.chatbot all --preset <preset>` run; its report plus wall-clock seconds."""
    out = RUNS / preset
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "projects.chatbot", "all", "--preset", preset, "--output-dir", str(out)],
        cwd=REPO,
        check=True,
    )
    report = json.loads((out / "report.json").read_text())
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    report["expected"] = expected_versus_measured("chatbot", preset, report)
    return report


def reuse_run(preset: str) -> dict:
    """The report of an earlier `run_preset(preset)`, with the wall-clock seconds the results file recorded for it."""
    report = json.loads((RUNS / preset / "report.json").read_text())
    earlier = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    earlier = earlier if preset == "default" else earlier.get("gru_baseline") or {}
    return report | {"wall_seconds": earlier.get("wall_seconds")}


def figures(report: dict) -> dict:
    """The headline figures of one run, rounded.

    `bleu` is of greedy replies; `distinct_1`/`distinct_2` of replies decoded the preset's way (`decode.strategy`,
    nucleus sampling by default), with the greedy ones beside them as `distinct_*_greedy`.
    """
    metrics = report["metrics"]
    strategy = report["config"]["decode"]["strategy"]
    suffix = "" if strategy == "greedy" else f"_{strategy}"
    out = {k: round(metrics[k], 4) for k in ("perplexity", "unigram_perplexity", "perplexity_ratio", "token_accuracy")}
    out |= {
        "bleu": round(metrics["bleu"], 2),
        f"bleu{suffix}": round(metrics[f"bleu{suffix}"], 2),
        "distinct_1": round(metrics[f"distinct_1{suffix}"], 4),
        "distinct_2": round(metrics[f"distinct_2{suffix}"], 4),
        "distinct_1_greedy": round(metrics["distinct_1"], 4),
        "distinct_2_greedy": round(metrics["distinct_2"], 4),
        "decoding_for_distinct": strategy,
    }
    return out | {"train_seconds": report["train_seconds"], "wall_seconds": report.get("wall_seconds")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-baseline", action="store_true", help="only the default preset")
    parser.add_argument("--reuse-runs", action="store_true", help=f"read the reports already in {RUNS}, train nothing")
    args = parser.parse_args()
    machine = describe_machine() | {"load_average_before": os.getloadavg()}
    if args.reuse_runs and RESULTS.exists():  # the machine and load of the runs, not of now
        machine = json.loads(RESULTS.read_text())["machine"]
    run = reuse_run if args.reuse_runs else run_preset
    default = run("default")
    baseline = None if args.skip_baseline else run("gru")
    result = {
        "benchmark": "chatbot end to end (train + evaluate), default preset against unigram and GRU baselines",
        "preset": "default",
        "data": default["data"],
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": machine if "load_average_after" in machine else machine | {"load_average_after": os.getloadavg()},
        **figures(default),
        "decoding": default["config"]["decode"],
        "gru_baseline": figures(baseline) if baseline else None,
        "samples": default["metrics"]["tables"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("machine", "data", "samples")}, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

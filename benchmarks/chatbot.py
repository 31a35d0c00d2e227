"""Measure the chatbot end to end: the dual encoder's hits@1 of 20 against TF-IDF, perplexity against a unigram
model, and every decoding strategy's replies.

- a preset end to end (`python -m projects.chatbot all --preset <preset>`, `default` unless `--preset`):
  hits@1 of 20 on held-out conversations for the dual encoder and for a scikit-learn TF-IDF cosine baseline on
  the same candidates (the goal: at least twice TF-IDF's), validation perplexity and its ratio to a unigram
  model, BLEU and distinct-n of each strategy's test replies, and its replies to 20 everyday prompts;
- optionally the `gru` preset (a GRU encoder-decoder, same data and schedule) the same way (`--baseline`).

Run: `make project=chatbot bench` (or `python -m benchmarks.chatbot [--preset quick]`). Writes
benchmarks/results/chatbot.json with the machine, the command and the load average before and after each run,
since the CPU may be shared.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common.paths import DEFAULT_ARTIFACTS

from .runs import run_preset, write_results

RUNS = DEFAULT_ARTIFACTS / "chatbot" / "benchmark"
STRATEGIES = ("greedy", "top_k", "nucleus", "beam", "retrieve", "rerank")


def figures(report: dict) -> dict:
    """The headline figures of one run, rounded: retrieval against TF-IDF, perplexity, and each strategy's."""
    metrics = report["metrics"]
    out = {k: round(metrics[k], 4) for k in ("hits_at_1_of_20", "tfidf_hits_at_1_of_20")}
    out["hits_over_tfidf"] = round(metrics["hits_at_1_of_20"] / max(metrics["tfidf_hits_at_1_of_20"], 1e-9), 2)
    out["goal_twice_tfidf_met"] = out["hits_over_tfidf"] >= 2
    out |= {k: round(metrics[k], 4) for k in ("perplexity", "unigram_perplexity", "perplexity_ratio", "token_accuracy")}
    out["strategies"] = {
        name: {
            key: round(metrics[f"{key}_{name}"], 4)
            for key in ("bleu", "distinct_1", "distinct_2", "mean_reply_words")
            if f"{key}_{name}" in metrics
        }
        for name in STRATEGIES
    }
    keys = ("train_seconds", "wall_seconds", "load_average", "expected")
    return out | {k: report.get(k) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", help="the preset measured (default: default)")
    parser.add_argument("--baseline", action="store_true", help="also run the gru preset")
    parser.add_argument("--runs", type=Path, default=RUNS, help=f"where the runs are written (default: {RUNS})")
    args = parser.parse_args()
    report = run_preset("chatbot", args.preset, args.runs / args.preset)
    result = {
        "benchmark": "chatbot end to end (train + evaluate): dual encoder against TF-IDF, generator against unigram",
        "preset": args.preset,
        "data": report["data"],
        **figures(report),
        "config": report["config"],
        "gru_baseline": (
            figures(run_preset("chatbot", "gru", args.runs / "gru", export=False)) if args.baseline else None
        ),
        "samples": report["metrics"]["tables"],
    }
    path = write_results("chatbot", result)
    print({k: v for k, v in result.items() if k not in ("data", "samples", "config", "strategies")})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Measure the chatbot end to end: the dual encoder's hits@1 of 20 against TF-IDF, perplexity against a unigram
model, and every decoding strategy's replies.

- a preset end to end (`python -m projects.chatbot all --preset <preset>`, `default` unless `--preset`):
  hits@1 of 20 on held-out conversations for the dual encoder and for a scikit-learn TF-IDF cosine baseline on
  the same candidates (the goal: at least twice TF-IDF's), validation perplexity and its ratio to a unigram
  model, BLEU and distinct-n of each strategy's test replies, and its replies to 20 everyday prompts;
- optionally the `gru` preset (a GRU encoder-decoder, same data and schedule) the same way (`--baseline`);
- optionally (`--pretraining`) the preset fine-tuned from the masked-language-pretrained encoder against the preset
  from scratch at the same CPU budget: the pretrained run's pretraining plus training seconds, and as many whole
  epochs from scratch as fill at least that time (so scratch never gets less); perplexity and hits@1 of each.

Run: `make project=chatbot bench` (or `python -m benchmarks.chatbot [--preset quick]`). Writes
benchmarks/results/chatbot.json with the machine, the command and the load average before and after each run,
since the CPU may be shared.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from common.paths import DEFAULT_ARTIFACTS

from .runs import run_preset, write_results

RUNS = DEFAULT_ARTIFACTS / "chatbot" / "benchmark"
STRATEGIES = ("greedy", "top_k", "nucleus", "beam", "retrieve", "rerank")


def figures(report: dict) -> dict:
    """The headline figures of one run, rounded: retrieval against TF-IDF, perplexity, and each strategy's."""
    metrics = report["metrics"]
    keys = (
        "hits_at_1_of_20",
        "uncapped_hits_at_1_of_20",
        "dense_hits_at_1_of_20",
        "lexical_hits_at_1_of_20",
        "tfidf_hits_at_1_of_20",
    )
    out = {k: round(metrics[k], 4) for k in keys}
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


def pretraining_comparison(preset: str, runs: Path, report: dict) -> dict:
    """Pretrained (MLM, then `train.epochs` of fine-tuning) against scratch given at least the same training time;
    `report` is the preset's own run, the pretrained arm when the preset starts from the pretrained encoder."""
    from common.config import make_config
    from projects.chatbot.config import CONFIG, PRESETS

    cfg = make_config(CONFIG, PRESETS, preset)
    epochs = cfg.train.epochs
    if cfg.model.weights == "pretrained":
        pretrained, pretrained_dir = report, runs / preset
    else:
        pretrained_dir = runs / "pretrained"
        pretrained = run_preset("chatbot", preset, pretrained_dir, "model.weights=pretrained", export=False)
    pretraining = json.loads((pretrained_dir / "pretrain" / "pretrain.json").read_text())
    budget = pretraining["train_seconds"] + pretrained["train_seconds"]
    scratch_epochs = math.ceil(budget / (pretrained["train_seconds"] / epochs))
    scratch = run_preset(
        "chatbot", preset, runs / "scratch", f"train.epochs={scratch_epochs}", "model.weights=none", export=False
    )
    keys = ("perplexity", "hits_at_1_of_20", "token_accuracy")
    row = {
        "pretrained": {k: round(pretrained["metrics"][k], 4) for k in keys}
        | {
            "pretrain_seconds": pretraining["train_seconds"],
            "pretrain_val_token_accuracy": pretraining["val_token_accuracy"],
            "fine_tune_epochs": epochs,
            "fine_tune_seconds": pretrained["train_seconds"],
            "total_seconds": round(budget, 1),
            "load_average": pretrained["load_average"],
        },
        "scratch": {k: round(scratch["metrics"][k], 4) for k in keys}
        | {
            "epochs": scratch_epochs,
            "total_seconds": scratch["train_seconds"],
            "load_average": scratch["load_average"],
        },
    }
    row["pretrained_wins"] = (
        row["pretrained"]["perplexity"] < row["scratch"]["perplexity"]
        and row["pretrained"]["hits_at_1_of_20"] > row["scratch"]["hits_at_1_of_20"]
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", help="the preset measured (default: default)")
    parser.add_argument("--baseline", action="store_true", help="also run the gru preset")
    parser.add_argument(
        "--pretraining", action="store_true", help="also compare MLM-pretrained and scratch at the same budget"
    )
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
        "pretraining": pretraining_comparison(args.preset, args.runs, report) if args.pretraining else None,
        "samples": report["metrics"]["tables"],
    }
    path = write_results("chatbot", result)
    print({k: v for k, v in result.items() if k not in ("data", "samples", "config", "strategies")})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

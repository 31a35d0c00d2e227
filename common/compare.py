"""Compare runs that differ in one config key: `python -m projects.<name> compare --vary key=v1,v2,...`.

One training per value, each in its own folder (`<output-dir>/compare/<key>=<value>/`, so a killed comparison
resumes where it stopped and a finished run is not trained again), then one figure of the overlaid learning
curves and a table of what each value reached (`compare.png`, `compare.md`, `compare.json` in
`<output-dir>/compare/<key>/`). Values are separated by commas; a value that itself holds commas (a tuple key such
as `model.hidden=64,32`) is written with `|` between the values instead: `--vary "model.hidden=64|64,32"`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import ConfigError, apply_overrides
from common.paths import ArtifactPaths


@dataclass
class Variant:
    """One value of the varied key: its config and where its run is written."""

    value: str
    cfg: Any
    paths: ArtifactPaths


def parse_vary(text: str) -> tuple[str, list[str]]:
    """`key=v1,v2` (or `key=v1|v2`) -> (key, [v1, v2]).

    Raises:
        ConfigError: no `=`, fewer than two values, or a value given twice.
    """
    if "=" not in text:
        raise ConfigError(f"--vary expects key=value1,value2,..., got {text!r}")
    key, values_text = (part.strip() for part in text.split("=", 1))
    values = [v.strip() for v in values_text.split("|" if "|" in values_text else ",")]
    if len(values) < 2 or "" in values:
        raise ConfigError(f"--vary {key}= needs two or more values separated by commas, e.g. {key}=a,b; got {text!r}")
    if len(set(values)) < len(values):
        raise ConfigError(f"--vary {key}= lists a value twice: {values}")
    return key, values


def make_variants(cfg: Any, key: str, values: list[str], output_root: Path) -> list[Variant]:
    """A copy of `cfg` per value with `key` set to it (checked now, before any training), and its run folder.

    Raises:
        ConfigError: `key` is not a config key, or a value is not valid for it.
    """
    variants = []
    for value in values:
        variant_cfg = apply_overrides(copy.deepcopy(cfg), [f"{key}={value}"])
        folder = output_root / "compare" / f"{key}={value}".replace("/", "_")
        variants.append(Variant(value, variant_cfg, ArtifactPaths(folder, folder / "serving")))
    return variants


def _history(path: Path) -> dict[str, list[float]]:
    from common.plots import read_history

    return read_history(path) if path.exists() else {}


def write_comparison(key: str, variants: list[Variant], monitor: tuple[str, str], out_dir: Path) -> dict:
    """The overlaid curves (compare.png), the table (compare.md) and the numbers (compare.json) of the runs.

    Args:
        monitor: the project's (metric, "max" or "min") that picks the best epoch, e.g. ("val_accuracy", "max").
    Returns:
        The content of compare.json: per value, the best monitored value, its epoch, the last training loss and
        the training time.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric, mode = monitor
    pick = max if mode == "max" else min
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    panels = [metric, "loss"]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6))
    for variant in variants:
        history = _history(variant.paths.history_csv)
        if not history:
            print(f"warning: {variant.paths.history_csv} does not exist: no curves for {key}={variant.value}")
        summary = json.loads(variant.paths.train_summary.read_text()) if variant.paths.train_summary.exists() else {}
        values = history.get(metric, [])
        best = pick(values) if values else None
        rows.append(
            {
                "value": variant.value,
                f"best_{metric}": best,
                "best_epoch": values.index(best) + 1 if values else None,
                "epochs": len(history.get("loss", [])),
                "final_loss": history["loss"][-1] if history.get("loss") else None,
                "train_seconds": summary.get("train_seconds"),
                "run": str(variant.paths.root),
            }
        )
        for axis, name in zip(axes, panels, strict=True):
            if history.get(name):
                axis.plot(range(1, len(history[name]) + 1), history[name], marker=".", label=f"{key}={variant.value}")
    for axis, name in zip(axes, panels, strict=True):
        axis.set(title=name, xlabel="epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "compare.png", dpi=110)
    plt.close(fig)

    result = {"key": key, "monitor": metric, "mode": mode, "runs": rows}
    (out_dir / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "compare.md").write_text(_table(result))
    return result


def _table(result: dict) -> str:
    metric = result["monitor"]

    def number(value: float | None, spec: str) -> str:
        return "" if value is None else format(value, spec)

    lines = [
        f"# {result['key']}: {', '.join(r['value'] for r in result['runs'])}",
        "",
        f"Best {metric} ({result['mode']}) over the epochs of each run; curves in compare.png.",
        "",
        f"| {result['key']} | best {metric} | at epoch | epochs | final loss | train seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['value']} | {number(r[f'best_{metric}'], '.4f')} | {r['best_epoch'] or ''} | {r['epochs']} | "
            f"{number(r['final_loss'], '.4f')} | {number(r['train_seconds'], '.1f')} |"
        )
    return "\n".join(lines) + "\n"

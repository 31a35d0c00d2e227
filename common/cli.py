"""One command line for every project: `python -m projects.<name> <command> [options]`.

Commands:
  train     train the model (resumes a killed run), write model.keras and train.json
  evaluate  evaluate model.keras on the test split, write report.json, report.md and plots
  all       train, then evaluate
  predict   predict the files given as arguments with model.keras
  config    print every config key of the chosen preset, with its value

The config is validated before TensorFlow is imported: an unknown preset, key
or a value of the wrong type exits with code 2 and a message listing what is valid.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from common.config import ConfigError, apply_json, apply_overrides, describe, make_config, to_dict
from common.paths import ArtifactPaths

COMMANDS = ("train", "evaluate", "all", "predict", "config")


def build_parser(name: str, presets: dict[str, Any], default_preset: str) -> argparse.ArgumentParser:
    """The argument parser; the epilog lists the presets with the first line of their docstrings."""
    preset_help = "\n".join(f"  {p:8s} {(fn.__doc__ or '').strip().splitlines()[0]}" for p, fn in presets.items())
    parser = argparse.ArgumentParser(
        prog=f"python -m projects.{name}",
        description=__doc__.split("\n\n")[1],
        epilog=f"presets:\n{preset_help}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("inputs", nargs="*", help="files for `predict`")
    parser.add_argument("--preset", default=default_preset, help=f"one of: {', '.join(presets)}")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.epochs=3 (repeatable)",
    )
    parser.add_argument("--config", type=Path, help="JSON file of config keys to apply before --set")
    parser.add_argument("--output-dir", type=Path, help=f"where artifacts go (default artifacts/{name}/)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    return parser


def parse(name: str, argv: list[str] | None) -> tuple[argparse.Namespace, Any]:
    """Parse `argv` and build the config; exits with code 2 on any config error."""
    config_module = importlib.import_module(f"projects.{name}.config")
    presets = config_module.PRESETS
    parser = build_parser(name, presets, config_module.DEFAULT_PRESET)
    args = parser.parse_args(argv)
    try:
        cfg = make_config(presets, args.preset)
        if args.config:
            apply_json(cfg, args.config)
        apply_overrides(cfg, args.overrides)
    except ConfigError as err:
        parser.error(str(err))
    if args.command == "predict" and not args.inputs:
        parser.error("predict needs at least one input file, e.g. predict digit.png")
    return args, cfg


def _train(project: Any, cfg: Any, paths: ArtifactPaths) -> None:
    data = project.load_data(cfg)
    print(f"Data: {data.source}, " + ", ".join(f"{k} {v}" for k, v in data.sizes.items()))
    project.train(cfg, data, paths)
    print(f"Model written to {paths.model}")


def _evaluate(project: Any, args: argparse.Namespace, cfg: Any, paths: ArtifactPaths) -> dict:
    from common.evaluation import write_report

    model = load_trained_model(project.name, paths)
    data = project.load_data(cfg)
    metrics, plot_paths = project.evaluate(cfg, model, data, paths)
    summary = json.loads(paths.train_summary.read_text()) if paths.train_summary.exists() else {}
    report = {
        "project": project.name,
        "preset": args.preset,
        "data": data.describe(),
        "metrics": metrics,
        "train_seconds": summary.get("train_seconds"),
        "plots": plot_paths,
        "config": to_dict(cfg),
    }
    write_report(paths, report)
    headline = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    print(f"Test: {headline}\nReport: {paths.report_md}")
    return report


def load_trained_model(name: str, paths: ArtifactPaths):
    """Load `model.keras`, or exit with the command that creates it."""
    import keras

    if not paths.model.exists():
        sys.exit(f"error: no trained model at {paths.model}; run `make project={name} train` first")
    return keras.models.load_model(paths.model)


def main(name: str, argv: list[str] | None = None) -> None:
    """Entry point of `python -m projects.<name>`."""
    args, cfg = parse(name, argv)
    if args.command == "config":
        print(describe(cfg))
        return

    from common.runtime import quiet_tensorflow

    quiet_tensorflow(args.verbose)
    project = importlib.import_module(f"projects.{name}.project").PROJECT
    paths = ArtifactPaths.for_project(name, args.output_dir)

    if args.command in ("train", "all"):
        _train(project, cfg, paths)
    if args.command in ("evaluate", "all"):
        _evaluate(project, args, cfg, paths)
    if args.command == "predict":
        failed = project.predict(cfg, load_trained_model(name, paths), args.inputs)
        if failed:
            sys.exit(f"error: {failed} of {len(args.inputs)} inputs could not be read")

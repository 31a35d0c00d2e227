"""One command line for every project: `python -m projects.<name> <command> [options]`.

Commands:
  train     train the model (resumes a killed run), write model.keras and train.json
  evaluate  evaluate model.keras on the test split, write report.json, report.md and plots
  export    export model.keras: a SavedModel version for serving, TF Lite, TF.js, ONNX; parity.json checks them
  all       train, then evaluate
  predict   predict the files given as arguments with model.keras
  demo      serve the browser demo (TF.js) on 127.0.0.1, exporting first if needed
  tune      search hyperparameters with keras-tuner (resumes a killed search), write tuning/best.json
  optimize  prune and quantization-aware train model.keras, compare TF Lite sizes, accuracy, latency
  coreml    convert the latest exported SavedModel to Core ML (.mlpackage); running it needs macOS
  compare   train once per value of one key (--vary key=v1,v2,...): overlaid curves and a table
  config    print every config key of the chosen preset, with its value

A project may add commands of its own (the chatbot's `chat`, say): its config
module's `COMMANDS` maps each name to a line of help, and its `Project.run_command`
carries them out.

The config is validated before TensorFlow is imported: an unknown preset, key
or a value of the wrong type exits with code 2 and a message listing what is valid.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from common import registry
from common.config import ConfigError, Preset, apply_json, apply_overrides, describe, make_config, to_dict
from common.paths import ArtifactPaths

COMMANDS = ("train", "evaluate", "export", "all", "predict", "demo", "tune", "optimize", "coreml", "compare", "config")


def build_parser(
    name: str, presets: dict[str, Preset], default_preset: str, extra_commands: dict[str, str] | None = None
) -> argparse.ArgumentParser:
    """The argument parser; the epilog lists the presets with their summaries and expected results.

    `extra_commands`: the project's own commands beside `COMMANDS`, by name, with a line of help each.
    """
    extra_commands = extra_commands or {}
    preset_help = "\n".join(f"  {p:8s} {preset.describe()}" for p, preset in presets.items())
    project_help = "".join(f"\n  {c:9s} {text}" for c, text in extra_commands.items())
    description = __doc__.split("\n\n")[1] + (f"\n\n{name}'s own commands:{project_help}" if project_help else "")
    parser = argparse.ArgumentParser(
        prog=f"python -m projects.{name}",
        description=description,
        epilog=f"presets:\n{preset_help}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=(*COMMANDS, *extra_commands))
    parser.add_argument("inputs", nargs="*", help="files for `predict` (or arguments of a project's own command)")
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
    parser.add_argument(
        "--vary",
        metavar="KEY=V1,V2,...",
        help="for `compare`: the key to vary and its values, e.g. --vary train.learning_rate=1e-3,3e-3",
    )
    parser.add_argument(
        "--formats",
        metavar="NAME,...",
        help="for `export`: only these formats beside the SavedModel, e.g. --formats tflite_int8,onnx (default: all)",
    )
    parser.add_argument("--output-dir", type=Path, help=f"where artifacts go (default artifacts/{name}/)")
    parser.add_argument("--port", type=int, default=8080, help="port of the `demo` server on 127.0.0.1")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    return parser


def parse(name: str, argv: list[str] | None) -> tuple[argparse.Namespace, Any]:
    """Parse `argv` and build the config; exits with code 2 on any config error."""
    config_module = registry.config_module(name)
    presets = config_module.PRESETS
    parser = build_parser(name, presets, config_module.DEFAULT_PRESET, getattr(config_module, "COMMANDS", None))
    args = parser.parse_args(argv)
    try:
        cfg = make_config(config_module.CONFIG, presets, args.preset)
        if args.config:
            apply_json(cfg, args.config)
        apply_overrides(cfg, args.overrides)
    except ConfigError as err:
        parser.error(str(err))
    if args.command == "predict" and not args.inputs:
        parser.error("predict needs at least one input file, e.g. predict digit.png")
    if (args.command == "compare") != bool(args.vary):
        parser.error(
            "--vary KEY=V1,V2,... goes with `compare` (and `compare` needs it), e.g. "
            "compare --vary train.learning_rate=1e-3,3e-3"
        )
    if args.vary:
        from common.compare import make_variants, parse_vary

        try:
            make_variants(cfg, *parse_vary(args.vary), Path("."))  # every value checked before TensorFlow loads
        except ConfigError as err:
            parser.error(str(err))
    if args.command in ("tune", "optimize") and not hasattr(cfg, args.command):
        section = {"tune": "TuneConfig", "optimize": "OptimizeConfig"}[args.command]
        parser.error(
            f"{name}'s config has no `{args.command}` section: add `{args.command}: {section} = "
            f"field(default_factory={section})` to its config dataclass (as projects/mnist/config.py does)"
        )
    return args, cfg


def config_error(name: str, message: str) -> NoReturn:
    """Exit with code 2 and `message`, as argparse does for a bad config (for errors found after parsing)."""
    sys.stderr.write(f"python -m projects.{name}: error: {message}\n")
    sys.exit(2)


def _train(project: Any, cfg: Any, paths: ArtifactPaths) -> bool:
    """Train; True on the process that wrote the model (every run but a multi-worker one's non-chief workers)."""
    strategy = None
    if getattr(getattr(cfg, "train", None), "strategy", "default") != "default":
        from common.training import make_strategy

        strategy = make_strategy(cfg.train.strategy)  # multi-worker: before any other TensorFlow op
    data = project.load_data(cfg)
    print(f"Data: {data.source}, " + ", ".join(f"{k} {v}" for k, v in data.sizes.items()))
    project.train(cfg, data, paths)
    if strategy is not None:
        from common.training import is_chief

        if not is_chief(strategy):
            return False
    print(f"Model written to {paths.model}")
    return True


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


def _export(project: Any, args: argparse.Namespace, cfg: Any, paths: ArtifactPaths) -> None:
    from common.export import FORMAT_NAMES, export_project

    only = args.formats.split(",") if args.formats else None
    unknown = sorted(set(only or ()) - set(FORMAT_NAMES))
    if unknown:
        config_error(project.name, f"--formats: unknown {', '.join(unknown)}; choose from {', '.join(FORMAT_NAMES)}")
    model = load_trained_model(project.name, paths)
    result = export_project(project, cfg, model, project.load_data(cfg), paths, verbose=args.verbose, only=only)
    if result.problems:
        sys.exit("error: export: " + "; ".join(result.problems))


def _demo(project: Any, args: argparse.Namespace, cfg: Any, paths: ArtifactPaths) -> None:
    from common.web_demo import serve, write_samples

    tfjs = paths.export_dir / "tfjs"
    if not (tfjs / "model.json").exists():
        print("No TF.js model yet: exporting first.")
        _export(project, args, cfg, paths)
    write_samples(project, cfg, paths)
    serve(project.name, "127.0.0.1", args.port, paths.root.parent, {project.name: tfjs})


def _tune(project: Any, args: argparse.Namespace, cfg: Any, paths: ArtifactPaths) -> None:
    from common.tuning import search_space, tune_project

    try:
        space = search_space(project, cfg)
    except ConfigError as err:
        config_error(project.name, str(err))
    tune_project(project, cfg, space, project.load_data(cfg), paths, args.preset)


def _optimize(project: Any, args: argparse.Namespace, cfg: Any, paths: ArtifactPaths) -> None:
    from common.export.tools import ConversionError
    from common.keras2_bridge import BridgeError
    from common.optimize import optimize_project

    model = load_trained_model(project.name, paths)
    try:
        optimize_project(project, cfg, model, project.load_data(cfg), paths, verbose=args.verbose)
    except (BridgeError, ConversionError) as err:
        sys.exit(f"error: optimize: {err}")


def _coreml(project: Any, paths: ArtifactPaths) -> None:
    from common.export.coreml import CoreMLError, convert, latest_savedmodel

    try:
        savedmodel = latest_savedmodel(paths.serving_root / project.serving_name)
    except FileNotFoundError as err:
        sys.exit(f"error: {err}; run `make project={project.name} export` first")
    out = paths.export_dir / f"{project.name}.mlpackage"
    print(f"Converting {savedmodel} to Core ML")
    try:
        interface = convert(savedmodel, out)
    except CoreMLError as err:
        sys.exit(f"error: coreml: {err}")
    print(f"Core ML: {out} ({interface['bytes'] / 1024:,.0f} KB)")
    print(f"  inputs:  {', '.join(f'{k} {v}' for k, v in interface['inputs'].items())}")
    print(f"  outputs: {', '.join(interface['outputs'])}")
    print("Running it needs macOS: coremltools.models.MLModel(path).predict({...}) on a Mac.")


def _compare(project: Any, args: argparse.Namespace, cfg: Any, paths: ArtifactPaths) -> None:
    from common.compare import make_variants, parse_vary, write_comparison

    key, values = parse_vary(args.vary)
    variants = make_variants(cfg, key, values, paths.root)
    for number, variant in enumerate(variants, 1):
        print(f"Run {number} of {len(variants)}: {key}={variant.value} -> {variant.paths.root}")
        if variant.paths.model.exists() and variant.paths.train_summary.exists():
            print("  already trained: kept")
            continue
        variant.paths.root.mkdir(parents=True, exist_ok=True)
        _train(project, variant.cfg, variant.paths)
    out_dir = paths.root / "compare" / key
    write_comparison(key, variants, project.monitor, out_dir)
    print((out_dir / "compare.md").read_text() + f"Curves: {out_dir / 'compare.png'}")


def require_trained_model(name: str, paths: ArtifactPaths) -> None:
    """Exit with the command that creates `model.keras` if it does not exist."""
    if not paths.model.exists():
        sys.exit(f"error: no trained model at {paths.model}; run `make project={name} train` first")


def load_trained_model(name: str, paths: ArtifactPaths):
    """Load `model.keras` in Keras's safe mode, or exit with the command that creates it.

    A file that safe mode refuses (a Lambda layer holding Python code, which loading would run) is not loaded:
    no model this project trains needs it, so such a file did not come from `train`.
    """
    import keras

    require_trained_model(name, paths)
    try:
        return keras.models.load_model(paths.model, safe_mode=True)
    except ValueError as err:
        if "safe_mode" not in str(err):
            raise
        sys.exit(
            f"error: refused to load {paths.model}: it holds Python code that loading would run "
            f"({str(err).split('.')[0]}). No model that `make project={name} train` writes needs that: "
            "train again, or load the file yourself with safe_mode=False only if you trust where it came from"
        )


def main(name: str, argv: list[str] | None = None) -> None:
    """Entry point of `python -m projects.<name>`."""
    args, cfg = parse(name, argv)
    if args.command == "config":
        print(describe(cfg))
        return

    paths = ArtifactPaths.for_project(name, args.output_dir)
    if args.command in ("evaluate", "export", "predict"):
        require_trained_model(name, paths)  # before the seconds TensorFlow takes to import

    from common.runtime import quiet_tensorflow, set_op_threads

    quiet_tensorflow(args.verbose)
    set_op_threads(getattr(cfg.train, "intra_op_threads", 0))  # a project's config may set it (the GAN's does)
    project = registry.load(name)
    try:
        _run(project, args, cfg, paths)
    except ConfigError as err:  # a bad value found once the data or model is in hand
        config_error(name, str(err))


def _run(project: Any, args: argparse.Namespace, cfg: Any, paths: ArtifactPaths) -> None:
    """Carry out `args.command` (after the config is checked and TensorFlow imported)."""
    wrote_model = True
    if args.command in ("train", "all"):
        wrote_model = _train(project, cfg, paths)
    if args.command == "evaluate" or (args.command == "all" and wrote_model):
        _evaluate(project, args, cfg, paths)
    if args.command == "tune":
        _tune(project, args, cfg, paths)
    if args.command == "optimize":
        _optimize(project, args, cfg, paths)
    if args.command == "export":
        _export(project, args, cfg, paths)
    if args.command == "coreml":
        _coreml(project, paths)
    if args.command == "demo":
        _demo(project, args, cfg, paths)
    if args.command == "compare":
        _compare(project, args, cfg, paths)
    if args.command not in COMMANDS:
        project.run_command(args.command, cfg, paths, args)
    if args.command == "predict":
        failed = project.predict(cfg, load_trained_model(project.name, paths), args.inputs)
        if failed:
            sys.exit(f"error: {failed} of {len(args.inputs)} inputs could not be read")

"""Hyperparameter search with keras-tuner over a project's search space of config keys.

A search space maps dotted config keys to their candidate values: a list is a
choice, {"min": a, "max": b} a range ("step" for integers, "log": true to sample
on a log scale). A trial is the project's config with those keys set, built by
`Project.build_model` and trained as `train` trains (same optimizer, schedule,
augmentation) for at most `tune.max_epochs` epochs. A project trained in a loop of
its own (the GAN, the diffusion model) trains each trial with `Project.tune_trial`
in the trial's folder, `search/trial_<id>/execution<k>/`, and returns its scores
(FID), ranked by `Project.tune_objective`. `tune_project` writes, under `tuning/`:
- search/: keras-tuner's state; rerunning the same command resumes a killed search;
- results.json, results.md and trials.png: every trial's values and score, best first;
- best.json: the best trial's keys, for `train --config tuning/best.json` on the same preset.

Distributed search: start the same command once as the chief and once per worker,
with KERASTUNER_TUNER_ID=chief (then tuner0, tuner1, ...), KERASTUNER_ORACLE_IP and
KERASTUNER_ORACLE_PORT set to the chief's address. The chief hands out trials and
writes the results; the workers train.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras_tuner as kt

from common import plots
from common.config import ConfigError, TuneConfig, iter_keys, set_value
from common.data.splits import DataSplits
from common.paths import ArtifactPaths
from common.project import Project
from common.training import batched, make_optimizer, steps_per_epoch

if TYPE_CHECKING:
    import keras

Space = dict[str, list | dict]
RANGE_KEYS = {"min", "max", "step", "log"}


def _as_text(value: Any) -> str:
    """A value as `--set` would spell it: lists as "16,32", booleans as true/false."""
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def _get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _typed(cfg: Any, key: str, value: Any) -> Any:
    """`value` parsed as config `key`'s type (e.g. 0 -> 0.0 for a float key); ConfigError if it does not fit."""
    probe = copy.deepcopy(cfg)
    set_value(probe, key, _as_text(value))
    return _get(probe, key)


def _check_entry(cfg: Any, key: str, spec: Any) -> None:
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"search space: {key} has an empty list of values")
        for value in spec:
            _typed(cfg, key, value)
        return
    if not isinstance(spec, dict) or not {"min", "max"} <= set(spec) or set(spec) - RANGE_KEYS:
        raise ConfigError(
            f"search space: {key} = {spec!r}; give a list of values or a range "
            '{"min": a, "max": b} (optional "step", "log")'
        )
    low, high = _typed(cfg, key, spec["min"]), _typed(cfg, key, spec["max"])
    if isinstance(low, bool) or not isinstance(low, int | float):
        raise ConfigError(f"search space: {key} is not a number; give its values as a list")
    if not low < high or (spec.get("log") and low <= 0):
        raise ConfigError(f"search space: {key} needs min < max (and min > 0 with log), got {spec!r}")


def validate_space(cfg: Any, space: Space) -> Space:
    """Check every key is a config key and every value fits its type and choices; returns `space`.

    Raises:
        ConfigError: the first bad entry, named, e.g. "search space: unknown config key 'model.widht'; valid keys: ...".
    """
    if not space:
        raise ConfigError(
            "the search space is empty: override Project.search_space, or pass "
            '--set tune.space=space.json holding e.g. {"train.learning_rate": {"min": 1e-4, "max": 1e-2, "log": true}}'
        )
    for key, spec in space.items():
        try:
            _check_entry(cfg, key, spec)
        except ConfigError as err:
            message = str(err)
            raise ConfigError(message if message.startswith("search space") else f"search space: {message}") from None
    return space


def trains_own_trials(project: Project) -> bool:
    """Whether `project` trains its trials in a loop of its own (it overrides `Project.tune_trial`)."""
    return type(project).tune_trial is not Project.tune_trial


def objective(project: Project) -> tuple[str, str]:
    """What the trials are ranked by: (name, "min" or "max"), the project's `tune_objective`, else its `monitor`."""
    return project.tune_objective or project.monitor


def search_space(project: Project, cfg: Any) -> Space:
    """The space to search: the JSON file `tune.space` if set, else the project's own; validated, and the algorithm
    checked against it and the project."""
    if cfg.tune.algorithm == "hyperband" and trains_own_trials(project):
        raise ConfigError(
            f"tune.algorithm=hyperband carries a trial's Keras weights into its next round, and {project.name} "
            "trains its trials in a loop of its own: use --set tune.algorithm=random (or bayesian, or grid), "
            "whose trials each train tune.max_epochs epochs"
        )
    space = project.search_space(cfg) if not cfg.tune.space else _read_space(cfg.tune.space)
    space = validate_space(cfg, space)
    unstepped = [k for k, spec in space.items() if isinstance(spec, dict) and "step" not in spec]
    if cfg.tune.algorithm == "grid" and unstepped:
        raise ConfigError(
            f"tune.algorithm=grid needs a step for every range, to list its values; these have none: {unstepped} "
            '(add "step" in a --set tune.space=space.json, or use tune.algorithm=random)'
        )
    return space


def _read_space(path: str) -> Space:
    """The search space in the JSON file at `path`."""
    try:
        space = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read the search space {path}: {err}") from None
    if not isinstance(space, dict):
        raise ConfigError(f"search space {path}: expected a JSON object of config keys")
    return space


class TrialConfigError(ConfigError, kt.errors.FatalError):
    """A bad config found inside a trial: it stops the search (keras-tuner would record a failed trial and go on to
    the next, which fails alike), and the command line exits with code 2 and its message."""


def _trial_dir(callbacks: list) -> Path:
    """The running trial's folder in keras-tuner's state, `search/trial_<id>/`, from the callback holding the tuner
    and the trial that keras-tuner adds to those it passes to `HyperModel.fit`."""
    for callback in callbacks:
        tuner, trial = getattr(callback, "tuner", None), getattr(callback, "trial", None)
        if tuner is not None and trial is not None:
            return Path(tuner.get_trial_dir(trial.trial_id))
    raise RuntimeError("keras-tuner passed HyperModel.fit no callback holding the trial (keras-tuner 1.4 does)")


class ConfigHyperModel(kt.HyperModel):
    """keras-tuner's view of a project: a trial's hyperparameters are config keys, its model `build_model`'s,
    trained by `fit` or, for a project with a loop of its own, by `Project.tune_trial`."""

    def __init__(self, project: Project, cfg: Any, space: Space, data: DataSplits) -> None:
        super().__init__(name=project.name)
        self.project, self.cfg, self.space, self.data = project, cfg, space, data
        self.own_loop = trains_own_trials(project)
        self.executions: Counter[Path] = Counter()  # own loop: the executions of each trial begun by this process

    def trial_config(self, hp: kt.HyperParameters) -> Any:
        """The config with every key of the space set from `hp` (declaring the hyperparameters on first use)."""
        trial = copy.deepcopy(self.cfg)
        trial.train.epochs = self.cfg.tune.max_epochs  # the learning-rate schedule spans the longest trial
        for key, spec in self.space.items():
            if isinstance(spec, list):
                values = [_typed(self.cfg, key, v) for v in spec]
                value = hp.Choice(key, [_as_text(v) if isinstance(v, tuple) else v for v in values])
            else:
                sampling = "log" if spec.get("log") else "linear"
                low = _typed(self.cfg, key, spec["min"])
                high = _typed(self.cfg, key, spec["max"])
                if isinstance(low, int):
                    value = hp.Int(key, low, high, step=spec.get("step", 1), sampling=sampling)
                else:
                    value = hp.Float(key, low, high, step=spec.get("step"), sampling=sampling)
            set_value(trial, key, _as_text(value))
        return trial

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """The trial's model, compiled as `train` compiles it; uncompiled for a project with its own loop, whose
        `tune_trial` builds what it trains (keras-tuner only checks that `build` returns a Keras model)."""
        trial = self.trial_config(hp)
        model = self.project.build_model(trial)
        if self.own_loop:
            return model
        model.compile(
            optimizer=make_optimizer(trial.train, steps_per_epoch(self.data, trial.train.batch_size)),
            loss=self.project.loss(trial),
            loss_weights=self.project.loss_weights(trial),
            metrics=self.project.metrics(trial),
        )
        return model

    def fit(
        self, hp: kt.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any
    ) -> keras.callbacks.History | dict[str, float]:
        """Train on the training split, batched as the trial's config says, and validate on the val split; or, for a
        project with its own loop, `own_trial`'s scores."""
        trial = self.trial_config(hp)
        if self.own_loop:
            return self.own_trial(trial, kwargs.get("callbacks", []))
        tcfg = trial.train
        augment, pairs = self.project.augmentation(trial), self.project.augment_pairs(trial)
        train = batched(self.data.train, tcfg.batch_size, shuffle_seed=tcfg.seed, augment=augment, augment_pairs=pairs)
        val = batched(self.data.val, tcfg.batch_size)
        return model.fit(train, *args, validation_data=val, shuffle=False, **kwargs)  # the pipeline shuffles

    def own_trial(self, trial: Any, callbacks: list) -> dict[str, float]:
        """`Project.tune_trial` for execution k of the running trial, in `search/trial_<id>/execution<k>/` and seeded
        with `train.seed + k`, so that executions differ and a retried trial resumes each from its own backup.

        Raises:
            TrialConfigError: the trial's config does not work (e.g. a DiffAugment policy of `tune.space`).
            keras_tuner.errors.FailedTrialError: the objective is not finite (e.g. training diverged); the search
                goes on.
        """
        trial_dir = _trial_dir(callbacks)
        execution = self.executions[trial_dir]
        self.executions[trial_dir] += 1
        trial.train.seed += execution
        folder = trial_dir / f"execution{execution}"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            scores = {k: float(v) for k, v in self.project.tune_trial(trial, self.data, ArtifactPaths(folder)).items()}
        except ConfigError as err:
            raise TrialConfigError(str(err)) from None
        name = objective(self.project)[0]
        if name in scores and not math.isfinite(scores[name]):
            raise kt.errors.FailedTrialError(f"{name} is {scores[name]}: the trial broke down; see {folder}")
        return scores


def tuner_role() -> str:
    """This process's part in the search: "chief" or "worker" when distributed (KERASTUNER_* set), else "alone"."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "alone"
    return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"


def make_tuner(
    hypermodel: ConfigHyperModel, tcfg: TuneConfig, monitor: tuple[str, str], directory: Path, seed: int
) -> kt.Tuner:
    """The keras-tuner tuner named by `tcfg.algorithm`, keeping its state in `directory/search`."""
    common = {
        "objective": kt.Objective(monitor[0], direction=monitor[1]),
        "executions_per_trial": tcfg.executions_per_trial,
        "directory": str(directory),
        "project_name": "search",
        "overwrite": tcfg.overwrite and tuner_role() != "worker",  # only one process may wipe a shared folder
        "seed": seed,
    }
    if tcfg.algorithm == "hyperband":
        return kt.Hyperband(hypermodel, max_epochs=tcfg.max_epochs, factor=tcfg.factor, **common)
    if tcfg.algorithm == "bayesian":
        return kt.BayesianOptimization(hypermodel, max_trials=tcfg.max_trials, **common)
    if tcfg.algorithm == "grid":  # every combination in order, up to max_trials (ranges need a step)
        return kt.GridSearch(hypermodel, max_trials=tcfg.max_trials, **common)
    return kt.RandomSearch(hypermodel, max_trials=tcfg.max_trials, **common)


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def trial_rows(tuner: kt.Tuner, cfg: Any, space: Space) -> list[dict[str, Any]]:
    """Every finished trial, best first: {"trial", "score", "epochs", "status", "values": {key: value}}."""
    rows = []
    for trial in tuner.oracle.trials.values():
        if trial.score is None:
            continue
        values = trial.hyperparameters.values
        rows.append(
            {
                "trial": trial.trial_id,
                "score": float(trial.score),
                "epochs": int(values.get("tuner/epochs", cfg.tune.max_epochs)),
                "status": trial.status,
                "values": {k: _json_value(_typed(cfg, k, values[k])) for k in space if k in values},
            }
        )
    maximize = tuner.oracle.objective.direction == "max"
    return sorted(rows, key=lambda r: r["score"], reverse=maximize)


def tune_project(project: Project, cfg: Any, space: Space, data: DataSplits, paths: ArtifactPaths, preset: str) -> Path:
    """Search `space`, then (unless this process is a distributed search's worker) write the results.

    Returns the path of best.json (written by the chief, or by a search run alone).
    """
    tcfg: TuneConfig = cfg.tune
    out = paths.tuning
    out.mkdir(parents=True, exist_ok=True)
    tuner = make_tuner(ConfigHyperModel(project, cfg, space, data), tcfg, objective(project), out, cfg.train.seed)
    role = tuner_role()
    print(f"Tuning {project.name} ({tcfg.algorithm}, {role}): {', '.join(space)}; state in {out / 'search'}")
    start = time.perf_counter()
    tuner.search(epochs=tcfg.max_epochs, verbose=2 if os.environ.get("CI") else 1)
    best_json = out / "best.json"
    if role == "worker":
        print(f"Tuner {os.environ['KERASTUNER_TUNER_ID']} finished its trials; the chief writes the results.")
        return best_json

    rows = trial_rows(tuner, cfg, space)
    if not rows:
        raise RuntimeError(f"no trial of the search in {out / 'search'} finished; see the errors above")
    best = rows[0]
    best_json.write_text(json.dumps(best["values"], indent=2) + "\n")
    monitor, direction = objective(project)
    rerun = f"python -m projects.{project.name} train --preset {preset} --config {best_json}"
    results = {
        "project": project.name,
        "preset": preset,
        "algorithm": tcfg.algorithm,
        "objective": {"name": monitor, "direction": direction},
        "tune": {k.split(".", 1)[1]: v for k, v, _ in iter_keys(cfg) if k.startswith("tune.")},
        "space": space,
        "data": data.describe(),
        "search_seconds": round(time.perf_counter() - start, 1),
        "best": best,
        "train_with_best": rerun,
        "trials": rows,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    chart = plots.tuning_trials(
        sorted(rows, key=lambda r: r["trial"]), list(space), monitor, direction == "max", out / "trials.png"
    )
    (out / "results.md").write_text(render_markdown(results, chart.name))
    print(f"Best {monitor} {best['score']:.4f}: {json.dumps(best['values'])}\nResults: {out / 'results.md'}")
    print(f"Train with it: {rerun}")
    return best_json


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    if value == "":
        return '""'  # an empty string (the GAN's train.diff_augment: none), not a missing value
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def render_markdown(results: dict[str, Any], chart: str) -> str:
    """results.md: the search in a sentence, then one row per trial, best first."""
    keys = list(results["space"])
    objective = results["objective"]["name"]
    lines = [
        f"# {results['project']}: hyperparameter search",
        "",
        f"{results['algorithm']} over {', '.join(f'`{k}`' for k in keys)} on the `{results['preset']}` preset, "
        f"{len(results['trials'])} trials in {results['search_seconds']:.0f} s, best {objective} "
        f"{results['best']['score']:.4f}. Train with the best: `{results['train_with_best']}`.",
        "",
        f"| rank | trial | {objective} | epochs | " + " | ".join(keys) + " |",
        "|---" * (4 + len(keys)) + "|",
    ]
    for rank, row in enumerate(results["trials"], 1):
        values = " | ".join(_cell(row["values"].get(k, "")) for k in keys)
        lines.append(f"| {rank} | {row['trial']} | {row['score']:.4f} | {row['epochs']} | {values} |")
    lines += ["", f"![trials]({chart})", ""]
    return "\n".join(lines)

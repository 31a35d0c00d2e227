"""Dataclass configs, presets and `--set key=value` overrides.

A project's config is a dataclass whose fields are themselves dataclasses
(`data`, `model`, `train`, ...); its defaults are the `default` preset. Every
other preset is a `Preset`: the dotted keys it changes, in view, and the result
it is expected to reach (`Expected`: metric, value, minutes on 2 CPU cores),
which `make bench` prints beside what it measured. Overrides address fields
with dotted keys (`train.epochs=3`) and are type-checked against the
annotations, so a typo fails before any work starts.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config key, value or preset that does not exist or does not parse."""


def choice(default: str, choices: tuple[str, ...], doc: str = "") -> Any:
    """A string field restricted to `choices`, checked when overridden."""
    if default not in choices:
        raise ValueError(f"default {default!r} not in {choices}")
    return dataclasses.field(default=default, metadata={"choices": choices, "doc": doc})


def bounded(default: float, low: float | None = None, high: float | None = None, *, inclusive: bool = True) -> Any:
    """A number field that must lie in [low, high] (in (low, high) when not `inclusive`), checked when overridden."""
    bounds = (low, high, inclusive)
    _check_bounds("default", default, bounds)
    return dataclasses.field(default=default, metadata={"bounds": bounds})


def _check_bounds(key: str, value: float, bounds: tuple[float | None, float | None, bool]) -> None:
    low, high, inclusive = bounds
    too_low = low is not None and (value < low if inclusive else value <= low)
    too_high = high is not None and (value > high if inclusive else value >= high)
    if too_low or too_high:
        left, right = ("[", "]") if inclusive else ("(", ")")
        interval = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        ends = "" if inclusive else ", ends excluded"
        raise ConfigError(f"bad value for {key}: {value!r}; it must be in {interval}{ends}")


def iter_keys(cfg: Any, prefix: str = "") -> Iterator[tuple[str, Any, dataclasses.Field]]:
    """Yield (dotted key, current value, field) for every leaf field of `cfg`."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from iter_keys(value, key + ".")
        else:
            yield key, value, f


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean (use true or false)")


def _coerce(text: str, annotation: Any) -> Any:
    """Parse `text` into the type named by `annotation` (bool, int, float, str, tuples)."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        (item_type, *_rest) = typing.get_args(annotation)
        parts = [p for p in text.split(",") if p.strip()]
        return tuple(_coerce(p.strip(), item_type) for p in parts)
    if annotation is bool:
        return _parse_bool(text)
    if annotation is int:
        return int(text)
    if annotation is float:
        return float(text)
    if annotation is str:
        return text
    raise ValueError(f"cannot parse values of type {annotation}")


def set_value(cfg: Any, key: str, text: str) -> None:
    """Set the dotted `key` of `cfg` from its string form, type-checked.

    Raises:
        ConfigError: unknown key (the message lists the valid ones), a value
            that does not parse as the field's type, or one outside its choices.
    """
    *parents, leaf = key.split(".")
    node = cfg
    for part in parents:
        child = getattr(node, part, None)
        if not dataclasses.is_dataclass(child):
            node = None
            break
        node = child
    fields = {f.name: f for f in dataclasses.fields(node)} if node is not None else {}
    if leaf not in fields or dataclasses.is_dataclass(getattr(node, leaf)):
        valid = ", ".join(k for k, _, _ in iter_keys(cfg))
        raise ConfigError(f"unknown config key {key!r}; valid keys: {valid}")
    annotation = typing.get_type_hints(type(node))[leaf]
    try:
        value = _coerce(text, annotation)
    except ValueError as err:
        raise ConfigError(f"bad value for {key}: {err}") from None
    choices = fields[leaf].metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"bad value for {key}: {value!r}; choose one of {', '.join(choices)}")
    if "bounds" in fields[leaf].metadata:
        _check_bounds(key, value, fields[leaf].metadata["bounds"])
    setattr(node, leaf, value)


def apply_overrides(cfg: Any, overrides: list[str]) -> Any:
    """Apply `key=value` strings to `cfg` in order and return it."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        set_value(cfg, key.strip(), text.strip())
    return cfg


def apply_json(cfg: Any, path: Path) -> Any:
    """Apply a JSON file of {"dotted.key": value} (or nested dicts) to `cfg`."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from None

    def flatten(obj: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
        for k, v in obj.items():
            if isinstance(v, dict):
                yield from flatten(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    for key, value in flatten(raw):
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        set_value(cfg, key, text)
    return cfg


@dataclasses.dataclass(frozen=True)
class Expected:
    """What a preset reaches, as measured: `metric` (a key of the report's metrics) near `value`, in about
    `minutes` of a run on 2 CPU cores. `higher_is_better` says which side of `value` is a pass for `bench`."""

    metric: str
    value: float
    minutes: float
    higher_is_better: bool = True

    def describe(self) -> str:
        """E.g. "accuracy >= 0.994 in ~4.5 min on 2 cores"."""
        side = ">=" if self.higher_is_better else "<="
        return f"{self.metric} {side} {self.value:g} in ~{self.minutes:g} min on 2 cores"

    def met_by(self, measured: float) -> bool:
        """Whether `measured` reaches the expected value."""
        return measured >= self.value if self.higher_is_better else measured <= self.value


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named config: the dataclass defaults with `changes` ({dotted key: value}) applied, and what it reaches."""

    summary: str  # one line, shown by --help
    expected: Expected
    changes: dict[str, Any] = dataclasses.field(default_factory=dict)

    def describe(self) -> str:
        """The summary and the expected result, e.g. for --help."""
        return f"{self.summary} (expected: {self.expected.describe()})"


def _as_text(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def make_config(config_class: type, presets: dict[str, Preset], preset: str) -> Any:
    """`config_class()` with the changes of `presets[preset]`, checked like --set; or fail listing the presets."""
    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(presets)}")
    cfg = config_class()
    for key, value in presets[preset].changes.items():
        set_value(cfg, key, _as_text(value))
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as a nested JSON-ready dict."""
    return dataclasses.asdict(cfg)


def describe(cfg: Any) -> str:
    """One line per key with its value and, where declared, its choices."""
    lines = []
    for key, value, f in iter_keys(cfg):
        extra = f" ({'|'.join(f.metadata['choices'])})" if "choices" in f.metadata else ""
        lines.append(f"  {key} = {value!r}{extra}")
    return "\n".join(lines)


@dataclasses.dataclass
class TrainConfig:
    """How to train: shared by every project that uses `fit`."""

    epochs: int = 10  # passes over the training split
    batch_size: int = 128  # global batch size (split across replicas)
    optimizer: str = choice("adam", ("sgd", "momentum", "rmsprop", "adam", "nadam", "adamw"))
    learning_rate: float = 1e-3  # peak learning rate of the schedule
    momentum: float = 0.9  # for sgd with momentum and rmsprop
    weight_decay: float = 0.0  # decoupled weight decay (adamw)
    schedule: str = choice("constant", ("constant", "step", "cosine", "one_cycle"))
    warmup_epochs: float = 0.0  # linear warm-up before cosine / one_cycle
    step_epochs: int = 5  # step schedule: multiply the rate by step_gamma every step_epochs
    step_gamma: float = 0.5
    early_stopping_patience: int = 0  # epochs without improvement before stopping; 0 = off
    seed: int = 42  # seeds Python, NumPy and TensorFlow
    strategy: str = choice("default", ("default", "mirrored", "multiworker"))


@dataclasses.dataclass
class TuneConfig:
    """How `tune` searches with keras-tuner: over the project's search space (`Project.search_space`) or `space`."""

    algorithm: str = choice("hyperband", ("hyperband", "random", "bayesian", "grid"))
    max_epochs: int = bounded(10, 1)  # epochs of the longest trial (hyperband), of every trial (the others)
    max_trials: int = bounded(20, 1)  # random, bayesian, grid: configs to try (hyperband sets its own, see factor)
    factor: int = bounded(3, 2)  # hyperband: each round keeps the best 1/factor, trained factor times longer
    executions_per_trial: int = bounded(1, 1)  # trainings per config, averaged: less noise, more time
    space: str = ""  # JSON file {"dotted.key": [values] or {"min": a, "max": b, "log": true}}; "" = the project's
    overwrite: bool = False  # start afresh instead of resuming the search kept in tuning/search/


@dataclasses.dataclass
class OptimizeConfig:
    """How `optimize` compresses the trained model: magnitude pruning, then quantization-aware training."""

    target_sparsity: float = bounded(0.5, 0.0, 1.0, inclusive=False)  # share of prunable weights set to zero
    prune_epochs: int = bounded(4, 1)  # fine-tuning epochs; sparsity ramps up over all but the last
    dense_block: int = bounded(4, 1)  # dense kernels lose runs of this many weights at once (gzip packs runs)
    qat_epochs: int = bounded(2, 1)  # quantization-aware fine-tuning epochs
    learning_rate: float = bounded(2e-4, 0.0, inclusive=False)  # Adam's rate for both fine-tunings
    latency_runs: int = bounded(200, 1)  # batch-1 TF Lite calls timed per model (the median is reported)

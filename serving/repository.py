"""The model repository on disk, TF Serving's layout: `<root>/<model>/<version>/saved_model.pb`, `<root>/models.config`.

A version is a folder whose name is an integer and which holds `saved_model.pb`.
Exports write a version under a temporary name and rename it when complete, so
a folder with any other name (`.staging-x1y2`, `3.tmp`) or without
`saved_model.pb` yet is never served.

`models.config` is a `ModelServerConfig` text proto, the file the
tensorflow/serving container reads:

    model_config_list {
      config {
        name: "mnist"
        base_path: "/models/mnist"
        model_platform: "tensorflow"
        model_version_policy { latest { num_versions: 2 } }   # or: all {}, specific { versions: 1 versions: 3 }
        version_labels { key: "stable" value: 1 }
      }
    }

Its base paths are the container's (`/models/<model>`, where docker-compose.yml
mounts the repository); here they map back into the repository. Without a
models.config every model folder is served with the latest-version policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

CONFIG_NAME = "models.config"
CONTAINER_ROOT = PurePosixPath("/models")  # where serving/docker-compose.yml mounts the repository
SAVED_MODEL = "saved_model.pb"

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_VERSION = re.compile(r"[0-9]{1,18}")


class RepositoryError(ValueError):
    """models.config cannot be used; the message names the file, the problem and the fix."""


def is_model_name(name: str) -> bool:
    """True for names of letters, digits, `_`, `.` and `-` (not first), at most 128: never a path."""
    return _MODEL_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class ModelConfig:
    """One served model: where its versions are, which of them to serve, and the labels that name versions."""

    name: str
    base_path: Path  # on this machine
    policy: str = "latest"  # latest | all | specific (TF Serving's model_version_policy)
    num_versions: int = 1  # latest: how many of the newest versions
    versions: tuple[int, ...] = ()  # specific: which versions
    labels: dict[str, int] = field(default_factory=dict)  # e.g. {"stable": 1, "canary": 2}

    def candidates(self, available: Iterable[int]) -> list[int]:
        """The versions this policy may serve out of those ready on disk, newest first (see `limit`)."""
        ready = sorted(available, reverse=True)
        return [v for v in ready if v in self.versions] if self.policy == "specific" else ready

    @property
    def limit(self) -> int | None:
        """How many candidates to serve: `latest` serves the newest `num_versions` that load; others serve all."""
        return self.num_versions if self.policy == "latest" else None


def ready_versions(base_path: Path) -> dict[int, Path]:
    """The complete versions under a model folder: integer-named folders holding saved_model.pb."""
    if not base_path.is_dir():
        return {}
    found = {}
    for folder in base_path.iterdir():
        if _VERSION.fullmatch(folder.name) and (folder / SAVED_MODEL).is_file():
            found.setdefault(int(folder.name), folder)
    return dict(sorted(found.items()))


def local_path(base_path: str, repository: Path) -> Path:
    """Where a models.config base_path is on this machine.

    The container's paths (`/models/<model>`) map into `repository`; other
    absolute paths are used as they are; relative ones are relative to `repository`.
    """
    posix = PurePosixPath(base_path)
    if posix.is_relative_to(CONTAINER_ROOT):
        return repository / posix.relative_to(CONTAINER_ROOT)
    path = Path(base_path)
    return path if path.is_absolute() else repository / path


def read_config(repository: Path) -> list[ModelConfig]:
    """The models to serve: from `repository/models.config` if there is one, else every model folder (latest version).

    Raises:
        RepositoryError: models.config does not parse or names a model badly.
    """
    path = repository / CONFIG_NAME
    if path.is_file():
        return parse_config(path.read_text(), repository, str(path))
    if not repository.is_dir():
        return []
    return [
        ModelConfig(folder.name, folder)
        for folder in sorted(repository.iterdir())
        if folder.is_dir() and is_model_name(folder.name)
    ]


def parse_config(text: str, repository: Path, source: str = CONFIG_NAME) -> list[ModelConfig]:
    """Parse a ModelServerConfig text proto into ModelConfigs; `source` names the file in errors."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as err:
        raise RepositoryError(f"{source}: not a ModelServerConfig text proto ({err}); fix it or delete it") from None
    if config.WhichOneof("config") == "custom_model_config":
        raise RepositoryError(f"{source}: custom_model_config is not supported; use model_config_list")
    models: list[ModelConfig] = []
    for entry in config.model_config_list.config:
        if not is_model_name(entry.name):
            raise RepositoryError(
                f"{source}: model name {entry.name!r} is not allowed; use letters, digits, '_', '.', '-'"
            )
        if any(m.name == entry.name for m in models):
            raise RepositoryError(f"{source}: model {entry.name!r} is listed twice; keep one entry")
        if entry.model_platform not in ("", "tensorflow"):
            raise RepositoryError(
                f"{source}: model {entry.name!r} has platform {entry.model_platform!r}; only tensorflow"
            )
        if not entry.base_path:
            raise RepositoryError(f'{source}: model {entry.name!r} has no base_path; add base_path: "/models/<name>"')
        policy = entry.model_version_policy
        kind = policy.WhichOneof("policy_choice") or "latest"
        models.append(
            ModelConfig(
                name=entry.name,
                base_path=local_path(entry.base_path, repository),
                policy=kind,
                num_versions=max(1, policy.latest.num_versions) if kind == "latest" else 1,
                versions=tuple(policy.specific.versions) if kind == "specific" else (),
                labels=dict(entry.version_labels),
            )
        )
    return models


def find_version(repository: Path, name: str, version: int | None = None) -> tuple[int, Path]:
    """`name`'s version folder in the repository (the latest if `version` is None), as (version, path).

    Raises:
        FileNotFoundError: no such model or version; the message says how to export one.
    """
    configs = {c.name: c for c in read_config(repository)}
    base_path = configs[name].base_path if name in configs else repository / name
    versions = ready_versions(base_path)
    if not versions or (version is not None and version not in versions):
        wanted = f"version {version} of {name}" if version is not None else f"a SavedModel of {name}"
        have = ", ".join(map(str, versions)) or "none"
        raise FileNotFoundError(
            f"no {wanted} in {base_path} (versions there: {have}); export one first, e.g. `make project=mnist export`"
        )
    chosen = max(versions) if version is None else version
    return chosen, versions[chosen]

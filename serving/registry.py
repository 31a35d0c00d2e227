"""The models being served, kept in step with the repository: a new version loads, a removed one unloads.

`refresh` reads models.config (or the model folders) and each model's ready
versions, loads what its version policy wants and is not loaded yet, and drops
what it no longer wants. With the `latest` policy a version that fails to load
is skipped: the newest versions that do load are served (a broken export does
not take the model down). Loading happens outside the lock, so requests keep
being answered by the versions already there; a request that holds a version
finishes with it even if that version is unloaded meanwhile.

After a refresh that loads or unloads a version, the heap is collected once and
frozen (`gc.freeze`): a loaded model is half a million Python objects that live as
long as it does, and without this every full collection walks them all. Under load,
requests make enough lists to trigger one every few requests: profiled at 8
concurrent requests of a batch of 32, those collections took 16.6 s of 25 s.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import invalid_argument, not_found
from .model_version import LoadedVersion
from .repository import (
    CONFIG_NAME,
    SAVED_MODEL,
    ModelConfig,
    RepositoryError,
    is_model_name,
    read_config,
    ready_versions,
)

Loader = Callable[[str, int, Path], LoadedVersion]


@dataclass(frozen=True)
class VersionStatus:
    """A version the policy wants: AVAILABLE once loaded, END with the error if loading failed."""

    version: int
    state: str
    error: str = ""


def settle_heap() -> None:
    """Collect what an unloaded version left, then move every object alive now out of the collector's sight.

    Objects frozen earlier are unfrozen first, so a version unloaded since is collected (TensorFlow's
    objects hold reference cycles). It costs one full collection (about 0.1 s) per load or unload.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _fingerprint(path: Path) -> tuple:
    """Changes when a version's files change: a failed version is tried again only then."""
    files = [path / SAVED_MODEL, *sorted((path / "variables").glob("*"))]
    try:
        return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except OSError:
        return ()


class ModelRegistry:
    """Loaded versions by model name; `refresh` (from a polling thread) keeps them in step with `repository`."""

    def __init__(self, repository: Path, loader: Loader = LoadedVersion) -> None:
        self.repository = Path(repository)
        self._loader = loader
        self._lock = threading.Lock()
        self._configs: dict[str, ModelConfig] = {}
        self._loaded: dict[str, dict[int, LoadedVersion]] = {}
        self._failed: dict[tuple[str, int], tuple[tuple, str]] = {}  # (model, version) -> (fingerprint, error)
        self._config_error = ""
        self._refreshed = False
        self._changed = False  # a version was loaded or unloaded since the heap was last settled

    def refresh(self) -> list[str]:
        """Load and unload versions to match the repository once; returns what changed, one line per change.

        Raises:
            RepositoryError: models.config is invalid on the first call (later, the last valid one is kept).
        """
        events: list[str] = []
        try:
            configs = {c.name: c for c in read_config(self.repository)}
            if self._config_error:
                events.append(f"{CONFIG_NAME} is valid again")
            self._config_error = ""
        except RepositoryError as err:
            if not self._refreshed:
                raise
            if str(err) != self._config_error:
                events.append(f"error: {err}; still serving the last valid config")
            self._config_error = str(err)
            configs = self._configs
        serving: dict[str, set[int]] = {}  # the versions each model serves after this refresh
        tried: dict[str, set[int]] = {}  # the versions its policy considered (their load errors are kept)
        for name, config in configs.items():
            try:
                on_disk = ready_versions(config.base_path)
            except OSError as err:  # a folder removed while it is listed: look again at the next poll
                events.append(f"{name}: cannot list {config.base_path} ({err})")
                serving[name] = tried[name] = set(self._loaded.get(name, {}))
                continue
            serving[name], tried[name] = set(), set()
            for version in config.candidates(on_disk):
                if config.limit is not None and len(serving[name]) == config.limit:
                    break
                tried[name].add(version)
                if version in self._loaded.get(name, {}) or self._load(name, version, on_disk[version], events):
                    serving[name].add(version)
        for name in sorted(self._loaded):
            for version in sorted(set(self._loaded[name]) - serving.get(name, set())):
                self._unload(name, version)
                events.append(f"{name}: version {version} unloaded")
        with self._lock:  # the polling thread is the only writer; readers take the dicts under the lock
            self._configs = configs
            self._loaded = {name: versions for name, versions in self._loaded.items() if name in configs}
            self._failed = {(n, v): f for (n, v), f in self._failed.items() if v in tried.get(n, set())}
        self._refreshed = True
        if self._changed:
            self._changed = False
            settle_heap()
        return events

    def _load(self, name: str, version: int, path: Path, events: list[str]) -> bool:
        """Load a version unless it failed before with the same files; True if it is loaded now."""
        fingerprint = _fingerprint(path)
        failed = self._failed.get((name, version))
        if failed and failed[0] == fingerprint:
            return False
        try:
            loaded = self._loader(name, version, path)
        except Exception as err:  # a broken or half-copied SavedModel must not stop the server: report it, go on
            with self._lock:
                self._failed = {**self._failed, (name, version): (fingerprint, f"{type(err).__name__}: {err}")}
            events.append(f"{name}: version {version} failed to load from {path}: {err}")
            return False
        with self._lock:
            self._failed = {k: f for k, f in self._failed.items() if k != (name, version)}
            self._loaded = {**self._loaded, name: {**self._loaded.get(name, {}), version: loaded}}
        events.append(f"{name}: version {version} loaded")
        self._changed = True
        return True

    def _unload(self, name: str, version: int) -> None:
        with self._lock:
            unloaded = self._loaded[name][version]
            versions = {v: m for v, m in self._loaded[name].items() if v != version}
            self._loaded = {**self._loaded, name: versions}
        unloaded.close()
        self._changed = True

    def poll(self, every_seconds: float, stop: threading.Event, report: Callable[[str], None] = print) -> None:
        """Call `refresh` every `every_seconds` until `stop` is set, reporting each change."""
        while not stop.wait(every_seconds):
            try:
                for line in self.refresh():
                    report(line)
            except Exception as err:  # the polling thread must outlive any one bad poll
                report(f"error: polling {self.repository} failed: {err}")

    def close(self) -> None:
        """Unload every version (their batching threads stop); `refresh` loads them again."""
        for name in sorted(self._loaded):
            for version in sorted(self._loaded[name]):
                self._unload(name, version)
        self._changed = False
        gc.unfreeze()  # what the versions left is collectable again

    def served(self) -> dict[str, list[int]]:
        """Every configured model with its loaded versions, ascending (empty: none loaded yet)."""
        with self._lock:
            return {name: sorted(self._loaded.get(name, {})) for name in sorted(self._configs)}

    def _config(self, name: str) -> tuple[ModelConfig, dict[int, LoadedVersion], dict[int, str]]:
        """The model's config, its loaded versions and its failed versions' errors."""
        if not is_model_name(name):
            raise invalid_argument(f"model name {name!r} is not allowed: use letters, digits, '_', '.', '-'")
        with self._lock:
            configs, loaded, failed = self._configs, self._loaded.get(name, {}), self._failed
        if name not in configs:
            known = ", ".join(sorted(configs)) or "none"
            raise not_found(f"Servable not found for request: Latest({name}); models served: {known}")
        return configs[name], loaded, {v: error for (n, v), (_, error) in failed.items() if n == name}

    def _version(self, config: ModelConfig, version: int | None, label: str | None) -> int | None:
        if version is not None and label is not None:
            raise invalid_argument(
                f"Both model version ({version}) and model version label ({label}) cannot be supplied."
            )
        if label is None:
            return version
        if label not in config.labels:
            known = ", ".join(f"{k}={v}" for k, v in sorted(config.labels.items())) or "none"
            raise invalid_argument(f"Unrecognized servable version label: {label}; labels of {config.name}: {known}")
        return config.labels[label]

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> LoadedVersion:
        """The loaded version a request asks for: a version number, a label, or (neither) the latest.

        Raises:
            ServingError: 400 for a bad name or unknown label, 404 for an unknown model or a version not loaded.
        """
        config, loaded, _ = self._config(name)
        version = self._version(config, version, label)
        if version is None:
            if not loaded:
                raise not_found(
                    f"Servable not found for request: Latest({name}); no version is loaded "
                    f"(ready versions are <n>/saved_model.pb under {config.base_path})"
                )
            return loaded[max(loaded)]
        if version not in loaded:
            versions = ", ".join(map(str, sorted(loaded))) or "none"
            raise not_found(f"Servable not found for request: Specific({name}, {version}); loaded versions: {versions}")
        return loaded[version]

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[VersionStatus]:
        """The state of the versions of `name` its policy wants (one if `version` or `label` is given)."""
        config, loaded, failed = self._config(name)
        version = self._version(config, version, label)
        states = [VersionStatus(v, "AVAILABLE") for v in loaded] + [
            VersionStatus(v, "END", e) for v, e in failed.items()
        ]
        states = sorted((s for s in states if version is None or s.version == version), key=lambda s: s.version)
        if not states:
            what = f"version {version}" if version is not None else "any versions"
            raise not_found(f"Could not find {what} of model {name}")
        return states

"""Versions: policies and labels from models.config, new and removed versions picked up while serving,
half-written and broken versions never served."""

from __future__ import annotations

import shutil

import httpx
import numpy as np
import pytest

from serving.errors import ServingError
from serving.registry import ModelRegistry
from serving.repository import RepositoryError
from serving.server import ModelServer

from .serving_models import add_version, wait_until, write_scaler

X = {"x": np.array([[1.0, 2.0, 3.0]], np.float32)}


@pytest.fixture(scope="module")
def scalers(tmp_path_factory):
    """Scaler SavedModels with factors 1, 2 and 3, to copy in as versions."""
    folder = tmp_path_factory.mktemp("scalers")
    return {factor: write_scaler(folder / str(factor), float(factor)) for factor in (1, 2, 3)}


def factor(registry: ModelRegistry, **spec: object) -> float:
    """The factor of the version that answers a request for `spec` (version= or label=)."""
    loaded = registry.resolve("scaler", **spec)
    return float(loaded.predict("serving_default", X)["y"][0, 0])


def served(registry: ModelRegistry) -> list[int]:
    return registry.served()["scaler"]


def test_policies_and_labels_follow_models_config(tmp_path, scalers):
    for version in (1, 2, 3):
        add_version(tmp_path, "scaler", version, scalers[version])
    config = tmp_path / "models.config"
    entry = 'model_config_list {{ config {{ name: "scaler" base_path: "/models/scaler" {} }} }}'
    config.write_text(
        entry.format(
            "model_version_policy { specific { versions: 1 versions: 3 } } "
            'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 3 }'
        )
    )
    registry = ModelRegistry(tmp_path)
    registry.refresh()
    assert served(registry) == [1, 3]
    assert (factor(registry), factor(registry, label="stable"), factor(registry, label="canary")) == (3, 1, 3)
    with pytest.raises(ServingError, match="Specific\\(scaler, 2\\)"):
        registry.resolve("scaler", version=2)

    config.write_text(entry.format("model_version_policy { all {} }"))
    assert "scaler: version 2 loaded" in registry.refresh()
    assert served(registry) == [1, 2, 3]
    config.write_text(entry.format("model_version_policy { latest { num_versions: 2 } }"))
    assert registry.refresh() == ["scaler: version 1 unloaded"]
    assert served(registry) == [2, 3]


def test_half_written_versions_are_never_loaded(tmp_path, scalers):
    add_version(tmp_path, "scaler", 1, scalers[1])
    registry = ModelRegistry(tmp_path)
    registry.refresh()
    shutil.copytree(scalers[3], tmp_path / "scaler" / ".staging-abc")  # an export before its rename
    shutil.copytree(scalers[3], tmp_path / "scaler" / "5.tmp")  # not an integer
    shutil.copytree(scalers[3], tmp_path / "scaler" / "7", ignore=shutil.ignore_patterns("saved_model.pb"))
    assert registry.refresh() == [] and served(registry) == [1]
    shutil.copy(scalers[3] / "saved_model.pb", tmp_path / "scaler" / "7")  # the copy completes
    assert registry.refresh() == ["scaler: version 7 loaded", "scaler: version 1 unloaded"]
    assert factor(registry) == 3


def test_a_broken_version_is_reported_and_the_last_good_one_keeps_serving(tmp_path, scalers):
    add_version(tmp_path, "scaler", 1, scalers[1])
    (tmp_path / "scaler" / "2").mkdir()
    (tmp_path / "scaler" / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")
    registry = ModelRegistry(tmp_path)
    events = registry.refresh()
    assert events[0].startswith("scaler: version 2 failed to load") and events[1] == "scaler: version 1 loaded"
    assert registry.refresh() == []  # not retried until its files change
    assert factor(registry) == 1
    states = {s.version: (s.state, bool(s.error)) for s in registry.status("scaler")}
    assert states == {1: ("AVAILABLE", False), 2: ("END", True)}


def test_an_invalid_models_config_stops_start_up_but_not_a_running_server(tmp_path, scalers):
    add_version(tmp_path, "scaler", 1, scalers[1])
    (tmp_path / "models.config").write_text("model_config_list {")
    with pytest.raises(RepositoryError, match="not a ModelServerConfig"):
        ModelRegistry(tmp_path).refresh()
    (tmp_path / "models.config").write_text('model_config_list { config { name: "scaler" base_path: "scaler" } }')
    registry = ModelRegistry(tmp_path)
    registry.refresh()
    (tmp_path / "models.config").write_text("model_config_list { config {")
    (event,) = registry.refresh()
    assert "still serving the last valid config" in event and factor(registry) == 1


def test_the_server_picks_up_new_and_removed_versions_and_models_while_running(tmp_path, scalers):
    add_version(tmp_path, "scaler", 1, scalers[1])
    lines: list[str] = []
    with (
        ModelServer(tmp_path, rest_port=0, grpc_port=0, poll_seconds=0.1, report=lines.append) as server,
        httpx.Client(base_url=server.rest_url, timeout=30) as client,
    ):

        def answer(model: str = "scaler") -> float | None:
            response = client.post(f"/v1/models/{model}:predict", json={"instances": [[1, 2, 3]]})
            return response.json()["predictions"][0][0] if response.status_code == 200 else None

        assert answer() == 1
        add_version(tmp_path, "scaler", 2, scalers[2])
        assert wait_until(lambda: answer() == 2), lines
        status = client.get("/v1/models/scaler").json()["model_version_status"]
        assert [s["version"] for s in status] == ["2"]  # latest policy: version 1 unloaded
        shutil.rmtree(tmp_path / "scaler" / "2")
        assert wait_until(lambda: answer() == 1), lines
        add_version(tmp_path, "other", 1, scalers[3])  # a new model folder (no models.config)
        assert wait_until(lambda: answer("other") == 3), lines
    assert "scaler: version 2 loaded" in lines and "scaler: version 2 unloaded" in lines

"""The model repository on disk: versions, models.config, and the container's view of the same folder."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
import yaml

from common.paths import DEFAULT_ARTIFACTS
from serving.repository import (
    CONTAINER_ROOT,
    ModelConfig,
    RepositoryError,
    find_version,
    is_model_name,
    parse_config,
    read_config,
    ready_versions,
)

from .conftest import REPO


def test_only_complete_integer_versions_are_ready(tmp_path):
    for name in ("1", "2", ".staging-x1y2", "3.tmp", "4"):
        (tmp_path / name).mkdir()
    for name in ("1", "2", ".staging-x1y2", "3.tmp"):
        (tmp_path / name / "saved_model.pb").write_bytes(b"")
    # "4" has no saved_model.pb yet: a copy in progress
    assert list(ready_versions(tmp_path)) == [1, 2]
    assert ready_versions(tmp_path / "missing") == {}


def test_version_policies():
    latest = ModelConfig("m", Path("m"), "latest", num_versions=2)
    assert latest.candidates([1, 3, 2]) == [3, 2, 1] and latest.limit == 2
    specific = ModelConfig("m", Path("m"), "specific", versions=(1, 3))
    assert specific.candidates([1, 2, 3, 4]) == [3, 1] and specific.limit is None
    assert ModelConfig("m", Path("m"), "all").candidates([2, 1]) == [2, 1]


def test_models_config_policies_labels_and_paths(tmp_path):
    text = """
    model_config_list {
      config {
        name: "mnist" base_path: "/models/mnist" model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 3 } }
        version_labels { key: "stable" value: 1 }
      }
      config { name: "other" base_path: "elsewhere/other" model_version_policy { latest { num_versions: 2 } } }
      config { name: "abs" base_path: "/srv/models/abs" model_version_policy { all {} } }
    }"""
    mnist, other, absolute = parse_config(text, tmp_path)
    assert mnist == ModelConfig("mnist", tmp_path / "mnist", "specific", 1, (1, 3), {"stable": 1})
    assert (other.base_path, other.policy, other.num_versions) == (tmp_path / "elsewhere/other", "latest", 2)
    assert (absolute.base_path, absolute.policy) == (Path("/srv/models/abs"), "all")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("model_config_list {", "not a ModelServerConfig text proto"),
        ('model_config_list { config { name: "../etc" base_path: "/models/x" } }', "is not allowed"),
        ('model_config_list { config { name: "a" base_path: "/models/a" } config { name: "a" } }', "listed twice"),
        ('model_config_list { config { name: "a" } }', "has no base_path"),
        ('model_config_list { config { name: "a" base_path: "/models/a" model_platform: "onnx" } }', "only tensorflow"),
    ],
)
def test_a_bad_models_config_names_the_problem(tmp_path, text, problem):
    with pytest.raises(RepositoryError, match=problem):
        parse_config(text, tmp_path, "models.config")


def test_without_models_config_every_model_folder_is_served(tmp_path):
    for name in ("mnist", "digits", ".staging", "bad name"):
        (tmp_path / name).mkdir()
    (tmp_path / "notes.txt").write_text("not a model")
    assert [c.name for c in read_config(tmp_path)] == ["digits", "mnist"]
    assert all(c.policy == "latest" and c.num_versions == 1 for c in read_config(tmp_path))
    assert read_config(tmp_path / "missing") == []


def test_model_names_with_path_characters_are_rejected():
    for bad in ("..", "../x", "a/b", "a\\b", ".hidden", "", "a b", "a:b", "a%2Fb", "x" * 129, "é"):
        assert not is_model_name(bad), bad
    for good in ("mnist", "my-model_2.1", "A9"):
        assert is_model_name(good), good


def test_find_version_picks_the_latest_or_says_how_to_export(tmp_path):
    for version in (1, 2):
        (tmp_path / "mnist" / str(version)).mkdir(parents=True)
        (tmp_path / "mnist" / str(version) / "saved_model.pb").write_bytes(b"")
    assert find_version(tmp_path, "mnist") == (2, tmp_path / "mnist" / "2")
    assert find_version(tmp_path, "mnist", 1) == (1, tmp_path / "mnist" / "1")
    with pytest.raises(FileNotFoundError, match="make project=mnist export"):
        find_version(tmp_path, "mnist", 7)


def test_the_container_mounts_the_repository_where_models_config_points(tmp_path):
    """docker-compose.yml, the export's models.config and the embedded server agree on every path."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from common.export import savedmodel

    service = yaml.safe_load((REPO / "serving" / "docker-compose.yml").read_text())["services"]["tensorflow-serving"]
    image, tag = service["image"].split(":")
    assert image == "tensorflow/serving" and tag.count(".") == 2, "pin a release tag, e.g. tensorflow/serving:2.19.0"
    host, container, *_ = service["volumes"][0].split(":")
    assert (REPO / "serving" / host).resolve() == DEFAULT_ARTIFACTS / "serving"
    assert container == str(CONTAINER_ROOT) == savedmodel.CONTAINER_ROOT
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in service["command"])
    assert flags["model_config_file"] == f"{container}/models.config"
    assert {"127.0.0.1:8500:8500", "127.0.0.1:8501:8501"} <= set(service["ports"])

    # A models.config as the export writes it: base paths under the mount, found by the embedded server.
    config_path = savedmodel.update_models_config(tmp_path, "mnist")
    config = text_format.Parse(config_path.read_text(), model_server_config_pb2.ModelServerConfig())
    (entry,) = config.model_config_list.config
    assert PurePosixPath(entry.base_path).parent == PurePosixPath(container)
    assert [(c.name, c.base_path) for c in read_config(tmp_path)] == [("mnist", tmp_path / "mnist")]

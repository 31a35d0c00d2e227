"""The embedded server's REST API, as TF Serving documents it: status, metadata, predict, errors."""

from __future__ import annotations

import base64
import json
import math

import httpx
import numpy as np
import pytest

from serving.server import ModelServer

from .serving_models import api_test_repository, digit_images

MODELS_CONFIG = """
model_config_list {
  config { name: "digits" base_path: "/models/digits" model_platform: "tensorflow" }
  config { name: "echo" base_path: "/models/echo" model_platform: "tensorflow" }
  config {
    name: "scaler" base_path: "/models/scaler" model_platform: "tensorflow"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}
"""
LIMIT = 256 * 1024  # the test server's request size limit


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    repository = api_test_repository(tmp_path_factory.mktemp("repository"), MODELS_CONFIG, echo=True)
    with (
        ModelServer(repository, rest_port=0, grpc_port=0, max_request_bytes=LIMIT, report=lambda line: None) as server,
        httpx.Client(base_url=server.rest_url, timeout=30) as client,
    ):
        yield client


def test_model_status_of_every_version_a_version_and_a_label(client):
    answer = client.get("/v1/models/scaler").json()
    assert answer == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
            {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        ]
    }
    assert [s["version"] for s in client.get("/v1/models/scaler/versions/2").json()["model_version_status"]] == ["2"]
    assert [s["version"] for s in client.get("/v1/models/scaler/labels/stable").json()["model_version_status"]] == ["1"]


def test_metadata_is_the_signature_def_in_tf_servings_json(client):
    answer = client.get("/v1/models/digits/metadata").json()
    assert answer["model_spec"] == {"name": "digits", "version": "1", "signature_name": ""}
    signature = answer["metadata"]["signature_def"]["signature_def"]["serving_default"]
    image = signature["inputs"]["image"]
    assert image["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in image["tensor_shape"]["dim"]] == ["-1", "28", "28", "1"]
    assert signature["outputs"]["digit"]["dtype"] == "DT_INT32"
    assert signature["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"
    assert signature["method_name"] == "tensorflow/serving/predict"
    versioned = client.get("/v1/models/scaler/labels/canary/metadata").json()
    assert versioned["model_spec"]["version"] == "2"


def test_predict_row_format_with_real_digits(client):
    images, labels = digit_images()
    batch = images[[0, 1001, 3119], :, :, None]  # a 0, a 1 and a 3
    answer = client.post("/v1/models/digits:predict", json={"instances": batch.tolist()})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["digit"] for p in predictions] == [0, 1, 3] == labels[[0, 1001, 3119]].tolist()
    for p in predictions:
        assert len(p["probabilities"]) == 10 and math.isclose(sum(p["probabilities"]), 1, abs_tol=1e-5)


def test_predict_columnar_format(client):
    images, _ = digit_images()
    answer = client.post("/v1/models/digits:predict", json={"inputs": {"image": images[:2, :, :, None].tolist()}})
    outputs = answer.json()["outputs"]
    assert set(outputs) == {"digit", "probabilities"}
    assert np.asarray(outputs["probabilities"]).shape == (2, 10) and len(outputs["digit"]) == 2
    single = client.post("/v1/models/scaler:predict", json={"inputs": [[1, 2, 3]]}).json()
    assert single == {"outputs": [[2.0, 4.0, 6.0]]}  # one output: its value, not an object


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/v1/models/scaler:predict", {"instances": [[1, 2, 3]]}, [[2, 4, 6]]),  # latest version: factor 2
        ("/v1/models/scaler/versions/1:predict", {"instances": [[1, 2, 3]]}, [[1, 2, 3]]),
        ("/v1/models/scaler/labels/stable:predict", {"instances": [[1, 2, 3]]}, [[1, 2, 3]]),
        ("/v1/models/scaler/labels/canary:predict", {"instances": [[1, 2, 3]]}, [[2, 4, 6]]),
        ("/v1/models/scaler/versions/1:predict", {"signature_name": "double", "instances": [[1, 2, 3]]}, [[2, 4, 6]]),
        ("/v1/models/scaler:predict", {"instances": [[float("nan"), 1, 2]]}, [[math.nan, 2, 4]]),
    ],
)
def test_versions_labels_and_signatures(client, path, body, expected):
    answer = client.post(path, content=json.dumps(body))  # json.dumps writes NaN, as TF Serving reads it
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["predictions"], expected)


def test_binary_values_travel_as_b64(client):
    hello = base64.b64encode(b"hello").decode()
    rows = client.post(
        "/v1/models/echo:predict",
        json={"instances": [{"text_bytes": {"b64": hello}, "count": 2}, {"text_bytes": "hi", "count": 1}]},
    ).json()["predictions"]
    assert rows == [{"length": 10, "text_bytes": {"b64": hello}}, {"length": 2, "text_bytes": {"b64": "aGk="}}]
    columns = client.post("/v1/models/echo:predict", json={"inputs": {"text_bytes": ["abc"], "count": [3]}}).json()
    assert columns == {"outputs": {"length": [9], "text_bytes": [{"b64": "YWJj"}]}}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/v1/models/nope", None, 404, "Servable not found for request: Latest(nope)"),
        ("POST", "/v1/models/nope:predict", '{"instances": [1]}', 404, "models served: digits, echo, scaler"),
        ("GET", "/v1/models/scaler/versions/7", None, 404, "Could not find version 7 of model scaler"),
        ("POST", "/v1/models/scaler/versions/7:predict", '{"instances": [[1,2,3]]}', 404, "loaded versions: 1, 2"),
        ("GET", "/v1/models/scaler/versions/x1", None, 400, "Failed to convert version: x1 to numeric"),
        ("GET", "/v1/models/scaler/labels/beta", None, 400, "Unrecognized servable version label: beta"),
        ("GET", "/v1/models/a%20b", None, 400, "model name 'a b' is not allowed"),
        ("GET", "/v1/models/%2E%2E", None, 400, "model name '..' is not allowed"),
        ("GET", "/v1/models/..%2F..%2Fetc", None, 404, "the API is GET /v1/models/<name>"),
        ("GET", "/v2/anything", None, 404, "the API is GET /v1/models/<name>"),
        ("DELETE", "/v1/models/scaler", None, 405, "Method Not Allowed"),
        ("POST", "/v1/models/scaler:predict", "", 400, "empty request body"),
        ("POST", "/v1/models/scaler:predict", "{not json", 400, "malformed JSON"),
        ("POST", "/v1/models/scaler:predict", "[1, 2]", 400, "must be a JSON object"),
        ("POST", "/v1/models/scaler:predict", '{"instances": []}', 400, "non-empty list"),
        ("POST", "/v1/models/scaler:predict", '{"instances": [[1,2,3]], "inputs": [[1,2,3]]}', 400, "exactly one"),
        ("POST", "/v1/models/scaler:predict", '{"signature_name": 3, "inputs": [[1,2,3]]}', 400, "must be a string"),
        ("POST", "/v1/models/scaler:predict", '{"signature_name": "no", "inputs": [[1,2,3]]}', 400, '"no" not found'),
        ("POST", "/v1/models/scaler:predict", '{"inputs": [[1, 2]]}', 400, 'input "x": expected float32 (None, 3)'),
        ("POST", "/v1/models/scaler:predict", '{"inputs": [1, 2, 3]}', 400, "got float32 (3,)"),
        ("POST", "/v1/models/scaler:predict", '{"inputs": ' + "[" * 60 + "1" + "]" * 60 + "}", 400, "got float32"),
        ("POST", "/v1/models/scaler:predict", '{"inputs": ' + "[" * 5000 + "]" * 5000 + "}", 400, "malformed JSON"),
        (
            "POST",
            "/v1/models/echo:predict",
            '{"inputs": {"count": [1], "text_bytes": ' + "[" * 60 + '"a"' + "]" * 60 + "}}",
            400,
            "too deep",
        ),
        ("POST", "/v1/models/scaler:predict", '{"inputs": [[1, 2], [3]]}', 400, 'input "x": nested lists'),
        ("POST", "/v1/models/scaler:predict", '{"inputs": [["1", "2", "3"]]}', 400, 'input "x" is float32'),
        ("POST", "/v1/models/scaler:predict", '{"inputs": [[true, false, true]]}', 400, "got true/false"),
        ("POST", "/v1/models/scaler:predict", '{"inputs": [[1, null, 3]]}', 400, 'input "x" is float32'),
        ("POST", "/v1/models/scaler:predict", '{"inputs": [[1e39, 0, 0]]}', 400, "too large for float32"),
        ("POST", "/v1/models/scaler:predict", '{"inputs": {"y": [[1, 2, 3]]}}', 400, "unknown input 'y'"),
        ("POST", "/v1/models/scaler:predict", '{"instances": [{"y": [1, 2, 3]}]}', 400, "keys ['x']"),
        ("POST", "/v1/models/echo:predict", '{"inputs": {"text_bytes": ["a"]}}', 400, "missing input 'count'"),
        ("POST", "/v1/models/echo:predict", '{"instances": ["a", "b"]}', 400, "objects naming each input"),
        ("POST", "/v1/models/echo:predict", '{"inputs": {"text_bytes": ["a"], "count": [1.5]}}', 400, "fractional"),
        ("POST", "/v1/models/echo:predict", '{"inputs": {"text_bytes": ["a"], "count": [3e9]}}', 400, "int32"),
        ("POST", "/v1/models/echo:predict", '{"inputs": {"text_bytes": [{"b64": "@@"}], "count": [1]}}', 400, "base64"),
        ("POST", "/v1/models/echo:predict", '{"inputs": {"text_bytes": [7], "count": [1]}}', 400, "string tensor"),
        ("POST", "/v1/models/digits:predict", '{"instances": [[0.5]]}', 400, "expected float32 (None, 28, 28, 1)"),
    ],
)
def test_bad_requests_get_tf_servings_status_and_a_message(client, method, path, body, status, message):
    answer = client.request(method, path, content=body)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


def test_a_body_over_the_limit_gets_413(client):
    too_big = b'{"inputs": [' + b"0," * LIMIT + b"0]}"
    answer = client.post("/v1/models/scaler:predict", content=too_big)
    assert answer.status_code == 413 and "over the limit" in answer.json()["error"]

    def chunks():  # no Content-Length: counted while it is read
        for _ in range(LIMIT // 1024 + 2):
            yield b" " * 1024

    assert client.post("/v1/models/scaler:predict", content=chunks()).status_code == 413
    assert client.post("/v1/models/scaler:predict", json={"inputs": [[1, 2, 3]]}).status_code == 200

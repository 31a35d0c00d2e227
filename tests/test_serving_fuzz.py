"""Hundreds of malformed requests of every kind: none gets a 5xx, and the server still answers a good one."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.server import ModelServer

from .serving_models import add_version, digits_savedmodel, write_echo, write_scaler

MODELS = ["scaler", "echo", "digits"]
EXAMPLES = 250
TIME_LIMIT_S = 120

json_leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=24,
)
# Numbers in arrays of a random shape: right types, (mostly) wrong shapes.
shaped = st.lists(st.integers(0, 4), max_size=4).map(lambda shape: _nest(0.5, shape))
names = st.sampled_from(["x", "image", "text_bytes", "count", "y", "", "b64"]) | st.text(max_size=6)
predict_body = st.one_of(
    st.fixed_dictionaries({"instances": json_value}),
    st.fixed_dictionaries({"inputs": json_value}),
    st.fixed_dictionaries({"inputs": shaped}),
    st.fixed_dictionaries({"instances": shaped}),
    st.fixed_dictionaries({"inputs": st.dictionaries(names, json_value | shaped, max_size=3)}),
    st.fixed_dictionaries({"instances": st.lists(st.dictionaries(names, json_value | shaped, max_size=3), max_size=3)}),
    st.fixed_dictionaries({"signature_name": json_value, "inputs": shaped}),
    st.dictionaries(st.text(max_size=10), json_value, max_size=3),
    json_value,
)
raw_body = st.binary(max_size=64) | predict_body.map(lambda body: json.dumps(body).encode())
model_name = st.sampled_from(MODELS) | st.text(min_size=1, max_size=12).map(lambda s: quote(s, safe="/.:"))
suffix = st.sampled_from(["", "/versions/1", "/versions/99", "/versions/-1", "/versions/x", "/labels/a", "/labels/"])
predict = st.tuples(st.just("POST"), model_name, suffix, st.just(":predict"), raw_body)
anything = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    model_name,
    suffix,
    st.sampled_from(["", "/metadata", ":predict", ":classify"]),
    raw_body,
)
request = st.one_of(predict, predict, predict, anything)  # mostly predict, the richest input


def _nest(value: float, shape: list[int]) -> object:
    return value if not shape else [_nest(value, shape[1:]) for _ in range(shape[0])]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    repository = tmp_path_factory.mktemp("repository")
    add_version(repository, "digits", 1, digits_savedmodel())
    write_scaler(repository / "scaler" / "1", 1.0)
    write_echo(repository / "echo" / "1")
    with (
        ModelServer(repository, rest_port=0, grpc_port=0, max_request_bytes=64 * 1024, report=lambda line: None) as s,
        httpx.Client(base_url=s.rest_url, timeout=30) as client,
    ):
        yield client


def test_malformed_requests_never_get_a_5xx(client):
    sent: list[int] = []
    deadline = time.monotonic() + TIME_LIMIT_S

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(request)
    def check(spec: tuple[str, str, str, str, bytes]) -> None:
        method, name, version, action, body = spec
        assert time.monotonic() < deadline, f"over {TIME_LIMIT_S} s"
        response = client.request(method, f"/v1/models/{name}{version}{action}", content=body)
        sent.append(response.status_code)
        assert response.status_code < 500, (method, name, version, action, body[:200], response.text[:300])
        if response.status_code >= 400:
            assert isinstance(response.json()["error"], str)

    check()
    assert len(sent) >= 200, f"only {len(sent)} requests were sent"
    assert sum(code >= 400 for code in sent) > len(sent) / 2  # most were malformed indeed
    good = client.post("/v1/models/scaler:predict", json={"instances": [[1, 2, 3]]})
    assert good.status_code == 200 and good.json() == {"predictions": [[1.0, 2.0, 3.0]]}
    assert client.get("/v1/models/digits").status_code == 200

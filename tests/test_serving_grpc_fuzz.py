"""Hundreds of malformed gRPC requests (wrong dtypes, shapes, huge or negative dims, missing fields, garbage bytes,
bodies over the limit): each gets a client-error status, never INTERNAL or UNKNOWN (gRPC's 5xx), and the server
still answers a good request afterwards."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.server import ModelServer

from .serving_models import add_version, digits_savedmodel, write_echo, write_scaler

EXAMPLES = 250
TIME_LIMIT_S = 120
LIMIT_BYTES = 64 * 1024
PREDICT = "/tensorflow.serving.PredictionService/Predict"
# What a client's mistake may get; INTERNAL, UNKNOWN (and a hang: DEADLINE_EXCEEDED) are the server's fault.
CLIENT_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED,
}

dtypes = st.sampled_from([v for v in types_pb2.DataType.values() if v < 100]) | st.integers(-5, 400)
dims = st.lists(st.integers(-3, 4) | st.sampled_from([0, 10**6, 2**40, 2**62]), max_size=5)
tensor = st.builds(
    lambda dtype, shape, content, floats, ints, strings: tensor_pb2.TensorProto(
        dtype=dtype if dtype in types_pb2.DataType.values() else 1,
        tensor_shape={"dim": [{"size": d} for d in shape]},
        tensor_content=content,
        float_val=floats,
        int_val=ints,
        string_val=strings,
    ),
    dtypes,
    dims,
    st.binary(max_size=64),
    st.lists(st.floats(allow_nan=True), max_size=8),
    st.lists(st.integers(-(2**31), 2**31 - 1), max_size=8),
    st.lists(st.binary(max_size=8), max_size=3),
)
names = st.sampled_from(["x", "image", "text_bytes", "count", "y", ""]) | st.text(max_size=6)
model = st.sampled_from(["scaler", "echo", "digits", "", "nope", "../x", "a/b"]) | st.text(max_size=8)


@st.composite
def predict_request(draw: st.DrawFn) -> bytes:
    """A serialized PredictRequest whose fields are drawn, or plain garbage bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=128))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = draw(model)
    if draw(st.booleans()):
        request.model_spec.version.value = draw(st.integers(-2, 3))
    if draw(st.integers(0, 3)) == 0:
        request.model_spec.signature_name = draw(st.sampled_from(["double", "nope", ""]))
    for name in draw(st.lists(names, max_size=3, unique=True)):
        request.inputs[name].CopyFrom(draw(tensor))
    if draw(st.integers(0, 4)) == 0:
        request.output_filter.append(draw(names))
    return request.SerializeToString()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repository = tmp_path_factory.mktemp("repository")
    add_version(repository, "digits", 1, digits_savedmodel())
    write_scaler(repository / "scaler" / "1", 1.0)
    write_echo(repository / "echo" / "1")
    with ModelServer(
        repository, rest_port=0, grpc_port=0, max_request_bytes=LIMIT_BYTES, report=lambda line: None
    ) as running:
        yield running


def _good_request() -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "scaler"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1.0, 2.0, 3.0]], np.float32)))
    return request


def test_malformed_grpc_requests_get_client_errors_only(server):
    codes: list[grpc.StatusCode] = []
    deadline = time.monotonic() + TIME_LIMIT_S
    with grpc.insecure_channel(server.grpc_address) as channel:
        raw = channel.unary_unary(PREDICT, request_serializer=None, response_deserializer=None)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(predict_request())
        def check(body: bytes) -> None:
            assert time.monotonic() < deadline, f"over {TIME_LIMIT_S} s"
            try:
                raw(body, timeout=30)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.append(error.code())
                assert error.code() in CLIENT_ERRORS, (error.code(), error.details(), body[:200])
                assert error.details(), error.code()

        check()
        assert len(codes) >= 200, f"only {len(codes)} requests were sent"
        assert sum(code != grpc.StatusCode.OK for code in codes) > len(codes) / 2  # most were malformed indeed

        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        too_big = _good_request()
        too_big.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros((LIMIT_BYTES // 8, 3), np.float32)))
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(too_big, timeout=30)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        response = stub.Predict(_good_request(), timeout=30)
        assert tf.make_ndarray(response.outputs["y"]).tolist() == [[1.0, 2.0, 3.0]]

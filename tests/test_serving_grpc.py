"""The embedded server's gRPC API, called with tensorflow-serving-api's official stubs."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.server import ModelServer

from .serving_models import api_test_repository, digit_images


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    repository = api_test_repository(
        tmp_path_factory.mktemp("repository"),
        'model_config_list { config { name: "digits" base_path: "/models/digits" } '
        'config { name: "scaler" base_path: "/models/scaler" model_version_policy { all {} } '
        'version_labels { key: "stable" value: 1 } } }',
    )
    with (
        ModelServer(repository, rest_port=0, grpc_port=0, report=lambda line: None) as server,
        grpc.insecure_channel(server.grpc_address) as channel,
    ):
        yield channel


def predict_request(model: str, **inputs: np.ndarray) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for name, array in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
    return request


def test_predict_with_the_official_stub(channel):
    images, labels = digit_images()
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(predict_request("digits", image=images[[0, 1001, 3119], :, :, None]), timeout=30)
    assert (response.model_spec.name, response.model_spec.version.value) == ("digits", 1)
    assert response.model_spec.signature_name == "serving_default"
    digits = tf.make_ndarray(response.outputs["digit"])
    assert digits.dtype == np.int32 and digits.tolist() == labels[[0, 1001, 3119]].tolist() == [0, 1, 3]
    assert tf.make_ndarray(response.outputs["probabilities"]).shape == (3, 10)


def test_versions_labels_signatures_and_output_filter(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    request = predict_request("scaler", x=x)
    assert tf.make_ndarray(stub.Predict(request, timeout=30).outputs["y"]).tolist() == [[2, 4, 6]]
    request.model_spec.version_label = "stable"
    assert tf.make_ndarray(stub.Predict(request, timeout=30).outputs["y"]).tolist() == [[1, 2, 3]]
    request.model_spec.ClearField("version_label")
    request.model_spec.version.value = 1
    request.model_spec.signature_name = "double"
    request.output_filter.append("y")
    response = stub.Predict(request, timeout=30)
    assert response.model_spec.version.value == 1 and tf.make_ndarray(response.outputs["y"]).tolist() == [[2, 4, 6]]


def test_model_metadata_and_status(channel):
    prediction = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "digits"
    response = prediction.GetModelMetadata(request, timeout=30)
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_defs)
    image = signature_defs.signature_def["serving_default"].inputs["image"]
    assert image.dtype == tf.float32.as_datatype_enum and [d.size for d in image.tensor_shape.dim] == [-1, 28, 28, 1]

    models = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "scaler"})
    status = models.GetModelStatus(request, timeout=30)
    assert [(s.version, s.state) for s in status.model_version_status] == [(1, 30), (2, 30)]  # 30: AVAILABLE


def _tensor(dtype: int, dims: list[int], **fields: object) -> tensor_pb2.TensorProto:
    """A TensorProto written by hand, as a faulty client might."""
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape={"dim": [{"size": d} for d in dims]}, **fields)


@pytest.mark.parametrize(
    ("model", "inputs", "code", "message"),
    [
        ("nope", {"x": np.zeros((1, 3), np.float32)}, grpc.StatusCode.NOT_FOUND, "Servable not found"),
        ("../etc", {"x": np.zeros((1, 3), np.float32)}, grpc.StatusCode.INVALID_ARGUMENT, "not allowed"),
        ("scaler", {"x": np.zeros((1, 3), np.float64)}, grpc.StatusCode.INVALID_ARGUMENT, "expected float32 (None, 3)"),
        ("scaler", {"x": np.zeros((1, 4), np.float32)}, grpc.StatusCode.INVALID_ARGUMENT, "got float32 (1, 4)"),
        ("scaler", {"z": np.zeros((1, 3), np.float32)}, grpc.StatusCode.INVALID_ARGUMENT, "unknown input 'z'"),
        ("scaler", {}, grpc.StatusCode.INVALID_ARGUMENT, "missing input 'x'"),
        ("scaler", {"x": _tensor(1, [2, 3], tensor_content=b"\0" * 5)}, grpc.StatusCode.INVALID_ARGUMENT, "malformed"),
        ("scaler", {"x": _tensor(1, [10**9, 3], float_val=[1.0])}, grpc.StatusCode.INVALID_ARGUMENT, "elements"),
        ("scaler", {"x": _tensor(1, [-1, 3])}, grpc.StatusCode.INVALID_ARGUMENT, "negative"),
    ],
)
def test_bad_requests_abort_with_tf_servings_codes(channel, model, inputs, code, message):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for name, value in inputs.items():
        proto = value if isinstance(value, tensor_pb2.TensorProto) else tf.make_tensor_proto(value)
        request.inputs[name].CopyFrom(proto)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(request, timeout=30)
    assert caught.value.code() == code
    assert message in caught.value.details()


def test_metadata_needs_the_signature_def_field(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": "digits"})
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetModelMetadata(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "signature_def" in caught.value.details()

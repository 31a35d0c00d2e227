"""TF Serving's gRPC API over a ModelRegistry, with the protos of tensorflow-serving-api.

PredictionService.Predict and GetModelMetadata, ModelService.GetModelStatus:
clients built on the official stubs (`prediction_service_pb2_grpc.PredictionServiceStub`)
work unchanged. Errors abort the call with TF Serving's status code and message.
"""

from __future__ import annotations

import math
from concurrent import futures

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from . import protos
from .errors import ServingError, invalid_argument
from .json_tensors import DEFAULT_SIGNATURE
from .registry import ModelRegistry
from .signatures import TensorSpec


def _target(spec: model_pb2.ModelSpec) -> tuple[str, int | None, str | None]:
    """(model name, version or None, label or None) of a ModelSpec."""
    return spec.name, spec.version.value if spec.HasField("version") else None, spec.version_label or None


def to_array(proto: tensor_pb2.TensorProto, spec: TensorSpec, max_elements: int) -> np.ndarray:
    """A request's TensorProto as a numpy array, after its dtype and size are checked (a 400 otherwise)."""
    if proto.dtype != spec.dtype.as_datatype_enum:
        try:
            got = tf.dtypes.as_dtype(proto.dtype).name
        except TypeError:
            got = f"DataType {proto.dtype}"
        raise invalid_argument(f'input "{spec.name}": expected {spec.describe()}, got {got}')
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims) or math.prod(dims) > max_elements:
        raise invalid_argument(f'input "{spec.name}": shape {dims} is negative or over {max_elements:,} elements')
    try:
        return tf.make_ndarray(proto)
    except (ValueError, TypeError) as err:
        raise invalid_argument(f'input "{spec.name}": malformed TensorProto ({err})') from None


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata (Classify, Regress and MultiInference answer UNIMPLEMENTED)."""

    def __init__(self, registry: ModelRegistry, max_elements: int) -> None:
        self.registry, self.max_elements = registry, max_elements

    def Predict(  # noqa: N802 (the gRPC method's name)
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        try:
            return self._predict(request)
        except ServingError as err:
            context.abort(err.code, err.message)

    def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        loaded = self.registry.resolve(*_target(request.model_spec))
        signature = loaded.signature(request.model_spec.signature_name or DEFAULT_SIGNATURE)
        signature.check_names(request.inputs)
        inputs = {k: to_array(v, signature.inputs[k], self.max_elements) for k, v in request.inputs.items()}
        wanted = list(request.output_filter) or list(signature.outputs)
        unknown = [name for name in wanted if name not in signature.outputs]
        if unknown:
            raise invalid_argument(f"output_filter names {unknown[0]!r}; the outputs are {sorted(signature.outputs)}")
        outputs = loaded.predict(signature.name, signature.check_inputs(inputs))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = loaded.name
        response.model_spec.version.value = loaded.version
        response.model_spec.signature_name = signature.name
        for name in wanted:
            response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
        return response

    def GetModelMetadata(  # noqa: N802 (the gRPC method's name)
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        try:
            loaded = self.registry.resolve(*_target(request.model_spec))
            return protos.metadata_response(loaded, list(request.metadata_field))
        except ServingError as err:
            context.abort(err.code, err.message)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus (HandleReloadConfigRequest answers UNIMPLEMENTED: edit models.config instead)."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def GetModelStatus(  # noqa: N802 (the gRPC method's name)
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        try:
            return protos.status_response(self.registry.status(*_target(request.model_spec)))
        except ServingError as err:
            context.abort(err.code, err.message)


def start_grpc_server(
    registry: ModelRegistry, host: str, port: int, max_message_bytes: int, workers: int = 16
) -> tuple[grpc.Server, int]:
    """Serve both services on host:port (0: any free port); returns the running server and its port.

    Raises:
        OSError: the port cannot be bound (in use, or a host that is not this machine's).
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share it
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(registry, max_message_bytes), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(registry), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as err:
        raise OSError(f"cannot listen for gRPC on {address} ({err})") from None
    if not bound:
        raise OSError(f"cannot listen for gRPC on {address}")
    server.start()
    return server, bound

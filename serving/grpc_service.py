"""TF Serving's gRPC API over a ModelRegistry, with the protos of tensorflow-serving-api.

PredictionService.Predict and GetModelMetadata, ModelService.GetModelStatus:
clients built on the official stubs (`prediction_service_pb2_grpc.PredictionServiceStub`)
work unchanged. Errors abort the call with TF Serving's status code and message.

The server is grpcio's threaded server: each call runs in a thread of its pool
and, with batching on, waits there for the batcher's future. Measured side by side
with h2load on the digits model (serving/README.md), it answers as many requests per
second as a grpc.aio server on its own event loop on an idle machine, and 1.1-1.9x as
many at concurrency 8 and 32 while other work shares the cores.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import CancelledError, ThreadPoolExecutor

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError, Message
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)

from . import protos
from .errors import ServingError, invalid_argument
from .json_tensors import DEFAULT_SIGNATURE
from .registry import ModelRegistry
from .signatures import TensorSpec

# The dtypes make_tensor_proto writes as tensor_content (raw little-endian bytes) when an array has 2 or more values.
_CONTENT_DTYPES = {
    tf.dtypes.as_dtype(dtype).as_datatype_enum: np.dtype(dtype)
    for dtype in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint32", "uint64")
}
_CONTENT_ENUMS = {dtype: enum for enum, dtype in _CONTENT_DTYPES.items()}


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
    dtype = _CONTENT_DTYPES.get(proto.dtype)
    content = proto.tensor_content
    if dtype is not None and content and len(content) == math.prod(dims) * dtype.itemsize:
        return np.frombuffer(content, dtype=dtype).reshape(dims)  # what make_ndarray reads, less its copy
    try:
        return tf.make_ndarray(proto)
    except (ValueError, TypeError) as err:
        raise invalid_argument(f'input "{spec.name}": malformed TensorProto ({err})') from None


def to_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """`tf.make_tensor_proto(array)`, the same message, built directly for numeric arrays of 2 or more values.

    make_tensor_proto spends about 140 us on checks and dtype lookups for a (32, 10) float32 array; this, 5 us.
    It stores such arrays as tensor_content (their bytes); scalars and other dtypes go through it.
    """
    enum = _CONTENT_ENUMS.get(array.dtype)
    if enum is None or array.size < 2:
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(dtype=enum, tensor_content=array.tobytes())
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape)
    return proto


class Undecodable:
    """A request body that is not the method's protocol buffer: answered INVALID_ARGUMENT, as any bad request is."""

    def __init__(self, message_type: type[Message], error: DecodeError) -> None:
        self.message = f"the request is not a {message_type.DESCRIPTOR.full_name} ({error})"


def _parser(message_type: type[Message]) -> Callable[[bytes], Message | Undecodable]:
    """The request deserializer: the message, or an Undecodable (gRPC would answer UNKNOWN and log a traceback)."""

    def parse(data: bytes) -> Message | Undecodable:
        try:
            return message_type.FromString(data)
        except DecodeError as err:
            return Undecodable(message_type, err)

    return parse


def _decoded(method: Callable[..., Message]) -> Callable[..., Message]:
    """`method` behind a check that its request was decoded."""

    def call(request: Message | Undecodable, context: grpc.ServicerContext) -> Message:
        if isinstance(request, Undecodable):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        return method(request, context)

    return call


def _handler(service: str, methods: dict[str, tuple[Callable, type[Message], type[Message]]]) -> grpc.GenericRpcHandler:
    """The unary methods of `service` by name: (coroutine, request type, response type). Others: UNIMPLEMENTED."""
    return grpc.method_handlers_generic_handler(
        service,
        {
            name: grpc.unary_unary_rpc_method_handler(
                _decoded(method), request_deserializer=_parser(request), response_serializer=response.SerializeToString
            )
            for name, (method, request, response) in methods.items()
        },
    )


class PredictionService:
    """Predict and GetModelMetadata (gRPC answers UNIMPLEMENTED to Classify, Regress and MultiInference)."""

    def __init__(self, registry: ModelRegistry, max_elements: int) -> None:
        self.registry, self.max_elements = registry, max_elements

    def Predict(  # noqa: N802 (the gRPC method's name)
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        try:
            return self._predict(request, context)
        except ServingError as err:
            context.abort(err.code, err.message)
        except CancelledError:  # the client hung up while its request waited for a batch
            context.abort(grpc.StatusCode.CANCELLED, "the client cancelled the call")

    def _predict(
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        loaded = self.registry.resolve(*_target(request.model_spec))
        signature = loaded.signature(request.model_spec.signature_name or DEFAULT_SIGNATURE)
        signature.check_names(request.inputs)
        inputs = {k: to_array(v, signature.inputs[k], self.max_elements) for k, v in request.inputs.items()}
        wanted = list(request.output_filter) or list(signature.outputs)
        unknown = [name for name in wanted if name not in signature.outputs]
        if unknown:
            raise invalid_argument(f"output_filter names {unknown[0]!r}; the outputs are {sorted(signature.outputs)}")
        inputs = signature.check_inputs(inputs)
        pending = loaded.submit(signature.name, inputs)
        if pending is not None:  # batched: the batcher's thread runs the model while this thread waits
            context.add_callback(pending.cancel)  # a call that ends first (hang-up) leaves the batch it waits for
            outputs = pending.result()
        else:
            outputs = loaded.predict(signature.name, inputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = loaded.name
        response.model_spec.version.value = loaded.version
        response.model_spec.signature_name = signature.name
        for name in wanted:
            response.outputs[name].CopyFrom(to_proto(outputs[name]))
        return response

    def GetModelMetadata(  # noqa: N802 (the gRPC method's name)
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        try:
            loaded = self.registry.resolve(*_target(request.model_spec))
            return protos.metadata_response(loaded, list(request.metadata_field))
        except ServingError as err:
            context.abort(err.code, err.message)


class ModelService:
    """GetModelStatus (gRPC answers UNIMPLEMENTED to HandleReloadConfigRequest: edit models.config instead)."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def GetModelStatus(  # noqa: N802 (the gRPC method's name)
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        try:
            return protos.status_response(self.registry.status(*_target(request.model_spec)))
        except ServingError as err:
            context.abort(err.code, err.message)


class GrpcServer:
    """Both services on grpcio's threaded server (`workers` calls at a time); `stop` ends both.

    Raises:
        OSError: the port cannot be bound (in use, or a host that is not this machine's).
    """

    def __init__(
        self,
        registry: ModelRegistry,
        host: str,
        port: int,
        max_message_bytes: int,
        workers: int = 16,
        share_port: bool = False,
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc")
        self._server = grpc.server(
            self._pool,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.so_reuseport", int(share_port)),  # else a second server on the same port fails
            ],
        )
        prediction = PredictionService(registry, max_message_bytes)
        models = ModelService(registry)
        self._server.add_generic_rpc_handlers(
            (
                _handler(
                    "tensorflow.serving.PredictionService",
                    {
                        "Predict": (prediction.Predict, predict_pb2.PredictRequest, predict_pb2.PredictResponse),
                        "GetModelMetadata": (
                            prediction.GetModelMetadata,
                            get_model_metadata_pb2.GetModelMetadataRequest,
                            get_model_metadata_pb2.GetModelMetadataResponse,
                        ),
                    },
                ),
                _handler(
                    "tensorflow.serving.ModelService",
                    {
                        "GetModelStatus": (
                            models.GetModelStatus,
                            get_model_status_pb2.GetModelStatusRequest,
                            get_model_status_pb2.GetModelStatusResponse,
                        ),
                    },
                ),
            )
        )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.port = self._server.add_insecure_port(address)
        except RuntimeError as err:
            raise OSError(f"cannot listen for gRPC on {address} ({err})") from None
        if not self.port:
            raise OSError(f"cannot listen for gRPC on {address}")
        self._server.start()

    def stop(self, grace: float) -> None:
        """Stop answering (calls in flight get `grace` seconds), then end the pool's threads."""
        self._server.stop(grace).wait(timeout=grace + 10)
        self._pool.shutdown(wait=False)


def start_grpc_server(
    registry: ModelRegistry, host: str, port: int, max_message_bytes: int, share_port: bool = False
) -> tuple[GrpcServer, int]:
    """Serve both services on host:port (0: any free port); returns the running server and its port.

    With `share_port`, other processes may bind the same port (SO_REUSEPORT; see grpc_processes.py).

    Raises:
        OSError: the port cannot be bound (in use, or a host that is not this machine's).
    """
    server = GrpcServer(registry, host, port, max_message_bytes, share_port=share_port)
    return server, server.port

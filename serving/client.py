"""Send an image or a JSON body to a served model over REST or gRPC, and print its answer as JSON.

    python -m serving.client --model mnist --image digit.png            # REST, 127.0.0.1:8501
    python -m serving.client --model mnist --image digit.png --grpc     # gRPC, 127.0.0.1:8500
    python -m serving.client --model mnist --json body.json             # {"instances": ...} or {"inputs": ...}

It speaks TF Serving's APIs only, so it works the same against `make serve` and
the tensorflow/serving container. An image becomes the model's input through the
project's own preprocessing when `projects/<model>/demo.py` has one (mnist: the
digit is made to look like MNIST); otherwise it is resized to the input's height
and width with values in [0, 1].
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common import registry
from common.runtime import quiet_tensorflow

from .errors import ServingError
from .json_tensors import COLUMNAR, DEFAULT_SIGNATURE, PredictBody, parse_body, to_inputs, to_response

if TYPE_CHECKING:
    from .signatures import Signature

START_HINT = "start one with `make serve` (or: docker compose -f serving/docker-compose.yml up)"


class ClientError(Exception):
    """The request failed; the message says why."""


def generic_image(path: Path, signature: Signature) -> dict[str, np.ndarray]:
    """An image resized for a signature's one image input, (1, height, width[, channels]), in [0, 1] if float."""
    from PIL import Image, UnidentifiedImageError

    (name, spec), *others = signature.inputs.items()
    shape = spec.shape
    if others or shape is None or len(shape) not in (3, 4) or None in shape[1:3] or shape[3:] not in ((), (1,), (3,)):
        raise ClientError("--image needs one input of shape (batch, height, width[, 1 or 3]); send --json instead")
    mode = "RGB" if shape[3:] == (3,) else "L"
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert(mode).resize((shape[2], shape[1])))
    except (UnidentifiedImageError, OSError) as err:
        raise ClientError(f"{path}: not a readable image ({err})") from None
    pixels = pixels.reshape((1, *shape[1:]))
    scaled = pixels / 255.0 if spec.dtype.is_floating else pixels
    return {name: scaled.astype(spec.numpy_dtype)}


def image_request(path: Path, model: str, signature: Signature) -> dict[str, np.ndarray]:
    """The model's input for an image file: the project's preprocessing if it has one, else `generic_image`."""
    own = None
    if registry.has_demo(model):
        try:
            own = registry.demo(model).image_inputs(path)
        except ValueError as err:
            raise ClientError(str(err)) from None
    return generic_image(path, signature) if own is None else own


def _model_path(args: argparse.Namespace) -> str:
    path = f"/v1/models/{args.model}"
    if args.version is not None:
        return f"{path}/versions/{args.version}"
    return f"{path}/labels/{args.label}" if args.label else path


def _rest(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    import httpx

    url = f"http://{args.host}:{args.rest_port}{path}"
    try:
        response = httpx.request(method, url, timeout=args.timeout, **kwargs)
    except httpx.TransportError as err:
        raise ClientError(f"no server answers at {url} ({err}); {START_HINT}") from None
    try:
        answer = response.json()
    except ValueError:
        raise ClientError(f"{url} answered {response.status_code} with non-JSON: {response.text[:200]}") from None
    if response.status_code != 200:
        error = answer.get("error", answer) if isinstance(answer, dict) else answer
        raise ClientError(f"{response.status_code}: {error}")
    return answer


def _signature(signature_defs: Any, name: str) -> Signature:
    from .signatures import Signature

    if name not in signature_defs.signature_def:
        known = ", ".join(sorted(signature_defs.signature_def))
        raise ClientError(f'the model has no signature "{name}"; it has {known}')
    return Signature.from_proto(name, signature_defs.signature_def[name])


def rest_predict(args: argparse.Namespace) -> Any:
    """POST :predict with the JSON file as it is, or with the image as columnar `inputs`; returns the answer."""
    if args.json:
        return _rest(args, "POST", _model_path(args) + ":predict", content=args.json.read_bytes())
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2

    metadata = _rest(args, "GET", _model_path(args) + "/metadata")["metadata"]["signature_def"]
    signature = _signature(json_format.ParseDict(metadata, get_model_metadata_pb2.SignatureDefMap()), args.signature)
    inputs = image_request(args.image, args.model, signature)
    body = {"signature_name": args.signature, "inputs": {k: _json_values(v) for k, v in inputs.items()}}
    return _rest(args, "POST", _model_path(args) + ":predict", json=body)


def _json_values(array: np.ndarray) -> Any:
    """An input array as JSON: nested lists, with binary strings (e.g. image files) as TF Serving's {"b64": ...}."""
    if array.dtype == object:
        return [_json_values(v) if isinstance(v, np.ndarray) else {"b64": base64.b64encode(v).decode()} for v in array]
    return array.tolist()


def grpc_predict(args: argparse.Namespace) -> Any:
    """PredictionService.Predict with the official stub; returns the answer in REST's JSON shape."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

    address = f"{args.host}:{args.grpc_port}"
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(address))
    try:
        metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        metadata_request.model_spec.MergeFrom(_model_spec(args))
        metadata = stub.GetModelMetadata(metadata_request, timeout=args.timeout)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        metadata.metadata["signature_def"].Unpack(signature_defs)
        body = parse_body(args.json.read_bytes()) if args.json else PredictBody(args.signature, COLUMNAR, None)
        signature = _signature(signature_defs, body.signature_name)
        inputs = to_inputs(body, signature) if args.json else image_request(args.image, args.model, signature)
        request = predict_pb2.PredictRequest()
        request.model_spec.MergeFrom(_model_spec(args))
        request.model_spec.signature_name = signature.name
        for name, array in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
        response = stub.Predict(request, timeout=args.timeout)
    except grpc.RpcError as err:
        hint = f"; {START_HINT}" if err.code() == grpc.StatusCode.UNAVAILABLE else ""
        raise ClientError(f"{err.code().name}: {err.details()} ({address}){hint}") from None
    outputs = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
    return to_response(outputs, body.format)


def _model_spec(args: argparse.Namespace) -> Any:
    from tensorflow_serving.apis import model_pb2

    spec = model_pb2.ModelSpec(name=args.model, version_label=args.label or "")
    if args.version is not None:
        spec.version.value = args.version
    return spec


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m serving.client`."""
    parser = argparse.ArgumentParser(prog="python -m serving.client", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the model's name in the repository, e.g. mnist")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", type=Path, help="an image file, made into the model's input")
    source.add_argument("--json", type=Path, help='a TF Serving REST body: {"instances": [...]} or {"inputs": ...}')
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="a version number (default: the latest served)")
    which.add_argument("--label", help="a version label from models.config, e.g. stable")
    parser.add_argument("--signature", default=DEFAULT_SIGNATURE, help="for --image (a JSON body names its own)")
    parser.add_argument("--grpc", action="store_true", help="use gRPC (PredictionService) instead of REST")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rest-port", type=int, default=8501)
    parser.add_argument("--grpc-port", type=int, default=8500)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds")
    args = parser.parse_args(argv)
    for path in (args.image, args.json):
        if path is not None and not path.is_file():
            parser.error(f"{path}: no such file")

    quiet_tensorflow()
    try:
        answer = grpc_predict(args) if args.grpc else rest_predict(args)
    except (ClientError, ServingError) as err:
        sys.exit(f"error: {err}")
    print(json.dumps(answer))


if __name__ == "__main__":
    main()

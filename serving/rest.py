"""TF Serving's REST API over a ModelRegistry, as a FastAPI app.

    GET  /v1/models/<name>[/versions/<v> | /labels/<label>]             model_version_status
    GET  /v1/models/<name>[/versions/<v> | /labels/<label>]/metadata    signature_def
    POST /v1/models/<name>[/versions/<v> | /labels/<label>]:predict     {"instances": ...} or {"inputs": ...}

Every error is `{"error": "..."}` with TF Serving's HTTP status (400 invalid
argument, 404 not found), or 413 for a body over `max_request_bytes`.

Predict, the one call that carries load, is answered by a plain ASGI handler in
front of the FastAPI app (`PredictFastPath`): FastAPI's routing, dependency and
middleware layers took 0.6 ms of the 1.4 ms a request spent on the event loop, and its
sync endpoints hop to a worker thread that then waits on the batcher's thread. Here
the event loop reads and parses the body and awaits the batcher's future, so a
request crosses one thread boundary, to the model and back. Everything else
(status, metadata, 404, 405) is the FastAPI app's, unchanged.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from . import protos
from .errors import ServingError, invalid_argument
from .json_tensors import encode_response, parse_body, to_inputs
from .registry import ModelRegistry

MODEL_PATHS = ("/v1/models/{name}", "/v1/models/{name}/versions/{version}", "/v1/models/{name}/labels/{label}")
ENDPOINTS = (
    "GET /v1/models/<name>[/versions/<v>|/labels/<label>][/metadata], "
    "POST /v1/models/<name>[/versions/<v>|/labels/<label>]:predict"
)


def json_response(payload: Any, status_code: int = 200) -> Response:
    """JSON as TF Serving writes it (NaN and Infinity included, which Starlette's JSONResponse refuses)."""
    return Response(json.dumps(payload), status_code=status_code, media_type="application/json")


def _checked_target(params: dict[str, str]) -> tuple[str, int | None, str | None]:
    """(model name, version or None, label or None) from the path's parameters."""
    version = params.get("version")
    if version is not None and not (version.isascii() and version.isdigit() and len(version) <= 18):
        raise invalid_argument(f"Failed to convert version: {version} to numeric.")
    return params["name"], int(version) if version is not None else None, params.get("label")


def _target(request: Request) -> tuple[str, int | None, str | None]:
    """(model name, version or None, label or None) from the path."""
    return _checked_target(request.path_params)


def _too_large(size: int, limit: int) -> HTTPException:
    return HTTPException(
        413,
        f"request body of {size:,} bytes or more is over the limit of {limit:,}; send smaller batches "
        "or start the server with a larger --max-request-mb",
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, read no further than `limit` bytes: over it, a 413."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(len(body), limit)
    return bytes(body)


def run_predict(registry: ModelRegistry, target: tuple[str, int | None, str | None], body: bytes) -> bytes:
    """A predict request from body to answer, in the calling thread: the JSON of the outputs, or a ServingError."""
    request = parse_body(body)
    loaded = registry.resolve(*target)
    signature = loaded.signature(request.signature_name)
    inputs = signature.check_inputs(to_inputs(request, signature))
    return encode_response(loaded.predict(signature.name, inputs), request.format)


# The predict routes as Starlette compiles them (`{param}` is `[^/]+`), matched against the same decoded path.
_PREDICT_PATHS = tuple(
    re.compile(path.replace("{", "(?P<").replace("}", ">[^/]+)") + ":predict") for path in MODEL_PATHS
)


class _DisconnectedError(Exception):
    """The client went away before sending the whole body: there is no one to answer."""


class PredictFastPath:
    """`POST ...:predict` answered directly (see the module's docstring); every other request goes to `app`."""

    def __init__(self, app: ASGIApp, registry: ModelRegistry, max_request_bytes: int) -> None:
        self.app, self.registry, self.limit = app, registry, max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for pattern in _PREDICT_PATHS:
                match = pattern.fullmatch(scope["path"])
                if match:
                    await self._predict(match.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _receive_body(self, scope: Scope, receive: Receive) -> bytes:
        """The body, read no further than the limit: over it, a 413 (as `_read_body`)."""
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                raise _too_large(int(value), self.limit)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _DisconnectedError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise _too_large(size, self.limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _answer(self, params: dict[str, str], scope: Scope, receive: Receive) -> bytes:
        target = _checked_target(params)
        body = await self._receive_body(scope, receive)
        request = parse_body(body)  # on the event loop: it holds the GIL either way, and a thread hop costs more
        loaded = self.registry.resolve(*target)
        signature = loaded.signature(request.signature_name)
        inputs = signature.check_inputs(to_inputs(request, signature))
        pending = loaded.submit(signature.name, inputs)
        if pending is not None:  # batched: the batcher's thread runs the model, this coroutine waits without a thread
            outputs = await asyncio.wrap_future(pending)
        else:
            outputs = await run_in_threadpool(loaded.predict, signature.name, inputs)
        return encode_response(outputs, request.format)

    async def _predict(self, params: dict[str, str], scope: Scope, receive: Receive, send: Send) -> None:
        try:
            payload, status = await self._answer(params, scope, receive), 200
        except ServingError as err:
            payload, status = _error_json(err.message), err.http_status
        except HTTPException as err:  # the 413
            payload, status = _error_json(err.detail), err.status_code
        except _DisconnectedError:
            return
        headers = [(b"content-length", str(len(payload)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _error_json(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def create_app(registry: ModelRegistry, max_request_bytes: int) -> PredictFastPath:
    """The REST app: status, metadata and predict for every model in `registry`."""
    app = FastAPI(title="TF Serving REST API", docs_url=None, redoc_url=None, openapi_url=None)

    def model_status(request: Request) -> Response:
        return json_response(protos.status_json(registry.status(*_target(request))))

    def model_metadata(request: Request) -> Response:
        return json_response(protos.metadata_json(registry.resolve(*_target(request))))

    async def predict(request: Request) -> Response:  # reached only if PredictFastPath is bypassed
        target = _target(request)
        body = await _read_body(request, max_request_bytes)
        answer = await run_in_threadpool(run_predict, registry, target, body)
        return Response(answer, media_type="application/json")

    for path in MODEL_PATHS:
        app.add_api_route(path, model_status, methods=["GET"])
        app.add_api_route(path + "/metadata", model_metadata, methods=["GET"])
        app.add_api_route(path + ":predict", predict, methods=["POST"])

    @app.exception_handler(ServingError)
    async def serving_error(request: Request, err: ServingError) -> Response:
        return json_response({"error": err.message}, err.http_status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> Response:
        message = err.detail
        if err.status_code in (404, 405):
            message = f"{err.detail}: {request.method} {request.url.path}; the API is {ENDPOINTS}"
        return json_response({"error": message}, err.status_code)

    return PredictFastPath(app, registry, max_request_bytes)

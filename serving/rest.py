"""TF Serving's REST API over a ModelRegistry, as a FastAPI app.

    GET  /v1/models/<name>[/versions/<v> | /labels/<label>]             model_version_status
    GET  /v1/models/<name>[/versions/<v> | /labels/<label>]/metadata    signature_def
    POST /v1/models/<name>[/versions/<v> | /labels/<label>]:predict     {"instances": ...} or {"inputs": ...}

Every error is `{"error": "..."}` with TF Serving's HTTP status (400 invalid
argument, 404 not found), or 413 for a body over `max_request_bytes`.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from . import protos
from .errors import ServingError, invalid_argument
from .json_tensors import parse_body, to_inputs, to_response
from .registry import ModelRegistry

MODEL_PATHS = ("/v1/models/{name}", "/v1/models/{name}/versions/{version}", "/v1/models/{name}/labels/{label}")
ENDPOINTS = (
    "GET /v1/models/<name>[/versions/<v>|/labels/<label>][/metadata], "
    "POST /v1/models/<name>[/versions/<v>|/labels/<label>]:predict"
)


def json_response(payload: Any, status_code: int = 200) -> Response:
    """JSON as TF Serving writes it (NaN and Infinity included, which Starlette's JSONResponse refuses)."""
    return Response(json.dumps(payload), status_code=status_code, media_type="application/json")


def _target(request: Request) -> tuple[str, int | None, str | None]:
    """(model name, version or None, label or None) from the path."""
    params = request.path_params
    version = params.get("version")
    if version is not None and not (version.isascii() and version.isdigit() and len(version) <= 18):
        raise invalid_argument(f"Failed to convert version: {version} to numeric.")
    return params["name"], int(version) if version is not None else None, params.get("label")


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


def create_app(registry: ModelRegistry, max_request_bytes: int) -> FastAPI:
    """The REST app: status, metadata and predict for every model in `registry`."""
    app = FastAPI(title="TF Serving REST API", docs_url=None, redoc_url=None, openapi_url=None)

    def model_status(request: Request) -> Response:
        return json_response(protos.status_json(registry.status(*_target(request))))

    def model_metadata(request: Request) -> Response:
        return json_response(protos.metadata_json(registry.resolve(*_target(request))))

    def run_predict(target: tuple[str, int | None, str | None], body: bytes) -> str:
        request = parse_body(body)
        loaded = registry.resolve(*target)
        signature = loaded.signature(request.signature_name)
        inputs = signature.check_inputs(to_inputs(request, signature))
        return json.dumps(to_response(loaded.predict(signature.name, inputs), request.format))

    async def predict(request: Request) -> Response:
        target = _target(request)
        body = await _read_body(request, max_request_bytes)
        return Response(await run_in_threadpool(run_predict, target, body), media_type="application/json")

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

    return app

"""The one error type a request can get, with TF Serving's status code and the HTTP status that code maps to."""

from __future__ import annotations

import grpc

# TF Serving's mapping of status codes to HTTP (tensorflow_serving/model_servers/http_server.cc).
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
}


class ServingError(Exception):
    """A request that cannot be served: REST answers `{"error": message}` with `http_status`, gRPC aborts with `code`.

    `code` is TF Serving's status for the failure.
    """

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


def invalid_argument(message: str) -> ServingError:
    """A malformed request: HTTP 400."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    """An unknown model or version: HTTP 404."""
    return ServingError(grpc.StatusCode.NOT_FOUND, message)

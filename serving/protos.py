"""TF Serving's model status and metadata answers, built once as protos: gRPC sends them, REST sends their JSON.

REST's JSON is TF Serving's: `{"model_version_status": [{"version": "1", "state": "AVAILABLE",
"status": {"error_code": "OK", "error_message": ""}}]}` and
`{"model_spec": {...}, "metadata": {"signature_def": {"signature_def": {"serving_default": {...}}}}}`.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from .errors import invalid_argument
from .model_version import LoadedVersion
from .registry import VersionStatus

SIGNATURE_DEF = "signature_def"  # the one metadata field TF Serving supports


def status_response(statuses: list[VersionStatus]) -> get_model_status_pb2.GetModelStatusResponse:
    """GetModelStatusResponse: one ModelVersionStatus per version, error UNKNOWN with the message if it failed."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for status in statuses:
        entry = response.model_version_status.add()
        entry.version = status.version
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(status.state)
        entry.status.error_code = error_codes_pb2.UNKNOWN if status.error else error_codes_pb2.OK
        entry.status.error_message = status.error
    return response


def metadata_response(
    loaded: LoadedVersion, fields: list[str] | None = None
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """GetModelMetadataResponse with the version's SignatureDefMap; `fields` must name `signature_def` (gRPC)."""
    if fields is not None and set(fields) != {SIGNATURE_DEF}:
        raise invalid_argument(
            f"metadata_field must be [{SIGNATURE_DEF!r}] (the only one supported), got {list(fields)}"
        )
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = loaded.name
    response.model_spec.version.value = loaded.version
    response.metadata[SIGNATURE_DEF].Pack(loaded.signature_defs)
    return response


def _to_dict(message: Any, proto_names: bool) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=proto_names, always_print_fields_with_no_presence=True
    )


def status_json(statuses: list[VersionStatus]) -> dict[str, Any]:
    """The REST answer of GET /v1/models/<name>[/versions/<v>]."""
    return _to_dict(status_response(statuses), proto_names=False)  # the proto's json_names are snake_case already


def metadata_json(loaded: LoadedVersion) -> dict[str, Any]:
    """The REST answer of GET /v1/models/<name>[/versions/<v>]/metadata."""
    response = metadata_response(loaded)
    return {
        "model_spec": _to_dict(response.model_spec, proto_names=True),
        "metadata": {SIGNATURE_DEF: _to_dict(loaded.signature_defs, proto_names=True)},
    }

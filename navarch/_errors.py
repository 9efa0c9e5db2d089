"""Errors the SDK raises, one class per Kubernetes status reason, built from gRPC statuses.

The server sends google.rpc.Status details: ``BadRequest`` field violations for invalid
objects, ``ErrorInfo`` with a Kubernetes-style reason. ``from_rpc_error`` turns an
``AioRpcError`` into the matching class, keeping the code, message and violations.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "AlreadyExists", "ApiError", "Conflict", "FieldViolation", "Forbidden", "Gone", "Invalid",
    "NotFound", "ServerUnavailable", "TooManyRequests", "Unauthorized", "from_rpc_error",
]


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of an invalid object."""

    field: str
    description: str


class ApiError(Exception):
    """A request the API server refused or could not serve."""

    def __init__(self, code: grpc.StatusCode, message: str,
                 violations: tuple[FieldViolation, ...] = (), reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.violations = violations
        self.reason = reason


class NotFound(ApiError):
    """NOT_FOUND: no such object (or resource)."""


class AlreadyExists(ApiError):
    """ALREADY_EXISTS: the name is taken."""


class Conflict(ApiError):
    """ABORTED: the object changed since it was read; read it again and retry."""


class Invalid(ApiError):
    """INVALID_ARGUMENT: see ``violations`` for each bad field."""


class Gone(ApiError):
    """OUT_OF_RANGE: the resourceVersion is compacted; list again."""


class Forbidden(ApiError):
    """PERMISSION_DENIED or FAILED_PRECONDITION: not allowed (now)."""


class TooManyRequests(ApiError):
    """RESOURCE_EXHAUSTED: not now (an eviction that the pod's disruption budget refuses,
    HTTP 429 in Kubernetes); retry later."""


class Unauthorized(ApiError):
    """UNAUTHENTICATED: credentials missing or not valid."""


class ServerUnavailable(ApiError):
    """UNAVAILABLE or DEADLINE_EXCEEDED: the server could not be reached in time."""


_BY_CODE: dict[grpc.StatusCode, type[ApiError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.INVALID_ARGUMENT: Invalid,
    grpc.StatusCode.OUT_OF_RANGE: Gone,
    grpc.StatusCode.PERMISSION_DENIED: Forbidden,
    grpc.StatusCode.FAILED_PRECONDITION: Forbidden,
    grpc.StatusCode.UNAUTHENTICATED: Unauthorized,
    grpc.StatusCode.RESOURCE_EXHAUSTED: TooManyRequests,
    grpc.StatusCode.UNAVAILABLE: ServerUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: ServerUnavailable,
}


def from_rpc_error(err: grpc.aio.AioRpcError) -> ApiError:
    """The SDK error for a failed call, with the server's field violations and reason."""
    violations: list[FieldViolation] = []
    reason = ""
    for key, value in err.trailing_metadata() or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations += [FieldViolation(v.field, v.description)
                               for v in bad.field_violations]
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
    cls = _BY_CODE.get(err.code(), ApiError)
    return cls(err.code(), err.details() or err.code().name, tuple(violations), reason)

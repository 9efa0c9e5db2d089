"""API errors as Kubernetes words them, carried as gRPC status codes with google.rpc details.

Every verb raises ``ApiError``; the gRPC layer turns it into a status with
``google.rpc.Status`` details (``BadRequest`` with one field violation per bad field for
INVALID_ARGUMENT). Messages follow Kubernetes' wording so that users recognise them:
``pods "web" not found``, ``Pod "web" is invalid: [spec.containers[0].image: Required value]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "ApiError", "FieldViolation", "already_exists", "bad_request", "conflict",
    "duplicate", "forbidden", "forbidden_request", "gone", "immutable", "invalid",
    "invalid_object", "not_found", "not_supported", "required", "too_long", "too_many_requests",
]


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: its path (``spec.containers[0].name``) and what is wrong with it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ApiError(Exception):
    """An error a client can act on: a gRPC code, a message, optional field violations."""

    def __init__(self, code: grpc.StatusCode, message: str,
                 violations: Sequence[FieldViolation] = (), reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.violations = tuple(violations)
        self.reason = reason

    def to_status(self) -> status_pb2.Status:
        """The google.rpc.Status carrying this error and its details."""
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        if self.violations:
            detail = error_details_pb2.BadRequest(field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.path, description=v.message)
                for v in self.violations
            ])
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        if self.reason:
            info = error_details_pb2.ErrorInfo(reason=self.reason, domain="navarch.io")
            packed = any_pb2.Any()
            packed.Pack(info)
            status.details.append(packed)
        return status


# --- field violations, in Kubernetes' words ---------------------------------------------

def _quote(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def required(path: str, detail: str = "") -> FieldViolation:
    """``path: Required value``."""
    return FieldViolation(path, "Required value" + (f": {detail}" if detail else ""))


def invalid(path: str, value: object, detail: str) -> FieldViolation:
    """``path: Invalid value: "x": detail``."""
    return FieldViolation(path, f"Invalid value: {_quote(value)}: {detail}")


def not_supported(path: str, value: object, supported: Iterable[str]) -> FieldViolation:
    """``path: Unsupported value: "x": supported values: "a", "b"``."""
    options = ", ".join(_quote(s) for s in supported)
    return FieldViolation(path, f"Unsupported value: {_quote(value)}: supported values: {options}")


def duplicate(path: str, value: object) -> FieldViolation:
    """``path: Duplicate value: "x"``."""
    return FieldViolation(path, f"Duplicate value: {_quote(value)}")


def forbidden(path: str, detail: str) -> FieldViolation:
    """``path: Forbidden: detail``."""
    return FieldViolation(path, f"Forbidden: {detail}")


def immutable(path: str, value: object = None) -> FieldViolation:
    """``path: Invalid value: ...: field is immutable``."""
    if value is None:
        return FieldViolation(path, "field is immutable")
    return invalid(path, value, "field is immutable")


def too_long(path: str, limit: int) -> FieldViolation:
    """``path: Too long: may not be more than N bytes``."""
    return FieldViolation(path, f"Too long: may not be more than {limit} bytes")


# --- whole-request errors -----------------------------------------------------------------

def invalid_object(kind: str, name: str, violations: Sequence[FieldViolation]) -> ApiError:
    """INVALID_ARGUMENT: ``Pod "web" is invalid: [a: ..., b: ...]``, one detail per field."""
    listed = ", ".join(str(v) for v in violations)
    body = listed if len(violations) == 1 else f"[{listed}]"
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, f'{kind} "{name}" is invalid: {body}',
                    violations, reason="Invalid")


def bad_request(message: str, violations: Sequence[FieldViolation] = ()) -> ApiError:
    """INVALID_ARGUMENT for a malformed request (not a bad object)."""
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message, violations, reason="BadRequest")


def not_found(resource: str, name: str) -> ApiError:
    """NOT_FOUND: ``pods "web" not found``."""
    return ApiError(grpc.StatusCode.NOT_FOUND, f'{resource} "{name}" not found',
                    reason="NotFound")


def already_exists(resource: str, name: str) -> ApiError:
    """ALREADY_EXISTS: ``pods "web" already exists``."""
    return ApiError(grpc.StatusCode.ALREADY_EXISTS, f'{resource} "{name}" already exists',
                    reason="AlreadyExists")


def conflict(resource: str, name: str, detail: str = "") -> ApiError:
    """ABORTED: the object changed since it was read."""
    why = detail or ("the object has been modified; please apply your changes to the "
                     "latest version and try again")
    return ApiError(grpc.StatusCode.ABORTED,
                    f'Operation cannot be fulfilled on {resource} "{name}": {why}',
                    reason="Conflict")


def gone(message: str) -> ApiError:
    """OUT_OF_RANGE: the requested resourceVersion is compacted; list again."""
    return ApiError(grpc.StatusCode.OUT_OF_RANGE, message, reason="Expired")


def forbidden_request(message: str) -> ApiError:
    """FAILED_PRECONDITION: the request is well-formed but the cluster's state refuses it."""
    return ApiError(grpc.StatusCode.FAILED_PRECONDITION, message, reason="Forbidden")


def too_many_requests(message: str, reason: str = "TooManyRequests") -> ApiError:
    """RESOURCE_EXHAUSTED (Kubernetes' 429): not now, retry later."""
    return ApiError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, reason=reason)

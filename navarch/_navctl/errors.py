"""Error messages worded as kubectl words them.

``Error from server (NotFound): pods "web" not found``, ``The Deployment "web" is
invalid: spec.replicas: Invalid value: -1: ...`` (one ``* field: problem`` line each when
several fields are bad), ``error: the server doesn't have a resource type "foo"``.
"""

from __future__ import annotations

import re

import grpc

from navarch._errors import ApiError
from navarch._kinds import UnknownKind
from navarch._manifests import ManifestError

__all__ = ["NavctlError", "error_message"]


class NavctlError(Exception):
    """A problem with the command itself (bad flags, a precondition that did not hold);
    printed as ``error: <message>``."""


_REASONS = {
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.ABORTED: "Conflict",
    grpc.StatusCode.INVALID_ARGUMENT: "BadRequest",
    grpc.StatusCode.OUT_OF_RANGE: "Expired",
    grpc.StatusCode.PERMISSION_DENIED: "Forbidden",
    grpc.StatusCode.FAILED_PRECONDITION: "Forbidden",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthorized",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "TooManyRequests",
    grpc.StatusCode.UNIMPLEMENTED: "MethodNotAllowed",
    grpc.StatusCode.UNAVAILABLE: "ServiceUnavailable",
    grpc.StatusCode.DEADLINE_EXCEEDED: "Timeout",
}
_INVALID = re.compile(r'^(?P<kind>[A-Za-z][\w.]*) "(?P<name>[^"]*)" is invalid')
_CONNECT_FAILURE = ("failed to connect", "connection refused", "connect failed",
                    "dns resolution failed", "name resolution")


def _invalid(error: ApiError) -> str | None:
    match = _INVALID.match(error.message)
    if match is None or not error.violations:
        return None
    kind = match["kind"].split(".", 1)[0]  # kubectl names the kind without its group
    prefix = f'The {kind} "{match["name"]}" is invalid: '
    problems = [f"{v.field}: {v.description}" if v.field else v.description
                for v in error.violations]
    if len(problems) == 1:
        return prefix + problems[0]
    return "\n".join([prefix, *(f"* {p}" for p in problems)])


def _api_error(error: ApiError, server: str) -> str:
    if error.code == grpc.StatusCode.UNAVAILABLE and \
            any(s in error.message.lower() for s in _CONNECT_FAILURE):
        return (f"The connection to the server {server} was refused - did you specify the "
                "right host or port?")
    if error.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return (f"Unable to connect to the server {server}: the request timed out "
                "(see --request-timeout)")
    if error.code == grpc.StatusCode.UNAUTHENTICATED:
        return "error: You must be logged in to the server (Unauthorized)"
    if error.code == grpc.StatusCode.INVALID_ARGUMENT:
        invalid = _invalid(error)
        if invalid is not None:
            return invalid
    reason = error.reason or _REASONS.get(error.code, "InternalError")
    if reason == "Invalid":
        reason = "BadRequest" if not error.violations else reason
    return f"Error from server ({reason}): {error.message}"


def error_message(error: BaseException, server: str = "") -> str:
    """What navctl prints (on stderr) for ``error``; several lines for several bad
    fields."""
    if isinstance(error, ApiError):
        if error.code == grpc.StatusCode.UNAVAILABLE and error.message.startswith(
                "no API server given"):
            return f"error: {error.message}"
        return _api_error(error, server)
    if isinstance(error, (NavctlError, ManifestError, UnknownKind)):
        text = str(error.args[0]) if error.args else str(error)
        return f"error: {text}"
    return f"error: {error}"

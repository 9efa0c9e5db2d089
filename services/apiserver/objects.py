"""How objects live in the store: keys, stored bytes, resourceVersions, continue tokens.

- Key: ``/registry/<resource>/<namespace>/<name>``, or ``/registry/<resource>/<name>`` for
  cluster-scoped kinds. A namespace's objects share the prefix ``/registry/<resource>/<ns>/``.
- Value: the kind's message, serialized, with ``metadata.resourceVersion`` empty. The
  resourceVersion is the key's mod_revision and is filled in on the way out.
- Because protobuf merges a message with a later copy of its fields, appending the
  encoding of ``{metadata: {resourceVersion: "N"}}`` to stored bytes yields the object with
  its version without decoding it (``with_resource_version``); every kind keeps
  ``metadata`` at field number 3, which a unit test checks.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, TypeAlias

from navarch._kinds import Kind

from .errors import ApiError, bad_request

__all__ = [
    "METADATA_FIELD",
    "PREFIX",
    "ContinueToken",
    "decode",
    "encode",
    "length_delimited",
    "object_key",
    "parse_resource_version",
    "prefix_end",
    "resource_prefix",
    "with_resource_version",
]

# A message of one of the served kinds. The generic verbs reach its fields by name
# (metadata, spec, status), which no static type can express across kinds.
Obj: TypeAlias = Any

PREFIX = b"/registry/"
METADATA_FIELD = 3
_RESOURCE_VERSION_FIELD = 5


def resource_prefix(kind: Kind, namespace: str = "") -> bytes:
    """The key prefix of every object of ``kind`` (in ``namespace`` when given)."""
    base = PREFIX + kind.resource.encode() + b"/"
    if kind.namespaced and namespace:
        return base + namespace.encode() + b"/"
    return base


def object_key(kind: Kind, namespace: str, name: str) -> bytes:
    """The key of one object."""
    if kind.namespaced:
        return resource_prefix(kind, namespace) + name.encode()
    return resource_prefix(kind) + name.encode()


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key that starts with ``prefix`` (etcd's range_end)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field: int, payload: bytes) -> bytes:
    """``payload`` as protobuf field ``field`` of wire type 2 (bytes, string, message):
    concatenated onto a serialized message, it sets or (repeated) appends that field."""
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def with_resource_version(stored: bytes, revision: int) -> bytes:
    """Stored bytes of any kind, with ``metadata.resourceVersion`` set to ``revision``."""
    version = length_delimited(_RESOURCE_VERSION_FIELD, str(revision).encode())
    return stored + length_delimited(METADATA_FIELD, version)


def encode(obj: Obj) -> bytes:
    """The bytes to store for ``obj``: deterministic, without its resourceVersion.

    Never mutates ``obj``.
    """
    meta = obj.metadata
    if not meta.resource_version:
        return bytes(obj.SerializeToString(deterministic=True))
    saved = meta.resource_version
    meta.resource_version = ""
    try:
        return bytes(obj.SerializeToString(deterministic=True))
    finally:
        meta.resource_version = saved


def decode(kind: Kind, stored: bytes, revision: int) -> Obj:
    """A fresh message of ``kind`` from stored bytes, with its resourceVersion."""
    obj = kind.message()
    obj.ParseFromString(stored)
    obj.metadata.resource_version = str(revision)
    return obj


def parse_resource_version(value: str, what: str = "resourceVersion") -> int:
    """A resourceVersion string as a revision; "" is 0. INVALID_ARGUMENT otherwise."""
    if not value:
        return 0
    if not value.isdigit():
        raise bad_request(f'invalid {what} "{value}": a resourceVersion is a non-negative '
                          "integer as returned by the server")
    return int(value)


@dataclass(frozen=True)
class ContinueToken:
    """Where the next page of a list starts, and the revision all pages share."""

    revision: int
    start: bytes

    def encode(self) -> str:
        """The opaque token handed to clients."""
        body = json.dumps({"v": 1, "rv": self.revision,
                           "start": base64.b64encode(self.start).decode()})
        return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, prefix: bytes) -> ContinueToken:
        """Parse a client's token; it must point inside ``prefix``."""
        try:
            padded = token + "=" * (-len(token) % 4)
            body = json.loads(base64.urlsafe_b64decode(padded.encode()))
            revision = int(body["rv"])
            start = base64.b64decode(body["start"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise _bad_token() from None
        if revision <= 0 or not start.startswith(prefix):
            raise _bad_token()
        return cls(revision, start)


def _bad_token() -> ApiError:
    return bad_request("continue token is not valid: pass the continue value of the "
                       "previous page of the same list unchanged")

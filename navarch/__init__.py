"""Navarch: a Kubernetes-class container cluster manager — the SDK.

    import navarch
    async with navarch.Client() as client:
        for m in navarch.load_manifests(open("web.yaml").read(), "web.yaml"):
            await client.for_object(m.object).create(m.object)

Public names are imported lazily, so that the daemons (``navarch store``…) start without
loading the SDK. Generated messages live in ``navarch.v1`` (``navarch.v1.core_pb2.Pod``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Client": "navarch._client",
    "ResourceClient": "navarch._client",
    "ObjectList": "navarch._client",
    "WatchEvent": "navarch._client",
    "resolve_server": "navarch._client",
    "Informer": "navarch._informer",
    "object_key": "navarch._informer",
    "Manifest": "navarch._manifests",
    "ManifestError": "navarch._manifests",
    "load_manifests": "navarch._manifests",
    "from_dict": "navarch._codec",
    "to_dict": "navarch._codec",
    "FieldError": "navarch._codec",
    "Kind": "navarch._kinds",
    "KINDS": "navarch._kinds",
    "ApiError": "navarch._errors",
    "NotFound": "navarch._errors",
    "AlreadyExists": "navarch._errors",
    "Conflict": "navarch._errors",
    "Invalid": "navarch._errors",
    "Gone": "navarch._errors",
    "Forbidden": "navarch._errors",
    "Unauthorized": "navarch._errors",
    "ServerUnavailable": "navarch._errors",
    "TooManyRequests": "navarch._errors",
}

__all__ = [
    "KINDS", "AlreadyExists", "ApiError", "Client", "Conflict", "FieldError", "Forbidden",
    "Gone", "Informer", "Invalid", "Kind", "Manifest", "ManifestError", "NotFound",
    "ObjectList", "ResourceClient", "ServerUnavailable", "TooManyRequests", "Unauthorized",
    "WatchEvent", "__version__", "from_dict", "load_manifests", "object_key", "resolve_server",
    "to_dict", "v1",
]

if TYPE_CHECKING:
    from navarch import v1
    from navarch._client import Client, ObjectList, ResourceClient, WatchEvent, resolve_server
    from navarch._codec import FieldError, from_dict, to_dict
    from navarch._errors import (
        AlreadyExists,
        ApiError,
        Conflict,
        Forbidden,
        Gone,
        Invalid,
        NotFound,
        ServerUnavailable,
        TooManyRequests,
        Unauthorized,
    )
    from navarch._informer import Informer, object_key
    from navarch._kinds import KINDS, Kind
    from navarch._manifests import Manifest, ManifestError, load_manifests


def __getattr__(name: str) -> Any:
    if name == "v1":
        module = importlib.import_module("navarch.v1")
        for sub in ("api", "apps", "autoscaling", "batch", "coordination", "core", "meta",
                    "metrics"):
            importlib.import_module(f"navarch.v1.{sub}_pb2")
        return module
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'navarch' has no attribute {name!r}")
    value = getattr(importlib.import_module(target), name)
    globals()[name] = value
    return value

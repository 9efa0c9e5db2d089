"""The gRPC face of the API server: navarch.v1.Resources and navarch.v1.Discovery.

Every call goes through ``_admit`` (authentication, then authorization) before its verb
runs, and every ApiError becomes a gRPC status with google.rpc details. Responses are
serialized by hand where the server already holds serialized objects (lists, watch
events), so that fan-out to many watchers costs no re-encoding.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import platform
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import structlog
from google.protobuf import any_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from grpc_status import rpc_status
from prometheus_client import Counter, Histogram

import navarch
from navarch._kinds import KINDS, Kind
from navarch.v1 import api_pb2, rbac_pb2

from . import conversion, eviction, objects
from .auth import (
    CURRENT_USER,
    AllowAll,
    AnonymousAuthenticator,
    Attributes,
    Authenticator,
    Authorizer,
    UserInfo,
)
from .errors import ApiError, FieldViolation, bad_request, invalid_object
from .resources import Resources

__all__ = ["DISCOVERY_SERVICE", "RESOURCES_SERVICE", "ApiService"]

log = structlog.get_logger("navarch.apiserver")

RESOURCES_SERVICE = "navarch.v1.Resources"
DISCOVERY_SERVICE = "navarch.v1.Discovery"

REQUESTS = Counter("navarch_apiserver_requests_total", "API requests by verb, resource and code",
                   ["verb", "resource", "code"])
LATENCY = Histogram("navarch_apiserver_request_duration_seconds",
                    "API request latency by verb and resource", ["verb", "resource"],
                    buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
WATCHERS = Counter("navarch_apiserver_watches_total", "Watch streams opened by resource",
                   ["resource"])

R = TypeVar("R")


def _pack(obj: Message) -> bytes:
    """A serialized ObjectResponse holding ``obj``."""
    return api_pb2.ObjectResponse(object=_any(obj)).SerializeToString()


def _any(obj: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(obj)
    return packed


def _unpack(packed: any_pb2.Any, field: str = "object") -> Message:
    """The message inside an Any; INVALID_ARGUMENT when absent or unknown."""
    if not packed.type_url:
        raise bad_request(f"{field} is required: an Any holding the object")
    full_name = packed.type_url.rsplit("/", 1)[-1]
    try:
        desc = descriptor_pool.Default().FindMessageTypeByName(full_name)
    except KeyError:
        raise bad_request(f'{field}: unknown type "{full_name}"; see navctl api-resources '
                          "for the served kinds") from None
    msg = message_factory.GetMessageClass(desc)()
    try:
        msg.ParseFromString(packed.value)
    except DecodeError as exc:
        raise bad_request(f"{field}: not a valid serialized {full_name}: {exc}") from None
    return msg


def _in_version(resources: Resources, resource: str, api_version: str, obj: Message) -> Message:
    """``obj`` (stored form) as the caller's apiVersion asks; Scale and Pod views pass."""
    if not api_version:
        return obj
    kind = resources.kind(resource)
    version = conversion.served_kind(kind, api_version)
    if obj.DESCRIPTOR.full_name != kind.message_type:
        return obj
    converted: Message = conversion.from_storage(obj, version)
    return converted


async def _converted_events(batches: AsyncGenerator[list[bytes], None], kind: Kind,
                            version: Kind) -> AsyncGenerator[builtins.list[bytes], None]:
    """Batches of serialized WatchEvents of ``kind`` re-encoded with their objects in
    ``version``."""
    def convert(data: bytes) -> bytes:
        event = api_pb2.WatchEvent.FromString(data)
        if event.type == "BOOKMARK":
            # only metadata.resourceVersion: the same bytes read in every version
            event.object.type_url = f"type.googleapis.com/{version.message_type}"
        else:
            stored = kind.message.FromString(event.object.value)
            event.object.Pack(conversion.from_storage(stored, version))
        return event.SerializeToString()

    async with contextlib.aclosing(batches):
        async for batch in batches:
            yield [convert(data) for data in batch]


def encode_event_batch(batch: builtins.list[bytes]) -> bytes:
    """A serialized WatchEventBatch of serialized WatchEvents, framed without decoding
    them: its ``events`` field once per event."""
    field = api_pb2.WatchEventBatch.EVENTS_FIELD_NUMBER
    return b"".join(objects.length_delimited(field, data) for data in batch)


class ApiService:
    """Handlers for the Resources and Discovery services over one ``Resources``."""

    def __init__(self, resources: Resources, *, authenticator: Authenticator | None = None,
                 authorizer: Authorizer | None = None, bookmark_interval: float = 60.0,
                 git_commit: str = "") -> None:
        self.resources = resources
        self.authenticator = authenticator or AnonymousAuthenticator()
        self.authorizer = authorizer or AllowAll()
        self.bookmark_interval = bookmark_interval
        self.git_commit = git_commit

    # --- plumbing -----------------------------------------------------------------------

    def _admit(self, context: grpc.aio.ServicerContext[Any, Any],
               attrs: Attributes) -> UserInfo:
        """Authenticate and authorize; the single gate of every request. The caller is
        kept in ``CURRENT_USER`` for the checks that need it later (RBAC escalation)."""
        metadata = tuple(context.invocation_metadata() or ())
        user = self.authenticator.authenticate(metadata)
        if user is None:
            raise ApiError(grpc.StatusCode.UNAUTHENTICATED, "Unauthorized",
                           reason="Unauthorized")
        CURRENT_USER.set(user)
        decision = self.authorizer.authorize(user, attrs)
        if not decision.allowed:
            raise forbidden_message(user, attrs, decision.reason)
        return user

    async def _call(self, context: grpc.aio.ServicerContext[Any, Any], verb: str,
                    resource: str, body: Callable[[], Awaitable[R]]) -> R:
        start = time.perf_counter()
        code = "OK"
        try:
            return await body()
        except ApiError as exc:
            code = exc.code.name
            await context.abort_with_status(rpc_status.to_status(exc.to_status()))
            raise  # not reached: abort raises
        except (asyncio.CancelledError, grpc.aio.AbortError):
            code = "CANCELLED"
            raise
        except Exception as exc:
            code = "INTERNAL"
            log.exception("request failed", verb=verb, resource=resource)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {exc}")
            raise
        finally:
            REQUESTS.labels(verb, resource, code).inc()
            LATENCY.labels(verb, resource).observe(time.perf_counter() - start)

    def _attrs(self, verb: str, resource: str, subresource: str, namespace: str,
               name: str, *, collection: bool = False) -> Attributes:
        """The request's attributes; for a collection (list, watch) no namespace means
        every namespace, for one object it means "default". A verb the resource does not
        serve is refused here (Kubernetes' 405)."""
        kind = self.resources.kind(resource)
        if not subresource and verb not in kind.verbs:
            raise ApiError(grpc.StatusCode.UNIMPLEMENTED, "the server does not allow this "
                           f"method on the requested resource ({verb} {kind.group_resource})",
                           reason="MethodNotAllowed")
        if not kind.namespaced:
            ns = ""
        else:
            ns = namespace if collection else namespace or "default"
        return Attributes(verb, resource, subresource, ns, name, kind.group)

    # --- Resources ----------------------------------------------------------------------

    async def create(self, req: api_pb2.CreateRequest,
                     context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        """Resources.Create."""
        async def body() -> bytes:
            obj = _unpack(req.object)
            meta = getattr(obj, "metadata", None)
            ns = req.namespace or (meta.namespace if meta is not None else "")
            name = req.name if req.subresource else (meta.name if meta is not None else "")
            user = self._admit(context, self._attrs("create", req.resource, req.subresource,
                                                    ns, name))
            if req.resource == "selfsubjectaccessreviews" and not req.subresource:
                return _pack(self._review(user, obj))
            if req.subresource == "binding" and req.resource == "pods":
                return _pack(await self.resources.bind(ns, req.name, obj, dry_run=req.dry_run))
            if req.subresource == "eviction" and req.resource == "pods":
                return _pack(await eviction.evict(self.resources, ns, req.name, obj,
                                                  dry_run=req.dry_run))
            if req.subresource:
                raise bad_request(f'create does not support subresource "{req.subresource}" '
                                  f"of {req.resource}")
            created = await self.resources.create(req.resource, req.namespace, obj,
                                                  dry_run=req.dry_run)
            return _pack(_in_version(self.resources, req.resource, req.api_version, created))
        return await self._call(context, "create", req.resource, body)

    async def get(self, req: api_pb2.GetRequest,
                  context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        """Resources.Get."""
        async def body() -> bytes:
            self._admit(context, self._attrs("get", req.resource, req.subresource,
                                             req.namespace, req.name))
            got = await self.resources.get(req.resource, req.namespace, req.name,
                                           req.subresource)
            return _pack(_in_version(self.resources, req.resource, req.api_version, got))
        return await self._call(context, "get", req.resource, body)

    async def list(self, req: api_pb2.ListRequest,
                   context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        """Resources.List."""
        async def body() -> bytes:
            kind = self.resources.kind(req.resource)
            self._admit(context, self._attrs("list", req.resource, "", req.namespace, "",
                                             collection=True))
            result = await self.resources.list(
                req.resource, req.namespace, label_selector=req.label_selector,
                field_selector=req.field_selector, limit=req.limit,
                continue_token=req.continue_token, resource_version=req.resource_version)
            version = conversion.served_kind(kind, req.api_version)
            type_url = f"type.googleapis.com/{version.message_type}"
            response = api_pb2.ListResponse(resource_version=str(result.revision),
                                            continue_token=result.continue_token)
            if result.remaining is not None:
                response.remaining_item_count = result.remaining
            items = result.items
            if version is not kind:
                items = [conversion.from_storage(kind.message.FromString(item), version)
                         .SerializeToString() for item in items]
            response.items.extend(any_pb2.Any(type_url=type_url, value=item) for item in items)
            return response.SerializeToString()
        return await self._call(context, "list", req.resource, body)

    async def watch(self, req: api_pb2.WatchRequest,
                    context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[bytes]:
        """Resources.Watch: a stream of serialized WatchEvents, one per message."""
        batches = self._watch_batches(req, context)
        async with contextlib.aclosing(batches):
            async for batch in batches:
                for data in batch:
                    yield data

    async def watch_batches(self, req: api_pb2.WatchRequest,
                            context: grpc.aio.ServicerContext[Any, Any]
                            ) -> AsyncIterator[bytes]:
        """Resources.WatchBatches: the same events as Watch, each message a serialized
        WatchEventBatch of every event ready at the time."""
        batches = self._watch_batches(req, context)
        async with contextlib.aclosing(batches):
            async for batch in batches:
                yield encode_event_batch(batch)

    async def _watch_batches(self, req: api_pb2.WatchRequest,
                             context: grpc.aio.ServicerContext[Any, Any]
                             ) -> AsyncGenerator[builtins.list[bytes], None]:
        try:
            kind = self.resources.kind(req.resource)
            self._admit(context, self._attrs("watch", req.resource, "", req.namespace, "",
                                             collection=True))
            batches = self.resources.watch(
                req.resource, req.namespace, label_selector=req.label_selector,
                field_selector=req.field_selector, resource_version=req.resource_version,
                bookmark_interval=self.bookmark_interval if req.allow_watch_bookmarks else 0.0)
            version = conversion.served_kind(kind, req.api_version)
            if version is not kind:
                batches = _converted_events(batches, kind, version)
            WATCHERS.labels(req.resource).inc()
            deadline = time.monotonic() + req.timeout_seconds if req.timeout_seconds > 0 else None
            async with contextlib.aclosing(batches):
                while True:
                    if deadline is None:
                        batch = await anext(batches, None)
                    else:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return
                        try:
                            batch = await asyncio.wait_for(anext(batches, None), left)
                        except TimeoutError:
                            return
                    if batch is None:
                        return
                    yield batch
        except ApiError as exc:
            await context.abort_with_status(rpc_status.to_status(exc.to_status()))

    async def update(self, req: api_pb2.UpdateRequest,
                     context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        """Resources.Update."""
        async def body() -> bytes:
            obj = _unpack(req.object)
            meta = getattr(obj, "metadata", None)
            ns = req.namespace or (meta.namespace if meta is not None else "")
            self._admit(context, self._attrs("update", req.resource, req.subresource, ns,
                                             meta.name if meta is not None else ""))
            updated = await self.resources.update(req.resource, req.namespace, obj,
                                                  subresource=req.subresource,
                                                  dry_run=req.dry_run)
            return _pack(_in_version(self.resources, req.resource, req.api_version, updated))
        return await self._call(context, "update", req.resource, body)

    async def patch(self, req: api_pb2.PatchRequest,
                    context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        """Resources.Patch."""
        async def body() -> bytes:
            self._admit(context, self._attrs("patch", req.resource, req.subresource,
                                             req.namespace, req.name))
            patched = await self.resources.patch(
                req.resource, req.namespace, req.name, req.patch, patch_type=req.patch_type,
                subresource=req.subresource, dry_run=req.dry_run, api_version=req.api_version)
            return _pack(_in_version(self.resources, req.resource, req.api_version, patched))
        return await self._call(context, "patch", req.resource, body)

    async def delete(self, req: api_pb2.DeleteRequest,
                     context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        """Resources.Delete."""
        async def body() -> bytes:
            self._admit(context, self._attrs("delete", req.resource, "", req.namespace,
                                             req.name))
            grace = req.grace_period_seconds if req.HasField("grace_period_seconds") else None
            deleted = await self.resources.delete(
                req.resource, req.namespace, req.name, grace_period_seconds=grace,
                propagation_policy=req.propagation_policy,
                precondition_uid=req.preconditions.uid,
                precondition_resource_version=req.preconditions.resource_version,
                dry_run=req.dry_run)
            return _pack(_in_version(self.resources, req.resource, req.api_version, deleted))
        return await self._call(context, "delete", req.resource, body)

    # --- access reviews -----------------------------------------------------------------

    def _review(self, user: UserInfo, review: Message) -> Message:
        """A SelfSubjectAccessReview answered for ``user`` (nothing is stored)."""
        if not isinstance(review, rbac_pb2.SelfSubjectAccessReview):
            raise bad_request("selfsubjectaccessreviews takes a "
                              "navarch.v1.SelfSubjectAccessReview, got "
                              f"{review.DESCRIPTOR.full_name}")
        spec = review.spec
        if spec.HasField("resource_attributes") == spec.HasField("non_resource_attributes"):
            raise invalid_object("SelfSubjectAccessReview", "", [FieldViolation(
                "spec.resourceAttributes",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified")])
        answered = rbac_pb2.SelfSubjectAccessReview()
        answered.CopyFrom(review)
        answered.api_version, answered.kind = "authorization.k8s.io/v1", \
            "SelfSubjectAccessReview"
        if spec.HasField("resource_attributes"):
            ra = spec.resource_attributes
            attrs = Attributes(ra.verb, ra.resource, ra.subresource, ra.namespace, ra.name,
                               ra.group)
        else:
            nra = spec.non_resource_attributes
            attrs = Attributes(nra.verb, "", path=nra.path)
        decision = self.authorizer.authorize(user, attrs)
        answered.status.allowed = decision.allowed
        answered.status.reason = decision.reason
        return answered

    # --- Discovery ----------------------------------------------------------------------

    async def _admit_path(self, context: grpc.aio.ServicerContext[Any, Any],
                          path: str) -> None:
        """The gate for discovery: a non-resource "get" of ``path``."""
        try:
            self._admit(context, Attributes("get", "", path=path))
        except ApiError as exc:
            await context.abort_with_status(rpc_status.to_status(exc.to_status()))

    async def list_resources(self, req: api_pb2.ListResourcesRequest,
                             context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        """Discovery.ListResources: the storage version of every served resource."""
        await self._admit_path(context, "/apis")
        response = api_pb2.ListResourcesResponse()
        for k in KINDS:
            if not k.storage:
                continue
            response.resources.add(
                name=k.resource, singular_name=k.singular, short_names=k.short_names,
                group=k.group, version=k.version, kind=k.kind, namespaced=k.namespaced,
                verbs=k.verbs, subresources=k.subresources, message_type=k.message_type)
        return response.SerializeToString()

    async def version(self, req: api_pb2.VersionRequest,
                      context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        """Discovery.Version."""
        await self._admit_path(context, "/version")
        machine = platform.machine().lower().replace("x86_64", "amd64").replace("aarch64", "arm64")
        return api_pb2.VersionResponse(
            version=navarch.__version__, git_commit=self.git_commit,
            python_version=platform.python_version(),
            platform=f"{platform.system().lower()}/{machine}").SerializeToString()

    # --- registration -------------------------------------------------------------------

    def handlers(self) -> builtins.list[grpc.GenericRpcHandler]:
        """The generic handlers to add to a grpc.aio server."""
        def unary(fn: Any, request: type[Message]) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=request.FromString, response_serializer=_identity)

        resources = grpc.method_handlers_generic_handler(RESOURCES_SERVICE, {
            "Create": unary(self.create, api_pb2.CreateRequest),
            "Get": unary(self.get, api_pb2.GetRequest),
            "List": unary(self.list, api_pb2.ListRequest),
            "Watch": grpc.unary_stream_rpc_method_handler(
                self.watch, request_deserializer=api_pb2.WatchRequest.FromString,
                response_serializer=_identity),
            "WatchBatches": grpc.unary_stream_rpc_method_handler(
                self.watch_batches, request_deserializer=api_pb2.WatchRequest.FromString,
                response_serializer=_identity),
            "Update": unary(self.update, api_pb2.UpdateRequest),
            "Patch": unary(self.patch, api_pb2.PatchRequest),
            "Delete": unary(self.delete, api_pb2.DeleteRequest),
        })
        discovery = grpc.method_handlers_generic_handler(DISCOVERY_SERVICE, {
            "ListResources": unary(self.list_resources, api_pb2.ListResourcesRequest),
            "Version": unary(self.version, api_pb2.VersionRequest),
        })
        return [resources, discovery]


def _identity(data: bytes) -> bytes:
    return data


def forbidden_message(user: UserInfo, attrs: Attributes, reason: str = "") -> ApiError:
    """PERMISSION_DENIED in Kubernetes' words: ``pods is forbidden: User "x" cannot list
    resource "pods" in API group "" in the namespace "y"``, or for a path ``forbidden:
    User "x" cannot get path "/version"``."""
    tail = f": {reason}" if reason else ""
    if not attrs.resource_request:
        return ApiError(grpc.StatusCode.PERMISSION_DENIED,
                        f'forbidden: User "{user.name}" cannot {attrs.verb} path '
                        f'"{attrs.path}"{tail}', reason="Forbidden")
    where = f' in the namespace "{attrs.namespace}"' if attrs.namespace else \
        " at the cluster scope"
    target = f'{attrs.resource} "{attrs.name}"' if attrs.name else attrs.resource
    sub = f"/{attrs.subresource}" if attrs.subresource else ""
    return ApiError(grpc.StatusCode.PERMISSION_DENIED,
                    f'{target} is forbidden: User "{user.name}" cannot {attrs.verb} '
                    f'resource "{attrs.resource}{sub}" in API group "{attrs.api_group}"'
                    f"{where}{tail}", reason="Forbidden")

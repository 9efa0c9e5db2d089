"""The generic verbs, for every kind: create, get, list, watch, update, patch, delete.

This layer knows the store and the strategies, not gRPC: ``grpc_api.py`` unpacks requests,
authorizes them and calls in here. Contracts:

- Every write is one store transaction that compares the versions it read, so a write
  lands completely or not at all, and two API servers never overwrite each other.
- Writes retry internally only when the client did not pin a resourceVersion; a pinned
  one that moved answers ABORTED.
- An update that changes nothing writes nothing (the resourceVersion stays).
- Objects read from caches are never mutated: verbs copy before changing.
"""

from __future__ import annotations

import builtins
import json
import secrets
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import cast

import grpc
import structlog
from google.protobuf.descriptor import Descriptor

from navarch import _codec, _fields, _labels, _patch
from navarch._kinds import KINDS, Kind, UnknownKind, storage_kind
from navarch._pods import set_condition
from navarch._strategicpatch import apply_strategic_merge_patch
from navarch.v1 import autoscaling_pb2, core_pb2, meta_pb2

from . import conversion, objects
from .allocators import Allocations, ServiceAllocator
from .errors import (
    ApiError,
    FieldViolation,
    already_exists,
    bad_request,
    conflict,
    forbidden_request,
    gone,
    invalid,
    invalid_object,
    not_found,
    required,
)
from .objects import Obj
from .storage import Compacted, Compare, Delete, KeyValue, Op, Put, Store, key_absent, key_at
from .strategy import Strategy, strategy_for
from .watchcache import Predicate, WatchCache

__all__ = [
    "SYSTEM_NAMESPACES", "ListResult", "Resources", "Retry", "check_preconditions",
    "check_propagation", "too_contended",
]

log = structlog.get_logger("navarch.apiserver")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
IMMORTAL_NAMESPACES = frozenset(("default", "kube-system", "kube-public"))
_MAX_RETRIES = 16
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_PROPAGATION = ("Orphan", "Background", "Foreground")


@dataclass(frozen=True)
class ListResult:
    """One page: serialized items (resourceVersion filled in) and where to go next."""

    items: builtins.list[bytes]
    revision: int
    continue_token: str
    remaining: int | None


_LIVE_LOOKUP_SECONDS = 30.0  # Kubernetes' forceLiveLookupTTL


class Retry(Exception):
    """The object moved under an unpinned write: read it again and redo the write."""


class Resources:
    """The verbs over one store. Call ``start`` before serving."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time,
                 service_cidr: str = "10.96.0.0/12", node_ports: tuple[int, int] = (30000, 32767),
                 watch_cache_capacity: int = 10_000) -> None:
        self.store = store
        self.clock = clock
        self.allocator = ServiceAllocator(store, service_cidr, node_ports)
        self.caches: dict[str, WatchCache] = {
            k.resource: WatchCache(k, store, strategy_for(k).describe,
                                   capacity=watch_cache_capacity)
            for k in KINDS if k.storage and "watch" in k.verbs
        }
        # The last check of a create or update, after validation (RBAC's escalation
        # check): raises ApiError to refuse the object.
        self.admission: Callable[[Kind, Obj], None] | None = None
        # Namespaces this server marked for deletion, until when (monotonic) their
        # cached copy is not trusted to say "active": see _check_namespace_open
        self._live_namespace_lookups: dict[str, float] = {}

    async def start(self) -> None:
        """Fill the watch caches and make sure the system namespaces exist."""
        for cache in self.caches.values():
            await cache.start()
        await self.ensure_system_namespaces()

    async def ensure_system_namespaces(self) -> None:
        """Create those of default, kube-system, kube-public and kube-node-lease that are
        missing (Kubernetes' API server does so every minute)."""
        cache = self.caches["namespaces"]
        ns_kind = storage_kind("namespaces")
        for name in SYSTEM_NAMESPACES:
            if cache.get(objects.object_key(ns_kind, "", name)) is not None:
                continue
            ns = core_pb2.Namespace(metadata=meta_pb2.ObjectMeta(name=name))
            try:
                await self.create("namespaces", "", ns)
            except ApiError as exc:
                if exc.code != grpc.StatusCode.ALREADY_EXISTS:
                    raise

    async def stop(self) -> None:
        """Stop the watch caches (closing every client watch)."""
        for cache in self.caches.values():
            await cache.stop()

    # --- helpers ------------------------------------------------------------------------

    @staticmethod
    def kind(resource: str) -> Kind:
        """The storage kind of a plural resource name; NOT_FOUND when not served."""
        try:
            return storage_kind(resource)
        except UnknownKind as exc:
            raise ApiError(grpc.StatusCode.NOT_FOUND, str(exc), reason="NotFound") from None

    @staticmethod
    def namespace_of(kind: Kind, requested: str, in_object: str = "") -> str:
        """The namespace a request acts in: the request's, else the object's, else
        "default" ("" for cluster-scoped kinds); BadRequest when the two differ."""
        if not kind.namespaced:
            return ""
        if requested and in_object and requested != in_object:
            raise bad_request("the namespace of the provided object does not match the "
                              f'namespace sent on the request ("{in_object}" vs "{requested}")')
        return requested or in_object or "default"

    def _now(self, meta_time: Obj, offset: float = 0.0) -> None:
        _set_time(meta_time, self.clock() + offset)

    async def read(self, kind: Kind, key: bytes, name: str) -> tuple[KeyValue, Obj]:
        """The object at ``key`` from the store (linearizable); NOT_FOUND when absent."""
        kv = await self.store.get(key)
        if kv is None:
            raise not_found(kind.group_resource, name)
        return kv, objects.decode(kind, kv.value, kv.mod_revision)

    def _cached_read(self, kind: Kind, key: bytes, pinned: str = ""
                     ) -> tuple[KeyValue, Obj] | None:
        """The object as the watch cache holds it, for the first attempt of a write: the
        write's transaction compares its mod_revision, so a stale copy only costs a retry
        (from the store). None when the cache lacks it or a pinned resourceVersion differs
        (the cache may lag the store: only the store can say "not found" or "conflict")."""
        cache = self.caches.get(kind.resource)
        found = cache.get(key) if cache is not None else None
        if found is None or (pinned and pinned != str(found.revision)):
            return None
        kv = KeyValue(key, found.stored, 0, found.revision, 0)
        return kv, objects.decode(kind, found.stored, found.revision)

    def _check_subresource(self, kind: Kind, subresource: str, allowed: Sequence[str]) -> None:
        if subresource and (subresource not in kind.subresources or subresource not in allowed):
            raise ApiError(grpc.StatusCode.NOT_FOUND,
                           f'the server could not find the requested resource '
                           f'("{kind.resource}/{subresource}" does not support this verb)',
                           reason="NotFound")

    def _validated(self, st: Strategy, obj: Obj, problems: builtins.list[FieldViolation]) -> None:
        if problems:
            raise invalid_object(st.kind.group_kind, obj.metadata.name, problems)

    def _look_up_live(self, namespace: str) -> None:
        """As Kubernetes' NamespaceLifecycle admission: after a namespace delete through
        this server, creates in it read the namespace from the store for a while, so that
        a client's next create sees the deletion. Expired entries go here, so the map
        holds only the namespaces deleted in the last ``_LIVE_LOOKUP_SECONDS``."""
        now = time.monotonic()
        lookups = self._live_namespace_lookups
        for expired in [n for n, until in lookups.items() if until <= now]:
            del lookups[expired]
        lookups[namespace] = now + _LIVE_LOOKUP_SECONDS

    async def _check_namespace_open(self, kind: Kind, namespace: str) -> None:
        if not kind.namespaced:
            return
        ns_kind = storage_kind("namespaces")
        key = objects.object_key(ns_kind, "", namespace)
        cached = self.caches["namespaces"].get(key)
        ns = cached.obj if cached is not None else None
        if (ns is not None and not _terminating(ns)
                and self._live_namespace_lookups.get(namespace, 0.0) > time.monotonic()):
            ns = None  # marked by us a moment ago: the cache may not show it yet
        if ns is None:
            kv = await self.store.get(key)
            if kv is None:
                raise not_found("namespaces", namespace)
            ns = objects.decode(ns_kind, kv.value, kv.mod_revision)
        if _terminating(ns):
            raise forbidden_request(f"unable to create new content in namespace {namespace} "
                                    "because it is being terminated")

    # --- create -------------------------------------------------------------------------

    async def create(self, resource: str, namespace: str, obj: Obj, *,
                     dry_run: bool = False) -> Obj:
        """Store a new object; returns it as stored (uid, resourceVersion, defaults)."""
        kind = self.kind(resource)
        st = strategy_for(kind)
        new = conversion.to_storage(kind, obj)
        meta = new.metadata
        meta.namespace = self.namespace_of(kind, namespace, meta.namespace)
        if not meta.name and meta.generate_name:
            meta.name = meta.generate_name + "".join(
                secrets.choice(_NAME_ALPHABET) for _ in range(5))
        new.api_version, new.kind = kind.api_version, kind.kind
        meta.uid = str(uuid.uuid4())
        meta.resource_version = ""
        self._now(meta.creation_timestamp)
        meta.generation = 1 if st.has_spec else 0
        meta.ClearField("deletion_timestamp")
        meta.ClearField("deletion_grace_period_seconds")
        st.prepare_for_create(new)
        st.default(new)
        problems = st.validate(new)
        if not meta.name and not any(p.path == "metadata.name" for p in problems):
            problems.insert(0, required("metadata.name", "name or generateName is required"))
        self._validated(st, new, problems)
        if self.admission is not None:
            self.admission(kind, new)
        await self._check_namespace_open(kind, meta.namespace)
        key = objects.object_key(kind, meta.namespace, meta.name)
        for _ in range(_MAX_RETRIES):
            attempt = type(new)()
            attempt.CopyFrom(new)
            plan = await self.allocator.plan(kind, attempt, None)
            self._validated(st, attempt, builtins.list(plan.violations))
            if dry_run:
                return attempt
            result = await self.store.txn(
                [key_absent(key), *plan.compares],
                [Put(key, objects.encode(attempt)), *plan.puts],
            )
            if result.succeeded:
                attempt.metadata.resource_version = str(result.revision)
                return attempt
            if await self.store.get(key) is not None:
                raise already_exists(kind.group_resource, meta.name)
            await self._explain_allocation_conflict(st, attempt, plan)
        raise too_contended(kind, meta.name)

    async def _explain_allocation_conflict(self, st: Strategy, obj: Obj,
                                           plan: Allocations) -> None:
        """Raise INVALID_ARGUMENT when a value the user asked for is taken; else return
        so that the caller picks again."""
        taken = await self.allocator.taken_requests(plan)
        if taken:
            raise invalid_object(st.kind.group_kind, obj.metadata.name, taken)

    # --- get / list / watch -------------------------------------------------------------

    async def get(self, resource: str, namespace: str, name: str,
                  subresource: str = "") -> Obj:
        """The current object (linearizable), or its scale/status subresource."""
        kind = self.kind(resource)
        self._check_subresource(kind, subresource, ("status", "scale"))
        key = objects.object_key(kind, self.namespace_of(kind, namespace), name)
        _, obj = await self.read(kind, key, name)
        if subresource == "scale":
            return conversion.scale_of(obj)
        return obj

    def _predicate(self, kind: Kind, namespace: str, label_selector: str,
                   field_selector: str) -> Predicate:
        st = strategy_for(kind)
        labels = fields = None
        try:
            if label_selector.strip():
                labels = _labels.parse_label_selector(label_selector).matches
            if field_selector.strip():
                expr = _fields.parse_field_selector(field_selector)
                st.check_field_selector(frozenset(expr.field_names()))
                fields = expr.matches
        except ValueError as exc:
            raise bad_request(f"unable to parse requirement: {exc}") from None
        return Predicate(namespace if kind.namespaced else "", labels, fields)

    async def list(self, resource: str, namespace: str = "", *, label_selector: str = "",
                   field_selector: str = "", limit: int = 0, continue_token: str = "",
                   resource_version: str = "") -> ListResult:
        """One page of matching objects, all pages consistent at one revision."""
        kind = self.kind(resource)
        predicate = self._predicate(kind, namespace, label_selector, field_selector)
        if limit < 0:
            raise bad_request(f"limit must be zero or positive, got {limit}")
        if resource_version == "0" and not continue_token:
            revision, cached = self.caches[kind.resource].list(predicate)
            return ListResult([c.data() for c in cached], revision, "", None)
        prefix = objects.resource_prefix(kind, namespace)
        if continue_token:
            if resource_version:
                raise bad_request("specifying resource version is not allowed when using "
                                  "continue")
            token = objects.ContinueToken.decode(continue_token, prefix)
            start, revision = token.start, token.revision
        else:
            start, revision = prefix, objects.parse_resource_version(resource_version)
        try:
            return await self._list_pages(kind, predicate, prefix, start, revision, limit)
        except Compacted:
            if continue_token:
                raise gone("The provided continue parameter is too old to display a "
                           "consistent list result. You can start a new list without the "
                           "continue parameter.") from None
            raise gone(f"too old resource version: {revision}") from None

    async def _list_pages(self, kind: Kind, predicate: Predicate, prefix: bytes, start: bytes,
                          revision: int, limit: int) -> ListResult:
        st = strategy_for(kind)
        end = objects.prefix_end(prefix)
        everything = predicate.no_selectors  # the key prefix already picks the namespace
        fetch = limit if everything else max(limit * 2, 500) if limit else 0
        items: builtins.list[bytes] = []
        while True:
            page = await self.store.page(start, end, revision=revision, limit=fetch)
            revision = page.revision
            for i, kv in enumerate(page.kvs):
                data = objects.with_resource_version(kv.value, kv.mod_revision)
                if not everything:
                    obj = objects.decode(kind, kv.value, kv.mod_revision)
                    labels, fields = st.describe(obj)
                    if not predicate.matches_parts(obj.metadata.namespace, labels, fields):
                        continue
                items.append(data)
                if limit and len(items) == limit:
                    more = i + 1 < len(page.kvs) or page.more
                    if not more:
                        return ListResult(items, revision, "", None)
                    remaining = page.count - (i + 1) if everything else None
                    token = objects.ContinueToken(revision, kv.key + b"\0").encode()
                    return ListResult(items, revision, token, remaining)
            if not page.more or not page.kvs:
                return ListResult(items, revision, "", None)
            start = page.kvs[-1].key + b"\0"
            if fetch:
                fetch = min(fetch * 2, 10_000)

    async def watch(self, resource: str, namespace: str = "", *, label_selector: str = "",
                    field_selector: str = "", resource_version: str = "",
                    bookmark_interval: float = 0.0) -> AsyncGenerator[builtins.list[bytes], None]:
        """Serialized WatchEvents, in batches; see WatchCache.watch."""
        kind = self.kind(resource)
        predicate = self._predicate(kind, namespace, label_selector, field_selector)
        revision = objects.parse_resource_version(resource_version)
        cache = self.caches[kind.resource]
        if resource_version == "":
            await cache.sync()
        async for data in cache.watch(predicate, revision, bookmark_interval=bookmark_interval):
            yield data

    # --- update / patch -----------------------------------------------------------------

    async def update(self, resource: str, namespace: str, obj: Obj, *,
                     subresource: str = "", dry_run: bool = False) -> Obj:
        """Replace an object or its status/scale subresource."""
        kind = self.kind(resource)
        self._check_subresource(kind, subresource, ("status", "scale"))
        if subresource == "scale":
            return await self._update_scale(kind, namespace, obj, dry_run)
        incoming = conversion.to_storage(kind, obj)
        meta = incoming.metadata
        ns = self.namespace_of(kind, namespace, meta.namespace)
        if not meta.name:
            raise invalid_object(kind.group_kind, "", [required("metadata.name")])
        key = objects.object_key(kind, ns, meta.name)
        pinned = meta.resource_version
        objects.parse_resource_version(pinned, "metadata.resourceVersion")
        for attempt in range(_MAX_RETRIES):
            cached = (self._cached_read(kind, key, pinned)
                      if attempt == 0 and not dry_run else None)
            kv, old = cached or await self.read(kind, key, meta.name)
            if pinned and pinned != str(kv.mod_revision):
                raise conflict(kind.group_resource, meta.name)
            new = type(incoming)()
            new.CopyFrom(incoming)
            new.metadata.namespace = ns
            try:
                return await self._write_update(kind, key, kv, old, new, subresource, dry_run,
                                                from_cache=cached is not None)
            except Retry:
                if pinned and cached is None:
                    raise conflict(kind.group_resource, meta.name) from None
            except ApiError:
                if cached is None:
                    raise  # judged against the store's copy: final
        raise too_contended(kind, meta.name)

    async def _write_update(self, kind: Kind, key: bytes, kv: KeyValue, old: Obj,
                            new: Obj, subresource: str, dry_run: bool,
                            from_cache: bool = False) -> Obj:
        """Turn ``new`` into the object replacing ``old`` and store it with a CAS on ``kv``.

        Raises Retry when the stored object moved since ``kv`` was read, and when ``old``
        came from the watch cache and the write would be a no-op (only the store's copy
        can say that nothing needs writing).
        """
        st = strategy_for(kind)
        if subresource == "status":
            st.prepare_for_status_update(new, old)
        else:
            st.prepare_for_update(new, old)
        new.api_version, new.kind = kind.api_version, kind.kind
        problems = self._carry_system_metadata(new, old)
        st.default(new)
        if st.spec_changed(new, old):
            new.metadata.generation = old.metadata.generation + 1
        problems += st.validate(new) + st.validate_update(new, old)
        self._validated(st, new, problems)
        if self.admission is not None:
            self.admission(kind, new)
        new_meta, old_meta = new.metadata, old.metadata
        # A terminating namespace goes only once spec.finalizers is empty too (the
        # namespace controller's finalize step), not on any other update.
        finalized = not (kind.kind == "Namespace" and new.spec.finalizers)
        if old_meta.HasField("deletion_timestamp") and not new_meta.finalizers and finalized:
            if dry_run:
                return new
            return await self._delete_now(kind, key, kv, old, new)
        new_meta.resource_version = ""
        encoded = objects.encode(new)
        if encoded == kv.value:
            if from_cache:
                raise Retry()
            return old
        plan = await self.allocator.plan(kind, new, old)
        self._validated(st, new, builtins.list(plan.violations))
        if dry_run:
            return new
        result = await self.store.txn(
            [key_at(key, kv.mod_revision), *plan.compares],
            [Put(key, objects.encode(new)), *plan.puts, *plan.deletes],
        )
        if not result.succeeded:
            await self._explain_allocation_conflict(st, new, plan)
            raise Retry()
        new_meta.resource_version = str(result.revision)
        return new

    def _carry_system_metadata(self, new: Obj, old: Obj) -> builtins.list[FieldViolation]:
        """Keep the fields only the server sets; report attempts to change identity."""
        problems: builtins.list[FieldViolation] = []
        meta, prev = new.metadata, old.metadata
        if meta.uid and meta.uid != prev.uid:
            problems.append(invalid("metadata.uid", meta.uid, "field is immutable"))
        moved = meta.creation_timestamp != prev.creation_timestamp
        if meta.HasField("creation_timestamp") and moved:
            problems.append(invalid("metadata.creationTimestamp",
                                    meta.creation_timestamp.ToJsonString(), "field is immutable"))
        meta.uid = prev.uid
        meta.creation_timestamp.CopyFrom(prev.creation_timestamp)
        meta.generation = prev.generation
        meta.generate_name = meta.generate_name or prev.generate_name
        if prev.HasField("deletion_timestamp"):
            meta.deletion_timestamp.CopyFrom(prev.deletion_timestamp)
            added = set(meta.finalizers) - set(prev.finalizers)
            if added:
                problems.append(FieldViolation(
                    "metadata.finalizers",
                    f"Forbidden: no new finalizers can be added if the object is being "
                    f"deleted, found new finalizers {sorted(added)}"))
        else:
            meta.ClearField("deletion_timestamp")
        if prev.HasField("deletion_grace_period_seconds"):
            meta.deletion_grace_period_seconds = prev.deletion_grace_period_seconds
        else:
            meta.ClearField("deletion_grace_period_seconds")
        return problems

    async def _update_scale(self, kind: Kind, namespace: str, obj: Obj,
                            dry_run: bool) -> Obj:
        if not isinstance(obj, autoscaling_pb2.Scale):
            raise bad_request(f"the scale subresource takes a navarch.v1.Scale, got "
                              f"{obj.DESCRIPTOR.full_name}")
        name = obj.metadata.name
        if obj.spec.replicas < 0:
            raise invalid_object("Scale", name, [invalid(
                "spec.replicas", obj.spec.replicas, "must be greater than or equal to 0")])
        key = objects.object_key(kind, self.namespace_of(kind, namespace, obj.metadata.namespace),
                                 name)
        pinned = obj.metadata.resource_version
        for _ in range(_MAX_RETRIES):
            kv, old = await self.read(kind, key, name)
            if pinned and pinned != str(kv.mod_revision):
                raise conflict(kind.group_resource, name)
            new = type(old)()
            new.CopyFrom(old)
            new.spec.replicas = obj.spec.replicas
            try:
                stored = await self._write_update(kind, key, kv, old, new, "", dry_run)
            except Retry:
                if pinned:
                    raise conflict(kind.group_resource, name) from None
                continue
            return conversion.scale_of(stored)
        raise too_contended(kind, name)

    async def patch(self, resource: str, namespace: str, name: str, patch: bytes, *,
                    patch_type: str = "", subresource: str = "", dry_run: bool = False,
                    api_version: str = "") -> Obj:
        """Apply a JSON merge patch or JSON patch to the current object (or subresource),
        as seen in ``api_version`` (default: the stored version). Returns the stored form."""
        kind = self.kind(resource)
        version = conversion.served_kind(kind, api_version)
        self._check_subresource(kind, subresource, ("status", "scale"))
        apply = _patcher(patch_type, patch)
        key = objects.object_key(kind, self.namespace_of(kind, namespace), name)
        for _ in range(_MAX_RETRIES):
            kv, old = await self.read(kind, key, name)
            if subresource == "scale":
                scale = conversion.scale_of(old)
                patched_scale = _decode_patched(
                    apply(_codec.to_dict(scale), cast(Descriptor,
                                                      autoscaling_pb2.Scale.DESCRIPTOR)),
                    autoscaling_pb2.Scale, "Scale", name)
                patched_scale.metadata.resource_version = (
                    patched_scale.metadata.resource_version or str(kv.mod_revision))
                try:
                    return await self._update_scale(kind, namespace, patched_scale, dry_run)
                except ApiError as exc:
                    if exc.code == grpc.StatusCode.ABORTED and not _pins_version(patch):
                        continue
                    raise
            doc = apply(_codec.to_dict(conversion.from_storage(old, version)),
                        version.message.DESCRIPTOR)
            new = conversion.to_storage(kind, _decode_patched(doc, version.message,
                                                              kind.group_kind, name))
            new_meta = new.metadata
            if new_meta.name != name:
                raise invalid_object(kind.group_kind, name, [invalid(
                    "metadata.name", new_meta.name, "field is immutable")])
            pinned = new_meta.resource_version != str(kv.mod_revision)
            if pinned:
                raise conflict(kind.group_resource, name)
            try:
                return await self._write_update(kind, key, kv, old, new, subresource, dry_run)
            except Retry:
                if _pins_version(patch):
                    raise conflict(kind.group_resource, name) from None
        raise too_contended(kind, name)

    # --- delete -------------------------------------------------------------------------

    async def delete(self, resource: str, namespace: str, name: str, *,
                     grace_period_seconds: int | None = None, propagation_policy: str = "",
                     precondition_uid: str = "", precondition_resource_version: str = "",
                     dry_run: bool = False) -> Obj:
        """Delete now, or mark for graceful deletion; returns the object's last state."""
        kind = self.kind(resource)
        check_propagation(propagation_policy)
        if grace_period_seconds is not None and grace_period_seconds < 0:
            grace_period_seconds = 0
        if kind.kind == "Namespace" and name in IMMORTAL_NAMESPACES:
            raise forbidden_request(f'namespaces "{name}" is forbidden: this namespace may '
                                    "not be deleted")
        key = objects.object_key(kind, self.namespace_of(kind, namespace), name)
        for _ in range(_MAX_RETRIES):
            kv, old = await self.read(kind, key, name)
            check_preconditions(kind, name, kv, old, precondition_uid,
                                precondition_resource_version)
            try:
                return await self.delete_read(kind, key, kv, old,
                                              grace_period_seconds=grace_period_seconds,
                                              propagation_policy=propagation_policy,
                                              dry_run=dry_run)
            except Retry:
                if precondition_resource_version:
                    raise conflict(kind.group_resource, name) from None
        raise too_contended(kind, name)

    async def delete_read(self, kind: Kind, key: bytes, kv: KeyValue, old: Obj, *,
                          grace_period_seconds: int | None = None, propagation_policy: str = "",
                          dry_run: bool = False, compares: Sequence[Compare] = (),
                          ops: Sequence[Op] = (), mark: Callable[[Obj], None] | None = None
                          ) -> Obj:
        """One attempt at deleting ``old``, read as ``kv``: now, or by marking it deleted.
        ``compares`` and ``ops`` join the same transaction; ``mark`` changes the object
        when it is marked rather than removed. Raises ``Retry`` when it moved."""
        st = strategy_for(kind)
        new = type(old)()
        new.CopyFrom(old)
        nmeta = new.metadata
        gc_finalizer = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}.get(
            propagation_policy)
        if gc_finalizer and gc_finalizer not in nmeta.finalizers:
            nmeta.finalizers.append(gc_finalizer)
        grace = st.grace_period(old, grace_period_seconds)
        pending = bool(nmeta.finalizers) or grace > 0
        if kind.kind == "Namespace":
            pending = pending or bool(new.spec.finalizers)
            new.status.phase = "Terminating"
        marked = False
        if pending and mark is not None:
            before = type(new)()
            before.CopyFrom(new)
            mark(new)
            marked = new != before
        if dry_run:
            if pending and not nmeta.HasField("deletion_timestamp"):
                self._now(nmeta.deletion_timestamp, grace)
                nmeta.deletion_grace_period_seconds = grace
            return new
        if kind.kind == "Namespace":
            self._look_up_live(nmeta.name)
        if not pending:
            return await self._delete_now(kind, key, kv, old, old, compares, ops)
        return await self._mark_deleted(kind, key, kv, old, new, grace, compares, ops,
                                        marked=marked)

    async def _mark_deleted(self, kind: Kind, key: bytes, kv: KeyValue, old: Obj,
                            new: Obj, grace: int, compares: Sequence[Compare] = (),
                            ops: Sequence[Op] = (), marked: bool = False) -> Obj:
        meta, prev = new.metadata, old.metadata
        if prev.HasField("deletion_timestamp"):
            current_grace = prev.deletion_grace_period_seconds
            if (grace >= current_grace and meta.finalizers == prev.finalizers
                    and not ops and not marked):
                return old  # already being deleted, no sooner than asked
            if grace < current_grace:
                self._now(meta.deletion_timestamp, grace)
                meta.deletion_grace_period_seconds = grace
        else:
            self._now(meta.deletion_timestamp, grace)
            meta.deletion_grace_period_seconds = grace
            if strategy_for(kind).has_spec:
                meta.generation = prev.generation + 1
        meta.resource_version = ""
        result = await self.store.txn([key_at(key, kv.mod_revision), *compares],
                                      [Put(key, objects.encode(new)), *ops])
        if not result.succeeded:
            raise Retry()
        meta.resource_version = str(result.revision)
        return new

    async def _delete_now(self, kind: Kind, key: bytes, kv: KeyValue, old: Obj,
                          last: Obj, compares: Sequence[Compare] = (),
                          ops: Sequence[Op] = ()) -> Obj:
        releases = self.allocator.releases(kind, old)
        result = await self.store.txn([key_at(key, kv.mod_revision), *compares],
                                      [Delete(key), *releases, *ops])
        if not result.succeeded:
            raise Retry()
        last.metadata.resource_version = str(result.revision)
        return last

    # --- pods/binding -------------------------------------------------------------------

    async def bind(self, namespace: str, name: str, binding: Obj, *,
                   dry_run: bool = False) -> Obj:
        """Assign a pending pod to a node (pods/binding); returns the bound pod."""
        if not isinstance(binding, core_pb2.Binding):
            raise bad_request(f"pods/binding takes a navarch.v1.Binding, got "
                              f"{binding.DESCRIPTOR.full_name}")
        kind = self.kind("pods")
        name = name or binding.metadata.name
        target = binding.target
        problems = []
        if target.kind not in ("", "Node"):
            problems.append(invalid("target.kind", target.kind, 'must be "Node"'))
        if not target.name:
            problems.append(required("target.name"))
        if problems:
            raise invalid_object("Binding", name, problems)
        ns = self.namespace_of(kind, namespace, binding.metadata.namespace)
        key = objects.object_key(kind, ns, name)
        for attempt in range(_MAX_RETRIES):
            cached = self._cached_read(kind, key) if attempt == 0 and not dry_run else None
            kv, old = cached or await self.read(kind, key, name)
            pod = old
            if cached is not None and (pod.spec.node_name
                                       or pod.metadata.HasField("deletion_timestamp")):
                continue  # confirm against the store before refusing
            if pod.spec.node_name:
                raise conflict("pods/binding", name, f"pod {name} is already assigned to "
                               f'node "{pod.spec.node_name}"')
            if pod.metadata.HasField("deletion_timestamp"):
                raise conflict("pods/binding", name, f"pod {name} is being deleted, cannot "
                               "be assigned to a host")
            new = core_pb2.Pod()
            new.CopyFrom(pod)
            new.spec.node_name = target.name
            set_condition(new, "PodScheduled", "True", self.clock())
            if dry_run:
                return new
            new.metadata.resource_version = ""
            result = await self.store.txn([key_at(key, kv.mod_revision)],
                                          [Put(key, objects.encode(new))])
            if result.succeeded:
                new.metadata.resource_version = str(result.revision)
                return new
        raise too_contended(kind, name)


def _terminating(ns: Obj) -> bool:
    return bool(ns.metadata.HasField("deletion_timestamp") or ns.status.phase == "Terminating")


def _set_time(timestamp: Obj, seconds: float) -> None:
    """Set a Timestamp to whole seconds, as Kubernetes' metav1.Time is."""
    timestamp.FromSeconds(int(seconds))


def check_propagation(policy: str) -> None:
    """BadRequest unless ``policy`` is a delete's propagationPolicy ("" or one of them)."""
    if policy and policy not in _PROPAGATION:
        raise bad_request(f'propagationPolicy: Unsupported value: "{policy}": '
                          'supported values: "Orphan", "Background", "Foreground"')


def check_preconditions(kind: Kind, name: str, kv: KeyValue, obj: Obj, uid: str,
                        resource_version: str) -> None:
    """ABORTED, in Kubernetes' words, when a delete's uid or resourceVersion precondition
    does not hold for ``obj`` read as ``kv``."""
    if uid and uid != obj.metadata.uid:
        raise conflict(kind.group_resource, name, f"Precondition failed: UID in "
                       f"precondition: {uid}, UID in object meta: {obj.metadata.uid}")
    if resource_version and resource_version != str(kv.mod_revision):
        raise conflict(kind.group_resource, name, "Precondition failed: ResourceVersion in "
                       f"precondition: {resource_version}, ResourceVersion "
                       f"in object meta: {kv.mod_revision}")


def too_contended(kind: Kind, name: str) -> ApiError:
    return ApiError(grpc.StatusCode.ABORTED,
                    f'Operation cannot be fulfilled on {kind.resource} "{name}": too many '
                    "concurrent writers; try again", reason="Conflict")


def _pins_version(patch: bytes) -> bool:
    try:
        doc = json.loads(patch)
    except ValueError:
        return False
    return bool(isinstance(doc, dict) and isinstance(doc.get("metadata"), dict)
                and doc["metadata"].get("resourceVersion"))


_Patcher = Callable[[object, Descriptor], object]


def _patcher(patch_type: str, patch: bytes) -> _Patcher:
    """What applies the patch to an object in JSON form (of the message described)."""
    try:
        doc = json.loads(patch)
    except ValueError as exc:
        raise bad_request(f"the patch is not valid JSON: {exc}") from None
    if patch_type in ("", "application/merge-patch+json", "merge"):
        return lambda target, _: _patch.apply_merge_patch(target, doc)
    if patch_type in ("application/strategic-merge-patch+json", "strategic"):
        if not isinstance(doc, dict):
            raise bad_request("a strategic merge patch is a JSON object")

        def apply_strategic(target: object, descriptor: Descriptor) -> object:
            try:
                return apply_strategic_merge_patch(target, doc, descriptor)
            except _patch.PatchError as exc:
                raise bad_request(f"the strategic merge patch does not apply: {exc}") from None
        return apply_strategic
    if patch_type in ("application/json-patch+json", "json"):
        if not isinstance(doc, list):
            raise bad_request("a JSON patch is a list of operations")

        def apply_json(target: object, _: Descriptor) -> object:
            try:
                return _patch.apply_json_patch(target, doc)
            except _patch.PatchError as exc:
                raise bad_request(f"the JSON patch does not apply: {exc}") from None
        return apply_json
    raise ApiError(grpc.StatusCode.INVALID_ARGUMENT,
                   f'patch type "{patch_type}" is not supported: use '
                   '"application/strategic-merge-patch+json", '
                   '"application/merge-patch+json" or "application/json-patch+json"',
                   reason="UnsupportedMediaType")


def _decode_patched(doc: object, message: type[Obj], kind: str, name: str) -> Obj:
    if not isinstance(doc, dict):
        raise bad_request("the patched object is not a JSON object")
    try:
        return _codec.from_dict(doc, message)
    except _codec.FieldError as exc:
        raise invalid_object(kind, name, [FieldViolation(exc.path, exc.reason)]) from None

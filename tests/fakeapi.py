"""An in-memory stand-in for ``navarch.Client``, for unit tests of controllers and the
scheduler: objects live in a dict, every write is recorded in ``actions``, and watchers
(so the real Informer) see changes as the API server would send them.

It implements the API's contracts that controllers rely on and nothing more: uid,
resourceVersion (one counter), generateName, creationTimestamp, optimistic concurrency
(Conflict on a stale resourceVersion), AlreadyExists/NotFound, generation bumped on spec
changes, finalizers + deletionTimestamp, label selectors on list, the status and scale
subresources, pods/binding, merge patches. No validation, no defaults.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message

from navarch._client import ObjectList, WatchEvent
from navarch._codec import from_dict, to_dict
from navarch._errors import AlreadyExists, Conflict, Invalid, NotFound
from navarch._kinds import Kind, kind_of_message, resource
from navarch._labels import parse_label_selector
from navarch._patch import apply_merge_patch
from navarch.v1 import autoscaling_pb2, core_pb2

__all__ = ["Action", "FakeClient"]


@dataclass(frozen=True)
class Action:
    """One write the code under test made: verb, resource, namespace, name, subresource."""

    verb: str
    resource: str
    namespace: str
    name: str
    subresource: str = ""
    obj: Message | None = None

    def short(self) -> tuple[str, ...]:
        """(verb, resource[/subresource], namespace/name), for compact assertions."""
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return (self.verb, res, where)


def _held(obj: Any) -> bool:
    """Whether finalizers keep ``obj`` (a Namespace's spec.finalizers too) from going."""
    if isinstance(obj, core_pb2.Namespace) and obj.spec.finalizers:
        return True
    return bool(obj.metadata.finalizers)


def _copy(obj: Message) -> Any:
    c = type(obj)()
    c.CopyFrom(obj)
    return c


class FakeClient:
    """Objects by (resource, namespace, name); ``actions`` lists every write."""

    def __init__(self, objects: list[Message] = (), *, now: float = 1_700_000_000.0  # type: ignore[assignment]
                 ) -> None:
        self.objects: dict[tuple[str, str, str], Message] = {}
        self.actions: list[Action] = []
        self.revision = 0
        self.now = now
        self.fail: dict[tuple[str, str], Exception] = {}  # (verb, resource) -> error to raise
        self._watchers: list[tuple[str, str, asyncio.Queue[tuple[str, Message]]]] = []
        self._names = itertools.count(1)
        for obj in objects:
            self.seed(obj)

    # --- test helpers -----------------------------------------------------------------------

    def seed(self, obj: Message) -> Any:
        """Store ``obj`` without recording an action (uid/version filled in if missing)."""
        kind = kind_of_message(obj)
        stored = _copy(obj)
        meta = stored.metadata
        if kind.namespaced and not meta.namespace:
            meta.namespace = "default"
        meta.uid = meta.uid or str(uuid.uuid4())
        self.revision += 1
        meta.resource_version = str(self.revision)
        if not meta.HasField("creation_timestamp"):
            meta.creation_timestamp.FromSeconds(int(self.now))
        self.objects[(kind.resource, meta.namespace, meta.name)] = stored
        self._publish(kind.resource, "ADDED", stored)
        return _copy(stored)

    def writes(self, *verbs: str) -> list[tuple[str, ...]]:
        """``Action.short()`` of every recorded write (of the given verbs)."""
        return [a.short() for a in self.actions if not verbs or a.verb in verbs]

    def stored(self, kind: str, namespace: str = "") -> list[Any]:
        """Every stored object of ``kind`` (a resource name), sorted by name."""
        res = resource(kind).resource
        return sorted((o for (r, ns, _), o in self.objects.items()
                       if r == res and (not namespace or ns == namespace)),
                      key=lambda o: o.metadata.name)  # type: ignore[attr-defined]

    # --- navarch.Client's surface -------------------------------------------------------------

    def resource(self, kind: str | type[Message] | Kind, namespace: str = "default"
                 ) -> FakeResource:
        if isinstance(kind, Kind):
            found = kind
        elif isinstance(kind, str):
            found = resource(kind)
        else:
            found = kind_of_message(kind())
        return FakeResource(self, found, namespace if found.namespaced else "")

    def for_object(self, obj: Message) -> FakeResource:
        return self.resource(kind_of_message(obj),
                             obj.metadata.namespace or "default")  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        try:
            kind = resource(name)
        except LookupError:
            raise AttributeError(name) from None
        return lambda namespace="default": self.resource(kind, namespace)

    async def bind(self, namespace: str, pod: str, node: str) -> core_pb2.Pod:
        self._raise("bind", "pods")
        key = ("pods", namespace, pod)
        current = self.objects.get(key)
        if current is None:
            raise NotFound(grpc.StatusCode.NOT_FOUND, f'pods "{pod}" not found')
        if current.spec.node_name:  # type: ignore[attr-defined]
            raise Conflict(grpc.StatusCode.ABORTED, f"pod {pod} is already assigned to node "
                           f'"{current.spec.node_name}"')  # type: ignore[attr-defined]
        new = _copy(current)
        new.spec.node_name = node
        self.actions.append(Action("create", "pods", namespace, pod, "binding"))
        return self._store("pods", new, "MODIFIED")  # type: ignore[no-any-return]

    # --- internals ------------------------------------------------------------------------

    def _raise(self, verb: str, res: str) -> None:
        err = self.fail.get((verb, res))
        if err is not None:
            raise err

    def _store(self, res: str, obj: Any, event: str) -> Any:
        self.revision += 1
        obj.metadata.resource_version = str(self.revision)
        self.objects[(res, obj.metadata.namespace, obj.metadata.name)] = obj
        self._publish(res, event, obj)
        return _copy(obj)

    def _publish(self, res: str, event: str, obj: Message) -> None:
        for wres, wns, queue in self._watchers:
            if wres == res and (not wns or wns == obj.metadata.namespace):  # type: ignore[attr-defined]
                queue.put_nowait((event, _copy(obj)))


class FakeResource:
    """The verbs of one kind in one namespace (as navarch.ResourceClient)."""

    def __init__(self, client: FakeClient, kind: Kind, namespace: str) -> None:
        self.c = client
        self.kind = kind
        self.namespace = namespace

    def _key(self, name: str, namespace: str | None = None) -> tuple[str, str, str]:
        return (self.kind.resource, self.namespace if namespace is None else namespace, name)

    def _get(self, name: str) -> Any:
        obj = self.c.objects.get(self._key(name))
        if obj is None:
            raise NotFound(grpc.StatusCode.NOT_FOUND,
                           f'{self.kind.group_resource} "{name}" not found')
        return obj

    def _record(self, verb: str, name: str, sub: str = "", obj: Message | None = None) -> None:
        self.c._raise(verb, self.kind.resource)
        self.c.actions.append(Action(verb, self.kind.resource, self.namespace, name, sub,
                                     _copy(obj) if obj is not None else None))

    async def create(self, obj: Any, *, dry_run: bool = False) -> Any:
        new = _copy(obj)
        meta = new.metadata
        if self.kind.namespaced:
            meta.namespace = meta.namespace or self.namespace
        if not meta.name and meta.generate_name:
            meta.name = f"{meta.generate_name}{next(self.c._names):05x}"
        if not meta.name:
            raise Invalid(grpc.StatusCode.INVALID_ARGUMENT, "name or generateName is required")
        self._record("create", meta.name, obj=new)
        if self._key(meta.name, meta.namespace) in self.c.objects:
            raise AlreadyExists(grpc.StatusCode.ALREADY_EXISTS,
                                f'{self.kind.group_resource} "{meta.name}" already exists')
        meta.uid = str(uuid.uuid4())
        meta.creation_timestamp.FromSeconds(int(self.c.now))
        if hasattr(new, "spec"):
            meta.generation = 1
        return self.c._store(self.kind.resource, new, "ADDED")

    async def get(self, name: str) -> Any:
        self.c._raise("get", self.kind.resource)
        return _copy(self._get(name))

    async def list(self, *, label_selector: str = "", field_selector: str = "",
                   limit: int = 0, continue_token: str = "",
                   resource_version: str = "") -> ObjectList[Any]:
        selector = parse_label_selector(label_selector)
        items = [_copy(o) for (r, ns, _), o in sorted(self.c.objects.items())
                 if r == self.kind.resource and (not self.namespace or ns == self.namespace)
                 and selector.matches(dict(o.metadata.labels))]  # type: ignore[attr-defined]
        return ObjectList(items, str(self.c.revision))

    async def list_all(self, *, label_selector: str = "", field_selector: str = "",
                       page_size: int = 500) -> ObjectList[Any]:
        return await self.list(label_selector=label_selector)

    async def watch(self, *, resource_version: str = "", label_selector: str = "",
                    field_selector: str = "", allow_bookmarks: bool = False,
                    timeout_seconds: int = 0) -> AsyncGenerator[WatchEvent[Any], None]:
        queue: asyncio.Queue[tuple[str, Message]] = asyncio.Queue()
        entry = (self.kind.resource, self.namespace, queue)
        self.c._watchers.append(entry)
        try:
            while True:
                event, obj = await queue.get()
                if int(obj.metadata.resource_version) <= int(resource_version or 0):  # type: ignore[attr-defined]
                    continue
                yield WatchEvent(event, obj)
        finally:
            self.c._watchers.remove(entry)

    async def update(self, obj: Any, *, dry_run: bool = False, subresource: str = "") -> Any:
        name = obj.metadata.name
        self._record("update", name, subresource, obj)
        current = self._get(name)
        if obj.metadata.resource_version and (
                obj.metadata.resource_version != current.metadata.resource_version):
            raise Conflict(grpc.StatusCode.ABORTED,
                           f'Operation cannot be fulfilled on {self.kind.group_resource} "{name}": '
                           "the object has been modified")
        new = _copy(current)
        if subresource == "status":
            new.status.CopyFrom(obj.status)
        else:
            status = _copy(current.status) if hasattr(current, "status") else None
            new = _copy(obj)
            new.metadata.uid = current.metadata.uid
            new.metadata.creation_timestamp.CopyFrom(current.metadata.creation_timestamp)
            new.metadata.generation = current.metadata.generation
            if status is not None:
                new.status.CopyFrom(status)
            if hasattr(new, "spec") and new.spec != current.spec:
                new.metadata.generation += 1
        if new.metadata.deletion_timestamp.seconds and not _held(new):
            del self.c.objects[self._key(name)]
            self.c.revision += 1
            new.metadata.resource_version = str(self.c.revision)
            self.c._publish(self.kind.resource, "DELETED", new)
            return _copy(new)
        return self.c._store(self.kind.resource, new, "MODIFIED")

    async def update_status(self, obj: Any) -> Any:
        return await self.update(obj, subresource="status")

    async def patch(self, name: str, patch: Any, *, patch_type: str = "merge",
                    subresource: str = "", dry_run: bool = False) -> Any:
        current = self._get(name)
        self._record("patch", name, subresource)
        merged = apply_merge_patch(to_dict(current), json.loads(json.dumps(patch)))
        new = from_dict(merged, type(current))  # type: ignore[arg-type]
        new.metadata.resource_version = current.metadata.resource_version
        return await self._apply(current, new)

    async def _apply(self, current: Any, new: Any) -> Any:
        if hasattr(new, "spec") and new.spec != current.spec:
            new.metadata.generation = current.metadata.generation + 1
        return self.c._store(self.kind.resource, new, "MODIFIED")

    async def delete(self, name: str, *, grace_period_seconds: int | None = None,
                     propagation_policy: str = "", uid: str = "", resource_version: str = "",
                     dry_run: bool = False) -> Any:
        self._record("delete", name)
        current = self._get(name)
        if uid and current.metadata.uid != uid:
            raise Conflict(grpc.StatusCode.ABORTED, "Precondition failed: UID mismatch")
        new = _copy(current)
        finalizers = list(new.metadata.finalizers)
        if propagation_policy in ("Foreground", "Orphan"):
            extra = "foregroundDeletion" if propagation_policy == "Foreground" else "orphan"
            if extra not in finalizers:
                new.metadata.finalizers.append(extra)
        if _held(new):
            if not new.metadata.deletion_timestamp.seconds:
                new.metadata.deletion_timestamp.FromSeconds(int(self.c.now))
            return self.c._store(self.kind.resource, new, "MODIFIED")
        del self.c.objects[self._key(name)]
        self.c.revision += 1
        new.metadata.resource_version = str(self.c.revision)
        self.c._publish(self.kind.resource, "DELETED", new)
        return _copy(new)

    async def get_scale(self, name: str) -> autoscaling_pb2.Scale:
        current = self._get(name)
        scale = autoscaling_pb2.Scale()
        scale.metadata.name = name
        scale.metadata.namespace = self.namespace
        scale.spec.replicas = current.spec.replicas
        scale.status.replicas = current.status.replicas
        return scale

    async def scale(self, name: str, replicas: int, *,
                    resource_version: str = "") -> autoscaling_pb2.Scale:
        current = self._get(name)
        self._record("update", name, "scale")
        new = _copy(current)
        new.spec.replicas = replicas
        await self._apply(current, new)
        return await self.get_scale(name)

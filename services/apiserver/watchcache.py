"""The watch cache: one store watch per resource, fanned out to every client watch.

Flow::

    store ──watch /registry/<resource>/──▶ WatchCache ──▶ objects (current state)
                                              │      └──▶ events (a window of recent changes)
                                              └──▶ Watcher queues ──▶ gRPC Watch streams

Contracts:
- The cache applies store events in revision order and exposes ``revision``: every change
  up to it is in ``objects`` and has been offered to every watcher.
- A watch from resourceVersion N receives exactly the changes after N, in order, once each;
  N older than the window raises ``gone`` (OUT_OF_RANGE), and the client lists again.
- Cached objects are shared by all readers: never mutate ``CachedObject.obj``.
- A watcher that falls ``max_pending`` events behind is closed; its client resumes from the
  last version it received, which the window usually still covers.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import grpc
import structlog
from google.protobuf import any_pb2

from navarch._kinds import Kind
from navarch.v1 import api_pb2

from . import objects
from .errors import ApiError, gone
from .objects import Obj
from .storage import Compacted, Store, StoreEvent, scan

__all__ = ["CacheEvent", "CachedObject", "Describe", "Predicate", "WatchCache", "Watcher"]

log = structlog.get_logger("navarch.apiserver.watchcache")

BATCH_EVENTS = 500       # at most this many events per batch of a client watch
BATCH_BYTES = 1 << 20    # a batch ends once it holds this many bytes

# (labels, fields) of an object, for selectors. Fields always include metadata.name and
# metadata.namespace.
Describe = Callable[[Obj], tuple[Mapping[str, str], Mapping[str, str]]]


class CachedObject:
    """One object as the cache holds it. ``obj`` is shared: never mutate it.

    The object is decoded on first use: watchers that select by namespace only (the
    common case) are served from the key and the stored bytes alone.
    """

    __slots__ = ("_describe", "_fields", "_labels", "_obj", "key", "kind", "namespace",
                 "revision", "stored")

    def __init__(self, kind: Kind, key: bytes, revision: int, stored: bytes,
                 describe: Describe) -> None:
        self.kind = kind
        self.key = key
        self.revision = revision
        self.stored = stored
        self.namespace = _namespace_of(kind, key)
        self._describe = describe
        self._obj: Obj | None = None
        self._labels: Mapping[str, str] | None = None
        self._fields: Mapping[str, str] | None = None

    @property
    def obj(self) -> Obj:
        """The decoded object (shared: never mutate it)."""
        if self._obj is None:
            self._obj = objects.decode(self.kind, self.stored, self.revision)
        return self._obj

    @property
    def labels(self) -> Mapping[str, str]:
        """The object's labels."""
        if self._labels is None:
            self._labels, self._fields = self._describe(self.obj)
        return self._labels

    @property
    def fields(self) -> Mapping[str, str]:
        """The object's selectable fields."""
        if self._fields is None:
            self._labels, self._fields = self._describe(self.obj)
        return self._fields

    def data(self, revision: int | None = None) -> bytes:
        """Serialized object with its resourceVersion (or ``revision``, for deletions)."""
        return objects.with_resource_version(self.stored, revision or self.revision)


class Predicate:
    """What a client watch or list selects: a namespace and label/field selectors."""

    def __init__(self, namespace: str = "",
                 labels: Callable[[Mapping[str, str]], bool] | None = None,
                 fields: Callable[[Mapping[str, str]], bool] | None = None) -> None:
        self.namespace = namespace
        self._labels = labels
        self._fields = fields

    @property
    def everything(self) -> bool:
        """True when the predicate selects every object of the resource."""
        return not self.namespace and self.no_selectors

    @property
    def no_selectors(self) -> bool:
        """True when only the namespace (if any) restricts the selection."""
        return self._labels is None and self._fields is None

    def matches_parts(self, namespace: str, labels: Mapping[str, str],
                      fields: Mapping[str, str]) -> bool:
        """Whether an object with these parts is selected."""
        if self.namespace and namespace != self.namespace:
            return False
        if self._labels is not None and not self._labels(labels):
            return False
        return self._fields is None or self._fields(fields)

    def __call__(self, item: CachedObject) -> bool:
        if self.namespace and item.namespace != self.namespace:
            return False
        if self._labels is not None and not self._labels(item.labels):
            return False
        return self._fields is None or self._fields(item.fields)


def _namespace_of(kind: Kind, key: bytes) -> str:
    """The namespace in a storage key (``/registry/<resource>/<namespace>/<name>``)."""
    if not kind.namespaced:
        return ""
    parts = key.split(b"/", 4)
    return parts[3].decode() if len(parts) > 4 else ""


@dataclass(slots=True)
class CacheEvent:
    """One change at ``revision``: ``obj`` is the new state (the last one for DELETED)."""

    revision: int
    type: str
    obj: CachedObject
    prev: CachedObject | None
    _encoded: dict[str, bytes] = field(default_factory=dict)

    def encoded(self, type_url: str, event_type: str) -> bytes:
        """The serialized WatchEvent of this change as ``event_type``; built once per type."""
        cached = self._encoded.get(event_type)
        if cached is None:
            data = self.obj.data(self.revision if self.type == "DELETED" else None)
            cached = encode_event(event_type, type_url, data)
            self._encoded[event_type] = cached
        return cached


def encode_event(event_type: str, type_url: str, data: bytes) -> bytes:
    """A serialized navarch.v1.WatchEvent."""
    return api_pb2.WatchEvent(
        type=event_type, object=any_pb2.Any(type_url=type_url, value=data),
    ).SerializeToString()


class Watcher:
    """One client watch: a queue of serialized WatchEvents (None = closed)."""

    def __init__(self, cache: WatchCache, predicate: Predicate, max_pending: int) -> None:
        self.cache = cache
        self.predicate = predicate
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.max_pending = max_pending
        self.closed = False
        self.sent_revision = 0

    def offer(self, event: CacheEvent) -> None:
        """Queue ``event`` as this watcher sees it (selectors turn it into ADDED, MODIFIED,
        DELETED or nothing)."""
        if self.closed:
            return
        event_type = translate(event, self.predicate)
        if event_type is None:
            return
        self.sent_revision = event.revision
        if self.queue.qsize() >= self.max_pending:
            log.warning("watcher fell behind; closing it", resource=self.cache.kind.resource,
                        pending=self.queue.qsize())
            self.close()
            return
        self.queue.put_nowait(event.encoded(self.cache.type_url, event_type))

    def close(self) -> None:
        """End the stream after what is already queued."""
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


def translate(event: CacheEvent, predicate: Predicate) -> str | None:
    """The event type a watcher with ``predicate`` sees, or None when it sees nothing.

    An object that starts matching arrives as ADDED; one that stops matching as DELETED.
    """
    if event.type == "DELETED":
        return "DELETED" if predicate(event.obj) else None
    now = predicate(event.obj)
    before = event.prev is not None and predicate(event.prev)
    if now:
        return "MODIFIED" if before else "ADDED"
    return "DELETED" if before else None


class WatchCache:
    """The current state and recent changes of one resource, fed by one store watch."""

    def __init__(self, kind: Kind, store: Store, describe: Describe, *,
                 capacity: int = 10_000, max_pending: int = 10_000,
                 page_size: int = 1_000) -> None:
        self.kind = kind
        self.store = store
        self.describe = describe
        self.capacity = capacity
        self.max_pending = max_pending
        self.page_size = page_size
        self.type_url = f"type.googleapis.com/{kind.message_type}"
        self.prefix = objects.resource_prefix(kind)
        self.objects: dict[bytes, CachedObject] = {}
        self.events: deque[CacheEvent] = deque()
        self.revision = 0
        self.window_start = 0
        self.watchers: set[Watcher] = set()
        self._advanced = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """List the resource, then follow it. Returns once the cache is filled."""
        if self._task is None:
            await self._relist()
            name = f"watchcache-{self.kind.resource}"
            self._task = asyncio.create_task(self._follow(), name=name)
        await self._ready.wait()

    async def stop(self) -> None:
        """Stop following and close every watcher."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for w in list(self.watchers):
            w.close()

    async def _relist(self) -> None:
        """Replace the state with a consistent list; the event window restarts empty."""
        revision, kvs = await scan(self.store, self.prefix, objects.prefix_end(self.prefix),
                                   page_size=self.page_size)
        self.objects = {kv.key: self._cached(kv.key, kv.value, kv.mod_revision) for kv in kvs}
        self.events.clear()
        self.revision = self.window_start = revision
        self._ready.set()

    async def _follow(self) -> None:
        while True:
            try:
                async for batch in self.store.watch(self.prefix, objects.prefix_end(self.prefix),
                                                    start_revision=self.revision + 1):
                    for ev in batch.events:
                        self._apply(ev)
                    if batch.revision > self.revision:
                        self.revision = batch.revision
                    async with self._advanced:
                        self._advanced.notify_all()
            except Compacted:
                log.warning("watch cache fell behind compaction; listing again",
                            resource=self.kind.resource)
                for w in list(self.watchers):
                    w.close()
                await self._relist()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store client already retried; back off and resume
                log.exception("watch cache lost its store watch", resource=self.kind.resource)
                await asyncio.sleep(1.0)

    def _cached(self, key: bytes, stored: bytes, revision: int) -> CachedObject:
        return CachedObject(self.kind, key, revision, stored, self.describe)

    def _apply(self, ev: StoreEvent) -> None:
        key = ev.kv.key
        prev = self.objects.get(key)
        if ev.type == "DELETE":
            if prev is None:
                return
            del self.objects[key]
            event = CacheEvent(ev.kv.mod_revision, "DELETED", prev, prev)
        else:
            item = self._cached(key, ev.kv.value, ev.kv.mod_revision)
            self.objects[key] = item
            event = CacheEvent(item.revision, "MODIFIED" if prev else "ADDED", item, prev)
        self.events.append(event)
        if len(self.events) > self.capacity:
            self.window_start = self.events.popleft().revision
        for w in list(self.watchers):
            w.offer(event)

    # --- reads ------------------------------------------------------------------------

    async def wait_fresh(self, revision: int, timeout: float = 3.0) -> None:  # noqa: ASYNC109
        """Wait until the cache has seen ``revision``; UNAVAILABLE after ``timeout``."""
        if self.revision >= revision:
            return
        deadline = time.monotonic() + timeout
        async with self._advanced:
            while self.revision < revision:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ApiError(grpc.StatusCode.UNAVAILABLE,
                                   f"Too large resource version: {revision}, "
                                   f"current: {self.revision}; retry")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._advanced.wait(), left)

    async def sync(self) -> None:
        """Wait until the cache holds everything the store had when this was called."""
        await self.wait_fresh(await self.store.current_revision())

    def get(self, key: bytes) -> CachedObject | None:
        """The cached object at ``key``, if any."""
        return self.objects.get(key)

    def list(self, predicate: Predicate) -> tuple[int, list[CachedObject]]:
        """(revision, matching objects sorted by key) from the cache."""
        items = [o for o in self.objects.values() if predicate(o)]
        items.sort(key=lambda o: o.key)
        return self.revision, items

    # --- watches ----------------------------------------------------------------------

    async def watch(self, predicate: Predicate, resource_version: int,
                    *, bookmark_interval: float = 0.0
                    ) -> AsyncGenerator[builtins.list[bytes], None]:
        """Serialized WatchEvents for ``predicate`` after ``resource_version``, in batches.

        ``resource_version`` 0 starts with an ADDED event per current object. Each batch is
        every event queued for the watcher when it is taken (at least one; at most
        ``BATCH_EVENTS`` or about ``BATCH_BYTES``), so that a client falling behind a
        burst catches up in a few messages instead of one per event: Kubernetes' watch
        handler likewise flushes only when its channel is empty. Ends when the watcher is
        closed (the client resumes) or the caller stops iterating.
        """
        if resource_version:
            await self.wait_fresh(resource_version)
        watcher = Watcher(self, predicate, self.max_pending)
        watcher.sent_revision = resource_version
        # No await between here and registration: the replay and the live events join
        # without a gap or an overlap.
        if resource_version == 0:
            watcher.sent_revision, items = self.list(predicate)
            for item in items:
                watcher.queue.put_nowait(encode_event("ADDED", self.type_url, item.data()))
        else:
            if resource_version < self.window_start:
                raise gone(f"too old resource version: {resource_version} "
                           f"({self.window_start})")
            for event in self.events:
                if event.revision > resource_version:
                    watcher.offer(event)
        self.watchers.add(watcher)
        try:
            async for data in self._drain(watcher, bookmark_interval):
                yield data
        finally:
            self.watchers.discard(watcher)
            watcher.closed = True

    async def _drain(self, watcher: Watcher, bookmark_interval: float
                     ) -> AsyncIterator[builtins.list[bytes]]:
        queue = watcher.queue
        while True:
            try:
                if bookmark_interval > 0:
                    data = await asyncio.wait_for(queue.get(), bookmark_interval)
                else:
                    data = await queue.get()
            except TimeoutError:
                # Nothing for this watcher lately: tell it how far the resource has got,
                # so that it can resume from there.
                if self.revision > watcher.sent_revision and queue.empty():
                    watcher.sent_revision = self.revision
                    yield [encode_event("BOOKMARK", self.type_url,
                                        objects.with_resource_version(b"", self.revision))]
                continue
            if data is None:
                return
            batch, size, ended = [data], len(data), False
            while not queue.empty() and len(batch) < BATCH_EVENTS and size < BATCH_BYTES:
                data = queue.get_nowait()
                if data is None:
                    ended = True
                    break
                batch.append(data)
                size += len(data)
            yield batch
            if ended:
                return


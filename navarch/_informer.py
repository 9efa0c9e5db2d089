"""The informer: list, then watch, keep a local cache, call handlers; recover by itself.

Flow::

    list (paged, one resourceVersion) ──▶ cache ◀── watch from that version ◀── API server
                                            │
                                            └──▶ handlers: on_add, on_update, on_delete

Contracts:
- Handlers run on the informer's task, in event order, one at a time. They must not block
  for long; controllers put keys on a work queue and return.
- Objects in the cache and passed to handlers are shared: never mutate them (copy first).
- A broken watch resumes from the last resourceVersion seen; a compacted one (Gone) lists
  again and reconciles the cache, calling on_add/on_update/on_delete for the differences,
  so that handlers see a consistent story and no deletion is ever missed.
- ``synced`` is set once the first list is in the cache.
- Several handler sets may be registered (``add_handlers``), as client-go's shared
  informers allow: one informer per kind feeds every controller of a process. A set
  added after the first list is replayed the cached objects as adds.
- Indexes (``add_index``) map each cached object to values (its node, its owner's uid…);
  ``by_index`` answers from them without scanning the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import structlog
from google.protobuf.message import Message

from navarch._client import ResourceClient
from navarch._errors import ApiError, Gone

__all__ = ["Informer", "InformerFactory", "object_key"]

log = structlog.get_logger("navarch.informer")

T = TypeVar("T", bound=Message)
Handler = Callable[..., object]  # a coroutine result is awaited; any other is ignored
IndexFunc = Callable[[Any], "list[str]"]


def object_key(obj: Message) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects (client-go's key)."""
    meta = obj.metadata  # type: ignore[attr-defined]
    return f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name


def _version(obj: Message) -> str:
    return str(obj.metadata.resource_version)  # type: ignore[attr-defined]


class Informer(Generic[T]):
    """A self-healing local cache of one kind, with change handlers."""

    def __init__(self, resource: ResourceClient[T], *, label_selector: str = "",
                 field_selector: str = "", page_size: int = 500,
                 on_add: Handler | None = None, on_update: Handler | None = None,
                 on_delete: Handler | None = None, backoff: float = 0.5,
                 max_backoff: float = 10.0) -> None:
        self.resource = resource
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.page_size = page_size
        self._handlers: list[tuple[Handler | None, Handler | None, Handler | None]] = []
        if on_add or on_update or on_delete:
            self._handlers.append((on_add, on_update, on_delete))
        self._indexers: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        self.backoff, self.max_backoff = backoff, max_backoff
        self.cache: dict[str, T] = {}
        self.resource_version = ""
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- registration -------------------------------------------------------------------

    async def add_handlers(self, on_add: Handler | None = None,
                           on_update: Handler | None = None,
                           on_delete: Handler | None = None) -> None:
        """Register one more set of handlers; replays the cache as adds if already listed."""
        self._handlers.append((on_add, on_update, on_delete))
        if self.synced.is_set() and on_add is not None:
            for obj in list(self.cache.values()):
                await self._call(on_add, obj)

    def add_index(self, name: str, func: IndexFunc) -> None:
        """Index cached objects by ``func(obj)`` (a list of values) under ``name``."""
        self._indexers[name] = func
        index: dict[str, set[str]] = {}
        for key, obj in self.cache.items():
            for value in func(obj):
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index

    def by_index(self, name: str, value: str) -> list[T]:
        """Cached objects whose index ``name`` holds ``value`` (shared: do not mutate)."""
        keys = self._indexes[name].get(value, ())
        return [self.cache[k] for k in keys if k in self.cache]

    # --- reads --------------------------------------------------------------------------

    def get(self, name: str, namespace: str = "") -> T | None:
        """The cached object (shared: do not mutate)."""
        return self.cache.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str = "") -> list[T]:
        """Cached objects, in ``namespace`` when given (shared: do not mutate)."""
        if not namespace:
            return list(self.cache.values())
        prefix = namespace + "/"
        return [o for k, o in self.cache.items() if k.startswith(prefix)]

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run in the background; returns the task."""
        if self._task is None:
            name = f"informer-{self.resource.kind.resource}"
            self._task = asyncio.create_task(self.run(), name=name)
        return self._task

    async def wait_synced(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait for the first list to be cached (TimeoutError after ``timeout`` seconds)."""
        await asyncio.wait_for(self.synced.wait(), timeout)

    async def stop(self) -> None:
        """Stop the background task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        """List and watch until cancelled, recovering from every error."""
        delay = self.backoff
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                await self._watch()
                delay = self.backoff  # the stream ended cleanly: resume at once
            except Gone:
                log.info("watch expired; listing again", resource=self.resource.kind.resource)
                need_list = True
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                log.warning("list/watch failed; retrying", resource=self.resource.kind.resource,
                            error=exc.message, retry_in=round(delay, 2))
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.max_backoff)

    # --- internals ----------------------------------------------------------------------

    async def _relist(self) -> None:
        listed = await self.resource.list_all(label_selector=self.label_selector,
                                              field_selector=self.field_selector,
                                              page_size=self.page_size)
        fresh = {object_key(o): o for o in listed.items}
        old = self.cache
        self.cache = fresh
        self.resource_version = listed.resource_version
        for name in self._indexers:
            self.add_index(name, self._indexers[name])
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                await self._dispatch(0, obj)
            elif _version(before) != _version(obj):
                await self._dispatch(1, before, obj)
        for key, obj in old.items():
            if key not in fresh:
                await self._dispatch(2, obj)
        self.synced.set()

    async def _watch(self) -> None:
        stream = self.resource.watch(resource_version=self.resource_version,
                                     label_selector=self.label_selector,
                                     field_selector=self.field_selector, allow_bookmarks=True)
        async with contextlib.aclosing(stream):
            async for event in stream:
                obj = event.object
                self.resource_version = _version(obj)
                if event.type == "BOOKMARK":
                    continue
                key = object_key(obj)
                if event.type == "DELETED":
                    gone = self.cache.pop(key, None)
                    self._unindex(key, gone)
                    await self._dispatch(2, gone if gone is not None else obj)
                    continue
                before = self.cache.get(key)
                self.cache[key] = obj
                self._unindex(key, before)
                self._index(key, obj)
                if before is None:
                    await self._dispatch(0, obj)
                else:
                    await self._dispatch(1, before, obj)

    def _index(self, key: str, obj: T) -> None:
        for name, func in self._indexers.items():
            index = self._indexes[name]
            for value in func(obj):
                index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: T | None) -> None:
        if obj is None:
            return
        for name, func in self._indexers.items():
            index = self._indexes[name]
            for value in func(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]

    async def _dispatch(self, which: int, *args: Any) -> None:
        for handlers in self._handlers:
            await self._call(handlers[which], *args)

    @staticmethod
    async def _call(handler: Handler | None, *args: Any) -> None:
        if handler is None:
            return
        try:
            result = handler(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("informer handler failed")


class InformerFactory:
    """One shared informer per (kind, namespace, selectors) for every controller of a
    process, as client-go's SharedInformerFactory."""

    def __init__(self, client: Any, *, page_size: int = 500) -> None:
        self.client = client
        self.page_size = page_size
        self._informers: dict[tuple[str, str, str, str], Informer[Any]] = {}

    def informer(self, kind: Any, namespace: str = "", *, label_selector: str = "",
                 field_selector: str = "") -> Informer[Any]:
        """The shared informer of ``kind`` (a name, message class or Kind), created once."""
        resource = self.client.resource(kind, namespace)
        key = (resource.kind.resource, namespace, label_selector, field_selector)
        found = self._informers.get(key)
        if found is None:
            found = Informer(resource, label_selector=label_selector,
                             field_selector=field_selector, page_size=self.page_size)
            self._informers[key] = found
        return found

    def informers(self) -> list[Informer[Any]]:
        """Every informer created so far."""
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer not yet running."""
        for informer in self._informers.values():
            informer.start()

    async def wait_synced(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until every informer has listed once."""
        await asyncio.wait_for(
            asyncio.gather(*(i.synced.wait() for i in self._informers.values())), timeout)

    async def stop(self) -> None:
        """Stop every informer."""
        for informer in self._informers.values():
            await informer.stop()

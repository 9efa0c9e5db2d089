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
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import structlog
from google.protobuf.message import Message

from navarch._client import ResourceClient
from navarch._errors import ApiError, Gone

__all__ = ["Informer", "object_key"]

log = structlog.get_logger("navarch.informer")

T = TypeVar("T", bound=Message)
Handler = Callable[..., Awaitable[None] | None]


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
        self.on_add, self.on_update, self.on_delete = on_add, on_update, on_delete
        self.backoff, self.max_backoff = backoff, max_backoff
        self.cache: dict[str, T] = {}
        self.resource_version = ""
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

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
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                await self._call(self.on_add, obj)
            elif _version(before) != _version(obj):
                await self._call(self.on_update, before, obj)
        for key, obj in old.items():
            if key not in fresh:
                await self._call(self.on_delete, obj)
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
                    await self._call(self.on_delete, gone if gone is not None else obj)
                    continue
                before = self.cache.get(key)
                self.cache[key] = obj
                if before is None:
                    await self._call(self.on_add, obj)
                else:
                    await self._call(self.on_update, before, obj)

    @staticmethod
    async def _call(handler: Handler | None, *args: Any) -> None:
        if handler is None:
            return
        try:
            result = handler(*args)
            if result is not None:
                await result
        except Exception:
            log.exception("informer handler failed")

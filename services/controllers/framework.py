"""The controller pattern every reconcile loop here follows (client-go's sample-controller).

Flow::

    shared informers ──on_add/on_update/on_delete──▶ enqueue(key)  (never objects)
                                                        │
                      WorkQueue: dedup, one worker per key, rate-limited retry
                                                        │
                         workers ──▶ reconcile(key): read the caches, decide (a pure
                                     function), act through the API, update status

Contracts:
- ``reconcile`` reads only informer caches (and the API when it must be sure); it never
  mutates a cached object: copy first (``clone``).
- ``reconcile`` is idempotent and level-triggered: it may run any number of times for a key
  and must converge from whatever it observes. It raises to be retried with backoff; it
  calls ``self.queue.add_after(key, s)`` to be woken at a given time.
- Controllers register their informers and handlers in ``setup`` (before the informers
  start), so that no event is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import structlog
from google.protobuf.message import Message

from navarch._clock import Clock, RealClock
from navarch._errors import ApiError, Conflict, NotFound
from navarch._events import EventRecorder
from navarch._informer import InformerFactory, object_key
from navarch._workqueue import QueueShutDown, WorkQueue

__all__ = ["Controller", "ControllerContext", "clone", "owner_uids", "split_key"]

log = structlog.get_logger("navarch.controllers")

M = TypeVar("M", bound=Message)


def clone(obj: M) -> M:
    """A deep copy of a (cached, shared) object, safe to modify."""
    copy = type(obj)()
    copy.CopyFrom(obj)
    return copy


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name) of an informer key ("" namespace for cluster-scoped objects)."""
    namespace, _, name = key.rpartition("/")
    return namespace, name


def owner_uids(obj: Message) -> list[str]:
    """The uids of ``obj``'s controller owner references (an index function)."""
    return [ref.uid for ref in obj.metadata.owner_references  # type: ignore[attr-defined]
            if ref.controller]


@dataclass
class ControllerContext:
    """What every controller of a process shares."""

    client: Any  # navarch.Client (or a test fake with the same methods)
    informers: InformerFactory
    recorder: EventRecorder
    clock: Clock = field(default_factory=RealClock)
    options: dict[str, Any] = field(default_factory=dict)  # per-controller settings


@dataclass
class ControllerStats:
    """Counters shown by the debug service and metrics."""

    reconciles: int = 0
    errors: int = 0
    last_error: str = ""


class Controller:
    """Base of a reconcile loop: a key queue, workers, and error handling."""

    name: ClassVar[str] = ""
    workers: ClassVar[int] = 2

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.clock = ctx.clock
        self.recorder = ctx.recorder
        self.queue: WorkQueue[str] = WorkQueue(self.name, clock=ctx.clock)
        self.stats = ControllerStats()

    # --- to implement ---------------------------------------------------------------------

    async def setup(self) -> None:
        """Create informers and register handlers (``self.ctx.informers``)."""

    async def reconcile(self, key: str) -> None:
        """Bring the object named by ``key`` to its desired state."""
        raise NotImplementedError

    async def background(self) -> None:
        """Periodic work besides the queue (resyncs, monitors); runs for the whole term.
        The default does nothing."""

    # --- helpers for handlers -------------------------------------------------------------

    def enqueue(self, obj: Message) -> None:
        """Queue the key of ``obj``."""
        self.queue.add(object_key(obj))

    # --- running --------------------------------------------------------------------------

    async def run(self, workers: int | None = None) -> None:
        """Run workers until cancelled or the queue is shut down."""
        count = workers or self.workers
        tasks = [asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
                 for i in range(count)]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shut_down()
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, QueueShutDown):
                    await t

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            await self.process(key)

    async def process(self, key: str) -> bool:
        """Reconcile ``key`` once, requeueing it with backoff on error; True on success."""
        self.stats.reconciles += 1
        try:
            await self.reconcile(key)
        except asyncio.CancelledError:
            self.queue.done(key)
            raise
        except Exception as exc:
            self.stats.errors += 1
            self.stats.last_error = f"{key}: {exc!r}"
            quiet = isinstance(exc, Conflict | NotFound)
            level = log.debug if quiet else log.warning
            level("reconcile failed; will retry", controller=self.name, key=key,
                  error=exc.message if isinstance(exc, ApiError) else repr(exc),
                  retries=self.queue.num_requeues(key))
            self.queue.add_rate_limited(key)
            self.queue.done(key)
            return False
        self.queue.forget(key)
        self.queue.done(key)
        return True

    async def drain(self, limit: int = 10_000) -> int:
        """Process every queued key now, in this task (tests); how many were processed."""
        n = 0
        while n < limit:
            key = self.queue.get_nowait()
            if key is None:
                return n
            await self.process(key)
            n += 1
        return n

"""Events about objects, recorded as Kubernetes' ``record.EventRecorder`` does.

Contracts:
- ``event()`` never blocks the caller and never raises: events are best effort, written
  by ``writers`` background tasks (several, so that a scheduler binding hundreds of pods
  a second is not held back by one write at a time); at most ``max_pending`` wait, the
  rest are dropped.
- Repeats are aggregated: the same (object, type, reason, message) within
  ``aggregate_window`` seconds updates the first event's ``count`` and ``lastTimestamp``
  instead of creating a new one, as kubectl users expect (``x5 over 2m``).
- Spam is filtered as client-go's EventSourceObjectSpamFilter does: each (source,
  object, type, reason) has a token bucket of ``spam_burst`` events refilled at one per
  ``spam_refill`` seconds; events beyond it are dropped (so a ReplicaSet creating 1,000
  pods writes 25 SuccessfulCreate events, not 1,000).
- Event names are ``<object name>.<16 hex digits>``, in the object's namespace
  ("default" for cluster-scoped objects, as Kubernetes does).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass

import structlog
from google.protobuf.message import Message

from navarch._clock import Clock, RealClock, rfc3339
from navarch._errors import ApiError, NotFound
from navarch._kinds import kind_of_message
from navarch.v1 import core_pb2

__all__ = ["NORMAL", "WARNING", "EventRecorder", "object_reference"]

log = structlog.get_logger("navarch.events")

NORMAL = "Normal"
WARNING = "Warning"


def object_reference(obj: Message) -> core_pb2.ObjectReference:
    """An ObjectReference to ``obj`` (kind, apiVersion, namespace, name, uid, version)."""
    kind = kind_of_message(obj)
    meta = obj.metadata  # type: ignore[attr-defined]
    return core_pb2.ObjectReference(
        kind=kind.kind, api_version=kind.api_version, namespace=meta.namespace,
        name=meta.name, uid=meta.uid, resource_version=str(meta.resource_version))


@dataclass
class _Seen:
    name: str
    namespace: str
    count: int
    first: float
    last: float


class EventRecorder:
    """Writes Events through a :class:`navarch.Client` (or anything with ``events(ns)``)."""

    def __init__(self, client: object, component: str, *, host: str = "",
                 instance: str = "", clock: Clock | None = None,
                 aggregate_window: float = 600.0, max_pending: int = 10_000,
                 writers: int = 8, spam_burst: int = 25, spam_refill: float = 300.0) -> None:
        self.client = client
        self.component, self.host, self.instance = component, host, instance
        self.clock: Clock = clock or RealClock()
        self.aggregate_window = aggregate_window
        self._pending: asyncio.Queue[tuple[core_pb2.Event, tuple[str, ...]]] = (
            asyncio.Queue(max_pending))
        self._seen: dict[tuple[str, ...], _Seen] = {}
        self._seq = itertools.count()
        self._writers = writers
        self.spam_burst, self.spam_refill = spam_burst, spam_refill
        self._buckets: dict[tuple[str, ...], tuple[float, float]] = {}  # tokens, when
        self.dropped = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.recorded: list[core_pb2.Event] = []  # every event passed to event() (tests)

    def event(self, obj: Message, type_: str, reason: str, message: str) -> None:
        """Record that ``reason``/``message`` happened to ``obj`` (type Normal or Warning)."""
        ref = object_reference(obj)
        now = self.clock.now()
        ev = core_pb2.Event(involved_object=ref, reason=reason, message=message, type=type_,
                            source=core_pb2.EventSource(component=self.component,
                                                        host=self.host),
                            reporting_component=self.component,
                            reporting_instance=self.instance or self.host, count=1)
        ev.api_version, ev.kind = "v1", "Event"
        ev.metadata.namespace = ref.namespace or "default"
        ev.metadata.name = f"{ref.name}.{(int(now * 1e9) + next(self._seq)):016x}"
        ev.first_timestamp.FromSeconds(int(now))
        ev.last_timestamp.FromSeconds(int(now))
        self.recorded.append(ev)
        if len(self.recorded) > 1000:
            del self.recorded[:500]
        key = (ref.uid or f"{ref.namespace}/{ref.name}", ref.kind, type_, reason, message)
        if not self._admit(key[:4], now):
            self.dropped += 1
            return
        with contextlib.suppress(asyncio.QueueFull):
            self._pending.put_nowait((ev, key))
        self._ensure_running()

    def _admit(self, spam_key: tuple[str, ...], now: float) -> bool:
        """Take a token from the bucket of ``spam_key`` (refilled with time)."""
        tokens, when = self._buckets.get(spam_key, (float(self.spam_burst), now))
        tokens = min(float(self.spam_burst), tokens + (now - when) / self.spam_refill)
        if tokens < 1.0:
            self._buckets[spam_key] = (tokens, now)
            return False
        self._buckets[spam_key] = (tokens - 1.0, now)
        if len(self._buckets) > 8192:
            for old in list(self._buckets)[:2048]:
                del self._buckets[old]
        return True

    async def flush(self) -> None:
        """Wait until every recorded event has been written (or given up on)."""
        await self._pending.join()

    async def stop(self) -> None:
        """Stop the writer task (pending events are dropped)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    # --- internals ------------------------------------------------------------------------

    def _ensure_running(self) -> None:
        self._tasks = [t for t in self._tasks if not t.done()]
        if len(self._tasks) >= self._writers:
            return
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            while len(self._tasks) < self._writers:
                self._tasks.append(loop.create_task(self._write_loop()))

    async def _write_loop(self) -> None:
        while True:
            ev, key = await self._pending.get()
            try:
                await self._write(ev, key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # best effort: log and go on
                log.debug("event not written", reason=ev.reason, error=repr(exc))
            finally:
                self._pending.task_done()

    async def _write(self, ev: core_pb2.Event, key: tuple[str, ...]) -> None:
        events = self.client.events(ev.metadata.namespace)  # type: ignore[attr-defined]
        now = ev.last_timestamp.seconds
        seen = self._seen.get(key)
        if seen is not None and now - seen.first <= self.aggregate_window:
            seen.count += 1
            seen.last = now
            try:
                await events.patch(seen.name, {"count": seen.count,
                                               "lastTimestamp": rfc3339(now)})
                return
            except NotFound:
                pass
            except ApiError:
                return
        self._seen[key] = _Seen(ev.metadata.name, ev.metadata.namespace, 1, now, now)
        try:
            await events.create(ev)
        except Exception:
            self._seen.pop(key, None)
            raise
        if len(self._seen) > 4096:
            for old in list(self._seen)[:1024]:
                del self._seen[old]


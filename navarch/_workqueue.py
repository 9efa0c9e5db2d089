"""A work queue of keys, as client-go's: each key is processed by one worker at a time.

Contracts:
- Keys, never objects: a worker reads the current object from an informer's cache.
- A key added while queued is queued once; a key added while being processed is queued
  again after ``done`` (so no change is lost and no key is processed twice at once).
- ``add_rate_limited`` re-adds after a per-key exponential delay (``base_delay`` · 2^n,
  capped at ``max_delay``); ``forget`` resets n after a success.
- ``add_after`` re-adds after a delay of the injected clock; the earliest pending delay
  of a key wins.
- ``get`` raises :class:`QueueShutDown` once ``shut_down`` has been called.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Hashable
from typing import Generic, TypeVar

from navarch._clock import Clock, RealClock

__all__ = ["QueueShutDown", "WorkQueue"]

K = TypeVar("K", bound=Hashable)


class QueueShutDown(Exception):
    """The queue was shut down: workers should return."""


class WorkQueue(Generic[K]):
    """A deduplicating, rate-limited, delaying queue of keys for asyncio workers."""

    def __init__(self, name: str = "", *, clock: Clock | None = None,
                 base_delay: float = 0.005, max_delay: float = 300.0) -> None:
        self.name = name
        self.clock: Clock = clock or RealClock()
        self.base_delay, self.max_delay = base_delay, max_delay
        self._queue: collections.deque[K] = collections.deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._waiting: dict[K, tuple[float, asyncio.Task[None]]] = {}
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._shut = False
        self.adds = 0  # total keys queued (for metrics and tests)

    # --- adding ---------------------------------------------------------------------------

    def add(self, key: K) -> None:
        """Queue ``key`` (once, however often it is added before a worker takes it)."""
        if self._shut or key in self._dirty:
            return
        self._dirty.add(key)
        self.adds += 1
        if key not in self._processing:
            self._queue.append(key)
            self._notify()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds of the queue's clock (at once if ≤ 0)."""
        if self._shut:
            return
        if delay <= 0:
            self.add(key)
            return
        due = self.clock.monotonic() + delay
        pending = self._waiting.get(key)
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        task = asyncio.get_running_loop().create_task(self._later(key, due))
        self._waiting[key] = (due, task)

    def add_rate_limited(self, key: K) -> None:
        """Queue ``key`` again after its backoff, which doubles with each call."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        self.add_after(key, min(self.base_delay * (2 ** n), self.max_delay))

    def forget(self, key: K) -> None:
        """Reset ``key``'s backoff (call after it was processed successfully)."""
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        """How many times ``key`` was re-added by ``add_rate_limited`` since ``forget``."""
        return self._failures.get(key, 0)

    # --- taking ---------------------------------------------------------------------------

    async def get(self) -> K:
        """The next key; the caller must call ``done(key)`` when finished with it."""
        while not self._queue:
            if self._shut:
                raise QueueShutDown(self.name)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._notify()  # pass the wake-up on to another getter
                raise
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def get_nowait(self) -> K | None:
        """The next key if one is queued now (tests drive controllers with this)."""
        if not self._queue:
            return None
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        """``key`` is processed; it is queued again if it was added meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._notify()

    def shut_down(self) -> None:
        """Stop: pending delays are dropped, waiting ``get`` calls raise QueueShutDown."""
        self._shut = True
        for _, task in self._waiting.values():
            task.cancel()
        self._waiting.clear()
        self._notify()

    # --- state ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        """Whether ``shut_down`` was called."""
        return self._shut

    @property
    def delayed(self) -> int:
        """Keys waiting for their delay to pass."""
        return len(self._waiting)

    def queued(self) -> list[K]:
        """The keys ready to be taken, in order (a copy)."""
        return list(self._queue)

    # --- internals ------------------------------------------------------------------------

    async def _later(self, key: K, due: float) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.clock.sleep(due - self.clock.monotonic())
            if self._waiting.get(key, (0.0, None))[1] is asyncio.current_task():
                del self._waiting[key]
            self.add(key)

    def _notify(self) -> None:
        """Wake one waiting getter per queued key (all of them on shutdown)."""
        wake = len(self._getters) if self._shut else len(self._queue)
        while wake > 0 and self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)
                wake -= 1

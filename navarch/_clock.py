"""Clocks: the real one, and a fake one that tests move by hand.

Daemons never call ``time`` or ``asyncio.sleep`` directly for decisions that depend on time
(lease expiry, backoff, CronJob schedules, eviction after tolerationSeconds): they take a
:class:`Clock`, so that tests skip time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "FakeClock", "RealClock", "rfc3339"]


def rfc3339(seconds: float) -> str:
    """Seconds since the epoch as Kubernetes writes times: RFC 3339 in UTC, to the second
    (``2024-01-02T03:04:05Z``)."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock(Protocol):
    """Wall time (seconds since the epoch, for timestamps) and a way to wait."""

    def now(self) -> float:
        """Seconds since the epoch."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for intervals)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class RealClock:
    """The machine's clocks and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that moves only when told (``advance``/``set``); sleepers wake in time order.

    ``monotonic`` and ``now`` move together. ``await clock.sleep(s)`` returns once the clock
    has been advanced past its deadline; ``advance`` yields to the loop so woken tasks run.
    """

    def __init__(self, start: float | datetime = 1_700_000_000.0) -> None:
        self._now = start.timestamp() if isinstance(start, datetime) else float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def datetime(self) -> datetime:
        """The current time as an aware UTC datetime."""
        return datetime.fromtimestamp(self._now, UTC)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting in ``sleep``."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move the clock forward, waking every sleeper whose deadline has come."""
        await self.set(self._now + seconds)

    async def set(self, when: float) -> None:
        """Move the clock to ``when`` (never backwards), waking sleepers in deadline order."""
        target = max(self._now, when)
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not fut.done():
                fut.set_result(None)
            for _ in range(3):
                await asyncio.sleep(0)
        self._now = target
        for _ in range(3):
            await asyncio.sleep(0)

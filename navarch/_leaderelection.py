"""Leader election through a Lease object, as client-go's ``leaderelection``.

Flow::

    standby ──try every retry_period──▶ leader ──renew every retry_period──▶ leader …
       ▲                                  │ no successful renewal for renew_deadline
       └──────────── lead() cancelled ◀───┘ (or the lease was taken: we were too slow)

Contracts:
- At most one candidate believes it leads at any time, provided ``renew_deadline`` <
  ``lease_duration`` and the candidates' clocks run at the same rate: a candidate takes a
  lease only after it has watched the holder's record stay unchanged for
  ``lease_duration`` on its *own* clock (client-go's observed time), and a leader stops
  leading once it has failed to renew for ``renew_deadline``.
- Every take and renewal is an update with the resourceVersion read, so two candidates
  can never both win a round.
- ``lead()`` runs only while leading; it is cancelled (and awaited) when leadership is
  lost, then the elector goes back to standby. On a clean stop the holder releases the
  lease (holder cleared), so a standby takes over at once instead of after the duration.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

from navarch._clock import Clock, RealClock
from navarch._errors import AlreadyExists, ApiError, Conflict, NotFound
from navarch.v1 import coordination_pb2

__all__ = ["LeaderElectionConfig", "LeaderElector"]

log = structlog.get_logger("navarch.leaderelection")


@dataclass(frozen=True)
class LeaderElectionConfig:
    """Where the lease lives, who we are, and the timings (client-go's defaults)."""

    name: str  # the Lease's name, e.g. "navarch-scheduler"
    identity: str  # this candidate, unique among candidates (host_pid_random)
    namespace: str = "kube-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not self.renew_deadline < self.lease_duration:
            raise ValueError("renew_deadline must be shorter than lease_duration")
        if not 0 < self.retry_period < self.renew_deadline:
            raise ValueError("retry_period must be positive and shorter than renew_deadline")


class LeaderElector:
    """Campaigns for one Lease and runs ``lead()`` while it holds it."""

    def __init__(self, leases: object, config: LeaderElectionConfig, *,
                 clock: Clock | None = None,
                 on_new_leader: Callable[[str], None] | None = None) -> None:
        # leases: a ResourceClient[Lease] in config.namespace (typed loosely: fakes in tests)
        self.leases = leases
        self.config = config
        self.clock: Clock = clock or RealClock()
        self.on_new_leader = on_new_leader
        self.leader = ""  # the holder last observed ("" = nobody)
        self.is_leader = False
        self.transitions = 0  # of this elector: times it became leader
        self._observed: coordination_pb2.Lease | None = None
        self._observed_at = 0.0  # our monotonic clock when the record last changed

    # --- the loop -------------------------------------------------------------------------

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Campaign, lead, and campaign again after a loss, until cancelled."""
        while True:
            await self._acquire()
            self.is_leader = True
            self.transitions += 1
            log.info("became leader", lease=self.config.name, identity=self.config.identity)
            task = asyncio.create_task(lead(), name=f"lead-{self.config.name}")
            try:
                await self._renew_until_lost(task)
            finally:
                self.is_leader = False
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                current = asyncio.current_task()
                if current is not None and current.cancelling() and self.config.release_on_cancel:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self.release())
            log.warning("leadership lost", lease=self.config.name,
                        identity=self.config.identity)

    async def _acquire(self) -> None:
        while not await self.try_acquire_or_renew():
            await self.clock.sleep(self.config.retry_period)

    async def _renew_until_lost(self, task: asyncio.Task[None]) -> None:
        """Renew until a renewal deadline is missed or lead() fails. A lead() that simply
        returns keeps the lease held (and renewed) until the elector is cancelled."""
        last_renewal = self.clock.monotonic()
        while True:
            await self._sleep_or_done(task, self.config.retry_period)
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("lead() failed; giving up the lease", lease=self.config.name,
                          error=repr(task.exception()))
                with contextlib.suppress(Exception):
                    await self.release()
                return
            if await self.try_acquire_or_renew():
                last_renewal = self.clock.monotonic()
            elif self.leader != self.config.identity or (
                    self.clock.monotonic() - last_renewal >= self.config.renew_deadline):
                return

    async def _sleep_or_done(self, task: asyncio.Task[None], seconds: float) -> None:
        if task.done():
            await self.clock.sleep(seconds)
            return
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({sleeper, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()

    # --- one round ------------------------------------------------------------------------

    async def try_acquire_or_renew(self) -> bool:
        """One round: take the lease if free or expired, renew it if ours. True if held."""
        cfg = self.config
        now = self.clock.now()
        try:
            current = await self.leases.get(cfg.name)  # type: ignore[attr-defined]
        except NotFound:
            lease = self._record(None, now)
            try:
                await self.leases.create(lease)  # type: ignore[attr-defined]
            except (AlreadyExists, Conflict):
                return False
            except ApiError as exc:
                log.warning("lease create failed", lease=cfg.name, error=exc.message)
                return False
            self._observe(lease)
            return True
        except ApiError as exc:
            log.warning("lease read failed", lease=cfg.name, error=exc.message)
            return False
        self._observe(current)
        holder = current.spec.holder_identity
        if holder and holder != cfg.identity and not self._expired(current):
            return False
        lease = self._record(current, now)
        try:
            updated = await self.leases.update(lease)  # type: ignore[attr-defined]
        except ApiError as exc:
            if not isinstance(exc, Conflict | NotFound):
                log.warning("lease update failed", lease=cfg.name, error=exc.message)
            return False
        self._observe(updated)
        return True

    async def release(self) -> None:
        """Give the lease up if we hold it (holder cleared, duration 1 s)."""
        try:
            current = await self.leases.get(self.config.name)  # type: ignore[attr-defined]
        except ApiError:
            return
        if current.spec.holder_identity != self.config.identity:
            return
        lease = coordination_pb2.Lease()
        lease.CopyFrom(current)
        lease.spec.holder_identity = ""
        lease.spec.lease_duration_seconds = 1
        with contextlib.suppress(ApiError):
            await self.leases.update(lease)  # type: ignore[attr-defined]
        self.is_leader = False

    # --- helpers --------------------------------------------------------------------------

    def _expired(self, lease: coordination_pb2.Lease) -> bool:
        duration = lease.spec.lease_duration_seconds or self.config.lease_duration
        return self.clock.monotonic() - self._observed_at >= duration

    def _observe(self, lease: coordination_pb2.Lease) -> None:
        """Remember the record, and when (on our clock) it last changed."""
        before = self._observed
        if before is None or before.spec != lease.spec:
            self._observed_at = self.clock.monotonic()
        self._observed = lease
        holder = lease.spec.holder_identity
        if holder != self.leader:
            self.leader = holder
            if self.on_new_leader is not None and holder:
                self.on_new_leader(holder)

    def _record(self, current: coordination_pb2.Lease | None, now: float
                ) -> coordination_pb2.Lease:
        cfg = self.config
        lease = coordination_pb2.Lease()
        if current is not None:
            lease.CopyFrom(current)
        else:
            lease.metadata.name = cfg.name
            lease.metadata.namespace = cfg.namespace
        spec = lease.spec
        if spec.holder_identity != cfg.identity:
            spec.acquire_time.FromNanoseconds(int(now * 1e9) // 1000 * 1000)
            spec.lease_transitions = spec.lease_transitions + 1 if current is not None else 0
        spec.holder_identity = cfg.identity
        spec.lease_duration_seconds = max(1, round(cfg.lease_duration))
        spec.renew_time.FromNanoseconds(int(now * 1e9) // 1000 * 1000)
        return lease

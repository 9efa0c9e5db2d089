"""LeaderElector over a Lease (in tests/fakeapi), on a fake clock: who leads, when a
standby takes over, and that two candidates never lead at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest

from navarch._clock import FakeClock
from navarch._errors import ServerUnavailable
from navarch._leaderelection import LeaderElectionConfig, LeaderElector
from tests.fakeapi import FakeClient

pytestmark = pytest.mark.asyncio


class Candidate:
    """One elector whose lead() records when it runs."""

    def __init__(self, client: FakeClient, clock: FakeClock, identity: str) -> None:
        self.elector = LeaderElector(client.leases("kube-system"),
                                     LeaderElectionConfig("lock", identity), clock=clock)
        self.leading = False
        self.terms = 0
        self.task: asyncio.Task[None] | None = None

    async def lead(self) -> None:
        self.leading = True
        self.terms += 1
        try:
            await asyncio.Event().wait()
        finally:
            self.leading = False

    def start(self) -> None:
        self.task = asyncio.create_task(self.elector.run(self.lead))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@pytest.fixture
async def world() -> AsyncIterator[tuple[FakeClient, FakeClock, list[Candidate]]]:
    client, clock = FakeClient(), FakeClock()
    made: list[Candidate] = []
    yield client, clock, made
    for c in made:
        await c.stop()


def candidate(world: tuple[FakeClient, FakeClock, list[Candidate]], name: str) -> Candidate:
    client, clock, made = world
    c = Candidate(client, clock, name)
    made.append(c)
    c.start()
    return c


async def tick(clock: FakeClock, seconds: float, step: float = 0.5) -> None:
    for _ in range(round(seconds / step)):
        await clock.advance(step)


async def test_the_first_candidate_creates_the_lease_and_leads(world) -> None:  # type: ignore[no-untyped-def]
    client, clock, _ = world
    a = candidate(world, "a")
    await tick(clock, 1)
    assert a.leading and a.elector.is_leader
    lease = client.stored("leases")[0]
    assert lease.spec.holder_identity == "a"
    assert lease.spec.lease_duration_seconds == 15
    assert lease.spec.lease_transitions == 0


async def test_a_standby_does_not_lead_while_the_leader_renews(world) -> None:  # type: ignore[no-untyped-def]
    _, clock, _ = world
    a = candidate(world, "a")
    await tick(clock, 1)
    b = candidate(world, "b")
    await tick(clock, 60)
    assert a.leading and not b.leading
    assert b.elector.leader == "a"


async def test_a_standby_takes_over_a_lease_nobody_renews_only_after_its_duration(
        world) -> None:  # type: ignore[no-untyped-def]
    client, clock, _ = world
    a = candidate(world, "a")
    await tick(clock, 1)
    b = candidate(world, "b")
    await tick(clock, 2)
    a.task.cancel()  # a crashes without releasing: simulate by freezing its record
    a.elector.config = LeaderElectionConfig("lock", "a", release_on_cancel=False)
    with contextlib.suppress(asyncio.CancelledError):
        await a.task
    frozen_at = clock.monotonic()
    while not b.leading:
        await clock.advance(0.5)
        assert clock.monotonic() - frozen_at < 20
    waited = clock.monotonic() - frozen_at
    assert 13 <= waited <= 17  # the lease duration (15 s) give or take a retry period
    lease = client.stored("leases")[0]
    assert lease.spec.holder_identity == "b"
    assert lease.spec.lease_transitions == 1


async def test_a_clean_stop_releases_the_lease_for_an_immediate_takeover(world) -> None:  # type: ignore[no-untyped-def]
    client, clock, _ = world
    a = candidate(world, "a")
    await tick(clock, 1)
    b = candidate(world, "b")
    await tick(clock, 2)
    await a.stop()
    assert client.stored("leases")[0].spec.holder_identity == ""
    await tick(clock, 2.5)
    assert b.leading


async def test_a_leader_that_cannot_renew_steps_down_before_the_lease_expires(
        world) -> None:  # type: ignore[no-untyped-def]
    client, clock, _ = world
    a = candidate(world, "a")
    await tick(clock, 1)
    down = ServerUnavailable(grpc.StatusCode.UNAVAILABLE, "API server unreachable")
    client.fail[("update", "leases")] = down
    client.fail[("get", "leases")] = down
    lost_at = clock.monotonic()
    while a.leading:
        await clock.advance(0.5)
        assert clock.monotonic() - lost_at < 15
    assert clock.monotonic() - lost_at <= 10 + 2  # renew deadline + one retry period


async def test_two_candidates_never_lead_at_once(world) -> None:  # type: ignore[no-untyped-def]
    _, clock, _ = world
    cands = [candidate(world, n) for n in ("a", "b", "c")]
    for step in range(200):
        await clock.advance(0.5)
        assert sum(c.leading for c in cands) <= 1
        if step == 40:
            leader = next(c for c in cands if c.leading)
            await leader.stop()
    assert sum(c.terms for c in cands) == 2

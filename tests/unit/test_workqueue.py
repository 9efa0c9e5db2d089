"""WorkQueue: client-go's queue contracts (dedup, one worker per key, delays, backoff)."""

from __future__ import annotations

import asyncio

import pytest

from navarch._clock import FakeClock
from navarch._workqueue import QueueShutDown, WorkQueue

pytestmark = pytest.mark.asyncio


async def test_a_key_added_twice_before_it_is_taken_is_queued_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add("b")
    q.add("a")
    assert q.queued() == ["a", "b"]


async def test_a_key_added_while_processing_is_requeued_after_done_not_before() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    key = await q.get()
    q.add("a")
    assert q.queued() == []  # not handed to a second worker while the first holds it
    q.done(key)
    assert q.queued() == ["a"]


async def test_done_without_a_new_add_does_not_requeue() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.done(await q.get())
    assert len(q) == 0


async def test_get_waits_for_an_add() -> None:
    q: WorkQueue[str] = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"


async def test_each_waiting_worker_gets_a_different_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    for k in ("a", "b", "c"):
        q.add(k)
    got = await asyncio.wait_for(asyncio.gather(*getters), 1)
    assert sorted(got) == ["a", "b", "c"]


async def test_add_after_waits_for_the_clock() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("a", 10)
    await clock.advance(9.9)
    assert q.queued() == [] and q.delayed == 1
    await clock.advance(0.2)
    assert q.queued() == ["a"] and q.delayed == 0


async def test_the_earliest_pending_delay_of_a_key_wins() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("a", 30)
    q.add_after("a", 5)
    q.add_after("a", 20)
    await clock.advance(5)
    assert q.queued() == ["a"]
    q.done(await asyncio.wait_for(q.get(), 1))
    await clock.advance(30)
    assert q.queued() == []  # the later delays were dropped


@pytest.mark.parametrize(("failures", "expected"), [(1, 0.005), (2, 0.01), (5, 0.08),
                                                     (30, 300.0)])
async def test_rate_limited_delay_doubles_up_to_the_cap(failures: int, expected: float) -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    for _ in range(failures - 1):
        q.add_rate_limited("a")
    await clock.advance(1000)
    if failures > 1:
        q.done(await asyncio.wait_for(q.get(), 1))
    q.add_rate_limited("a")
    assert q.num_requeues("a") == failures
    await clock.advance(expected * 0.99)
    assert q.queued() == []
    await clock.advance(expected * 0.02)
    assert q.queued() == ["a"]


async def test_forget_resets_the_backoff() -> None:
    q: WorkQueue[str] = WorkQueue(clock=FakeClock())
    q.add_rate_limited("a")
    q.add_rate_limited("a")
    q.forget("a")
    assert q.num_requeues("a") == 0


async def test_shutdown_wakes_waiting_workers_and_drops_delays() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    getter = asyncio.create_task(q.get())
    q.add_after("later", 1)
    await asyncio.sleep(0)
    q.shut_down()
    with pytest.raises(QueueShutDown):
        await asyncio.wait_for(getter, 1)
    await clock.advance(2)
    assert q.queued() == []
    q.add("x")
    assert q.queued() == []

"""The scheduling queue (FakeClock) and the scheduler cache (assume/confirm/forget)."""

from __future__ import annotations

import asyncio

import pytest

from navarch._clock import FakeClock
from services.scheduler import queue as q
from services.scheduler.cache import SchedulerCache
from services.scheduler.framework import PodInfo
from services.scheduler.queue import SchedulingQueue
from tests.unit.scheduler_fixtures import node, pod


async def pop_now(queue: SchedulingQueue) -> str | None:
    try:
        return (await asyncio.wait_for(queue.pop(), 0.05)).key
    except TimeoutError:
        return None


@pytest.mark.asyncio
async def test_active_queue_orders_by_priority_then_arrival() -> None:
    clock = FakeClock()
    queue = SchedulingQueue(clock)
    queue.add(pod("low", priority=0))
    await clock.advance(1)
    queue.add(pod("high", priority=100))
    queue.add(pod("later-low", priority=0))
    got = [await pop_now(queue) for _ in range(4)]
    assert got == ["default/high", "default/low", "default/later-low", None]


@pytest.mark.parametrize(("attempts", "want"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0),
                                                (5, 10.0), (30, 10.0)])
def test_backoff_duration(attempts: int, want: float) -> None:
    queue = SchedulingQueue(FakeClock())
    queued = q.QueuedPod(pod("p"), 0.0, attempts=attempts)
    assert queue.backoff_duration(queued) == want


@pytest.mark.asyncio
async def test_unschedulable_pod_waits_for_a_relevant_event_then_backs_off() -> None:
    clock = FakeClock()
    queue = SchedulingQueue(clock)
    queue.add(pod("p"))
    queued = await queue.pop()
    queue.add_unschedulable(queued, queue.scheduling_cycle, {"NodeResourcesFit"})
    assert queue.unschedulable_count == 1
    assert queue.move_all(q.ASSIGNED_POD_ADD) == 0  # affinity-only event: not relevant
    assert queue.unschedulable_count == 1
    assert queue.move_all(q.ASSIGNED_POD_DELETE) == 1  # frees resources
    assert queue.backoff_count == 1  # first attempt: 1 s backoff not yet over
    queue.flush()
    assert await pop_now(queue) is None
    await clock.advance(1.0)
    queue.flush()
    assert await pop_now(queue) == "default/p"


@pytest.mark.asyncio
async def test_unschedulable_pods_are_retried_after_sixty_seconds() -> None:
    clock = FakeClock()
    queue = SchedulingQueue(clock)
    queue.add(pod("p"))
    queued = await queue.pop()
    queue.add_unschedulable(queued, queue.scheduling_cycle, {"NodeResourcesFit"})
    await clock.advance(59)
    queue.flush()
    assert queue.unschedulable_count == 1
    await clock.advance(1)
    queue.flush()
    assert queue.unschedulable_count == 0 and queue.active_count == 1


@pytest.mark.asyncio
async def test_event_during_the_cycle_sends_the_pod_to_backoff() -> None:
    clock = FakeClock()
    queue = SchedulingQueue(clock)
    queue.add(pod("p"))
    queued = await queue.pop()
    cycle = queue.scheduling_cycle
    queue.move_all(q.NODE_ADD)  # a node arrives while the pod is being scheduled
    queue.add_unschedulable(queued, cycle, {"NodeResourcesFit"})
    assert queue.unschedulable_count == 0 and queue.backoff_count == 1


@pytest.mark.asyncio
async def test_update_of_unschedulable_pod_requeues_and_delete_drops() -> None:
    clock = FakeClock()
    queue = SchedulingQueue(clock)
    queue.add(pod("p"))
    queued = await queue.pop()
    queue.add_unschedulable(queued, queue.scheduling_cycle, {"NodeAffinity"})
    await clock.advance(5)
    queue.update(pod("p", labels={"new": "label"}))
    assert await pop_now(queue) == "default/p"
    queue.add(pod("q"))
    queue.delete("default/q")
    assert await pop_now(queue) is None and len(queue) == 1


@pytest.mark.asyncio
async def test_backoff_after_error_grows_with_attempts() -> None:
    clock = FakeClock()
    queue = SchedulingQueue(clock)
    queue.add(pod("p"))
    queued = await queue.pop()
    queue.add_backoff(queued)
    await clock.advance(0.9)
    queue.flush()
    assert await pop_now(queue) is None
    await clock.advance(0.1)
    queue.flush()
    queued = await queue.pop()
    assert queued.attempts == 2
    queue.add_backoff(queued)
    await clock.advance(1.5)
    queue.flush()
    assert await pop_now(queue) is None
    await clock.advance(0.5)
    queue.flush()
    assert await pop_now(queue) == "default/p"


# --- cache ------------------------------------------------------------------------------------

def test_assume_counts_at_once_and_forget_undoes() -> None:
    cache = SchedulerCache()
    cache.add_node(node("n", "4"))
    info = PodInfo.of(pod("p", "1"))
    cache.assume(info, "n")
    assert cache.nodes["n"].requested.milli_cpu == 1000 and cache.is_assumed("default/p")
    cache.forget("default/p")
    assert cache.nodes["n"].requested.milli_cpu == 0 and cache.pod_count() == 0


def test_informer_confirms_an_assumed_pod_without_double_counting() -> None:
    cache = SchedulerCache()
    cache.add_node(node("n", "4"))
    cache.assume(PodInfo.of(pod("p", "1")), "n")
    cache.add_pod(pod("p", "1", node_name="n"))
    assert not cache.is_assumed("default/p")
    assert cache.nodes["n"].requested.milli_cpu == 1000
    assert cache.nodes["n"].requested.pods == 1
    cache.forget("default/p")  # a late failure report changes nothing once confirmed
    assert cache.nodes["n"].requested.milli_cpu == 1000


def test_bound_elsewhere_moves_and_terminal_pods_free_resources() -> None:
    cache = SchedulerCache()
    cache.add_node(node("a"))
    cache.add_node(node("b"))
    cache.assume(PodInfo.of(pod("p", "1")), "a")
    cache.add_pod(pod("p", "1", node_name="b"))
    assert cache.nodes["a"].requested.milli_cpu == 0
    assert cache.nodes["b"].requested.milli_cpu == 1000
    done = pod("p", "1", node_name="b")
    done.status.phase = "Succeeded"
    cache.update_pod(done)
    assert cache.nodes["b"].requested.milli_cpu == 0


def test_pods_before_their_node_and_node_removal() -> None:
    cache = SchedulerCache()
    cache.add_pod(pod("p", "1", node_name="late"))
    assert cache.node_list() == []
    cache.add_node(node("late", "4", images={"app:1": 1}))
    assert [n.name for n in cache.node_list()] == ["late"]
    assert cache.nodes["late"].requested.milli_cpu == 1000
    assert cache.image_nodes == {"app:1": 1}
    cache.remove_node("late")
    assert cache.node_list() == [] and cache.image_nodes == {}
    cache.remove_pod("default/p")
    assert "late" not in cache.nodes

"""EventRecorder (names, aggregation of repeats) and shared informers (several handler
sets, indexes kept up to date), over tests/fakeapi."""

from __future__ import annotations

import asyncio

import pytest

from navarch._clock import FakeClock
from navarch._events import EventRecorder
from navarch._informer import InformerFactory
from navarch.v1 import core_pb2
from tests.fakeapi import FakeClient

pytestmark = pytest.mark.asyncio


def pod(name: str, node: str = "", ns: str = "default") -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace = name, ns
    p.spec.node_name = node
    return p


async def eventually(cond) -> None:  # type: ignore[no-untyped-def]
    """Poll ``cond`` (the fake API delivers watch events on the next loop turns)."""
    async with asyncio.timeout(2.0):
        while not cond():  # noqa: ASYNC110 - a cache filled by another task, no event to await
            await asyncio.sleep(0.001)


async def test_an_event_names_its_object_and_says_who_reported_it() -> None:
    client, clock = FakeClient(), FakeClock()
    target = client.seed(pod("web-1", ns="shop"))
    rec = EventRecorder(client, "navarch-scheduler", clock=clock)
    rec.event(target, "Warning", "FailedScheduling", "0/3 nodes are available")
    await rec.flush()
    (ev,) = client.stored("events", "shop")
    assert ev.metadata.name.startswith("web-1.")
    assert ev.involved_object.kind == "Pod" and ev.involved_object.uid == target.metadata.uid
    assert (ev.type, ev.reason, ev.count) == ("Warning", "FailedScheduling", 1)
    assert ev.source.component == "navarch-scheduler"
    await rec.stop()


async def test_repeats_within_the_window_count_up_one_event() -> None:
    client, clock = FakeClient(), FakeClock()
    target = client.seed(pod("web-1"))
    rec = EventRecorder(client, "c", clock=clock, aggregate_window=600)
    for _ in range(3):
        rec.event(target, "Warning", "BackOff", "restarting")
        await clock.advance(60)
    rec.event(target, "Warning", "BackOff", "something else")
    await rec.flush()
    events = client.stored("events")
    assert sorted((e.message, e.count) for e in events) == [("restarting", 3),
                                                             ("something else", 1)]
    await clock.advance(700)
    rec.event(target, "Warning", "BackOff", "restarting")
    await rec.flush()
    assert len(client.stored("events")) == 3  # past the window: a new event
    await rec.stop()


async def test_event_writes_failing_never_reach_the_caller() -> None:
    client = FakeClient()
    client.fail[("create", "events")] = RuntimeError("boom")
    rec = EventRecorder(client, "c", clock=FakeClock())
    rec.event(client.seed(pod("a")), "Normal", "Scheduled", "ok")
    await rec.flush()
    assert client.stored("events") == []
    await rec.stop()


async def test_shared_informer_feeds_every_handler_set_and_replays_to_late_ones() -> None:
    client = FakeClient([pod("a")])
    factory = InformerFactory(client)
    informer = factory.informer("pods")
    assert factory.informer("pods") is informer  # shared
    first: list[str] = []
    await informer.add_handlers(on_add=lambda o: first.append(o.metadata.name))
    factory.start()
    await factory.wait_synced(2)
    late: list[str] = []
    await informer.add_handlers(on_add=lambda o: late.append(o.metadata.name))
    assert first == ["a"] and late == ["a"]
    await client.pods("default").create(pod("b"))
    await eventually(lambda: len(first) == 2 and len(late) == 2)
    await factory.stop()


async def test_indexes_follow_adds_moves_and_deletes() -> None:
    client = FakeClient([pod("a", "n1"), pod("b", "n1"), pod("c", "n2")])
    factory = InformerFactory(client)
    informer = factory.informer("pods")
    informer.add_index("node", lambda p: [p.spec.node_name] if p.spec.node_name else [])
    factory.start()
    await factory.wait_synced(2)

    def on(node: str) -> list[str]:
        return sorted(p.metadata.name for p in informer.by_index("node", node))

    assert (on("n1"), on("n2")) == (["a", "b"], ["c"])
    moved = await client.pods().get("b")
    moved.spec.node_name = "n2"
    await client.pods().update(moved)
    await client.pods().delete("a")
    await eventually(lambda: on("n2") == ["b", "c"] and on("n1") == [])
    await factory.stop()


async def test_spam_from_one_object_is_capped_then_refills() -> None:
    client, clock = FakeClient(), FakeClock()
    owner = client.seed(pod("web-rs"))
    rec = EventRecorder(client, "c", clock=clock, spam_burst=5, spam_refill=60)
    for i in range(20):
        rec.event(owner, "Normal", "SuccessfulCreate", f"Created pod: web-{i}")
    rec.event(owner, "Normal", "SuccessfulDelete", "Deleted pod: web-0")  # another reason
    await rec.flush()
    assert len(client.stored("events")) == 6
    assert rec.dropped == 15
    await clock.advance(120)  # two tokens back
    for i in range(5):
        rec.event(owner, "Normal", "SuccessfulCreate", f"Created pod: again-{i}")
    await rec.flush()
    assert len(client.stored("events")) == 8
    await rec.stop()

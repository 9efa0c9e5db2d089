"""List (selectors, pagination, consistency) and watch (order, resume, selectors, expiry)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import aetcd
import pytest

import navarch
from navarch.v1 import api_pb2, core_pb2
from services.apiserver.watchcache import BATCH_EVENTS
from tests.api.harness import ApiServerProcess
from tests.api.util import configmap, next_events, pod
from tests.store.cluster import StoreCluster


async def _seed(client: navarch.Client, ns: str) -> None:
    labels = [
        {"app": "web", "tier": "front"},
        {"app": "web", "tier": "back"},
        {"app": "db", "tier": "back"},
        {"app": "db", "canary": "true"},
        {},
    ]
    for i, lab in enumerate(labels):
        await client.configmaps(ns).create(configmap(f"c{i}", ns, labels=lab))


@pytest.mark.parametrize(("selector", "expected"), [
    ("", ["c0", "c1", "c2", "c3", "c4"]),
    ("app=web", ["c0", "c1"]),
    ("app==web,tier=back", ["c1"]),
    ("app!=web", ["c2", "c3", "c4"]),
    ("tier in (front, back)", ["c0", "c1", "c2"]),
    ("tier notin (front)", ["c1", "c2", "c3", "c4"]),
    ("canary", ["c3"]),
    ("!canary,app", ["c0", "c1", "c2"]),
])
async def test_label_selectors(client: navarch.Client, ns: str, selector: str,
                               expected: list[str]) -> None:
    await _seed(client, ns)
    found = await client.configmaps(ns).list(label_selector=selector)
    assert [c.metadata.name for c in found.items] == expected


async def test_field_selectors(client: navarch.Client, ns: str) -> None:
    await _seed(client, ns)
    found = await client.configmaps(ns).list(field_selector="metadata.name=c2")
    assert [c.metadata.name for c in found.items] == ["c2"]
    found = await client.configmaps(ns).list(field_selector="metadata.name!=c2",
                                             label_selector="app=db")
    assert [c.metadata.name for c in found.items] == ["c3"]
    await client.pods(ns).create(pod("p1", ns))
    await client.pods(ns).create(pod("p2", ns))
    await client.bind(ns, "p2", "node-a")
    unbound = await client.pods(ns).list(field_selector="spec.nodeName=")
    assert [p.metadata.name for p in unbound.items] == ["p1"]
    on_a = await client.pods("").list(field_selector="spec.nodeName=node-a,status.phase=Pending")
    assert [p.metadata.name for p in on_a.items] == ["p2"]


async def test_bad_selectors_are_invalid(client: navarch.Client, ns: str) -> None:
    with pytest.raises(navarch.Invalid):
        await client.configmaps(ns).list(label_selector="app in (web")
    with pytest.raises(navarch.Invalid, match="not a known field selector"):
        await client.configmaps(ns).list(field_selector="spec.nodeName=x")


async def test_all_namespaces(client: navarch.Client, ns: str) -> None:
    await client.configmaps(ns).create(configmap("mine", ns))
    everywhere = await client.configmaps("").list(field_selector=f"metadata.namespace={ns}")
    assert [(c.metadata.namespace, c.metadata.name) for c in everywhere.items] == [(ns, "mine")]


async def test_pagination_is_consistent_at_one_revision(client: navarch.Client,
                                                        ns: str) -> None:
    cms = client.configmaps(ns)
    for i in range(25):
        await cms.create(configmap(f"c{i:02d}", ns, {"v": "old"}))
    first = await cms.list(limit=10)
    assert len(first.items) == 10 and first.continue_token
    assert first.remaining_item_count == 15
    for i in range(25):  # changes after the first page must not show on later pages
        await cms.patch(f"c{i:02d}", {"data": {"v": "new"}})
    await cms.create(configmap("c99", ns))
    second = await cms.list(limit=10, continue_token=first.continue_token)
    third = await cms.list(limit=10, continue_token=second.continue_token)
    assert second.resource_version == third.resource_version == first.resource_version
    assert not third.continue_token and len(third.items) == 5
    names = [c.metadata.name for page in (first, second, third) for c in page.items]
    assert names == [f"c{i:02d}" for i in range(25)]
    assert {c.data["v"] for page in (second, third) for c in page.items} == {"old"}


async def test_pagination_with_selector_fills_pages(client: navarch.Client, ns: str) -> None:
    cms = client.configmaps(ns)
    for i in range(30):
        await cms.create(configmap(f"c{i:02d}", ns, labels={"even": str(i % 2 == 0).lower()}))
    names: list[str] = []
    token = ""
    while True:
        page = await cms.list(limit=4, continue_token=token, label_selector="even=true")
        assert len(page.items) <= 4
        names += [c.metadata.name for c in page.items]
        token = page.continue_token
        if not token:
            break
    assert names == [f"c{i:02d}" for i in range(0, 30, 2)]


async def test_bad_continue_token(client: navarch.Client, ns: str) -> None:
    with pytest.raises(navarch.Invalid, match="continue token"):
        await client.configmaps(ns).list(limit=1, continue_token="garbage")


async def test_list_from_cache(client: navarch.Client, ns: str) -> None:
    await client.configmaps(ns).create(configmap("c", ns))

    async def cached() -> bool:
        listed = await client.configmaps(ns).list(resource_version="0")
        return [c.metadata.name for c in listed.items] == ["c"]

    from tests.api.util import eventually
    await eventually(cached, what="the watch cache to hold the new object")


async def test_watch_delivers_changes_in_order(client: navarch.Client, ns: str) -> None:
    cms = client.configmaps(ns)
    start = await cms.list()
    stream = cms.watch(resource_version=start.resource_version)
    a = await cms.create(configmap("a", ns))
    created_version = a.metadata.resource_version
    a.data["k"] = "2"
    updated = await cms.update(a)
    deleted = await cms.delete("a")
    async with contextlib.aclosing(stream):
        events = await next_events(stream, 3)
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    versions = [e.object.metadata.resource_version for e in events]
    assert versions == [created_version, updated.metadata.resource_version,
                        deleted.metadata.resource_version]
    assert int(versions[0]) < int(versions[1]) < int(versions[2])
    assert events[1].object.data["k"] == "2"


async def test_watch_resumes_from_any_version(client: navarch.Client, ns: str) -> None:
    cms = client.configmaps(ns)
    made = [await cms.create(configmap(f"c{i}", ns)) for i in range(5)]
    stream = cms.watch(resource_version=made[1].metadata.resource_version)
    async with contextlib.aclosing(stream):
        events = await next_events(stream, 3)
    assert [e.object.metadata.name for e in events] == ["c2", "c3", "c4"]


async def test_watch_without_version_starts_with_current_state(client: navarch.Client,
                                                               ns: str) -> None:
    cms = client.configmaps(ns)
    await cms.create(configmap("x", ns))
    await cms.create(configmap("y", ns))
    stream = cms.watch()
    async with contextlib.aclosing(stream):
        initial = await next_events(stream, 2)
        await cms.create(configmap("z", ns))
        later = await next_events(stream, 1)
    assert [(e.type, e.object.metadata.name) for e in initial] == [("ADDED", "x"), ("ADDED", "y")]
    assert (later[0].type, later[0].object.metadata.name) == ("ADDED", "z")


async def test_watch_selector_turns_leaving_into_deleted(client: navarch.Client,
                                                         ns: str) -> None:
    cms = client.configmaps(ns)
    start = await cms.list()
    stream = cms.watch(resource_version=start.resource_version, label_selector="app=web")
    await cms.create(configmap("c", ns, labels={"app": "db"}))
    await cms.patch("c", {"metadata": {"labels": {"app": "web"}}})
    await cms.patch("c", {"data": {"k": "2"}})
    await cms.patch("c", {"metadata": {"labels": {"app": "db"}}})
    async with contextlib.aclosing(stream):
        events = await next_events(stream, 3)
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]


async def test_watch_bookmarks(client: navarch.Client, ns: str) -> None:
    cms = client.configmaps(ns)
    created = await cms.create(configmap("c", ns))
    stream = cms.watch(resource_version=created.metadata.resource_version, allow_bookmarks=True)
    async with contextlib.aclosing(stream):
        await client.configmaps("default").create(configmap(f"other-{ns}", "default"))
        events = await next_events(stream, 1, skip_bookmarks=False)
    assert events[0].type == "BOOKMARK"
    assert int(events[0].object.metadata.resource_version) >= int(created.metadata.resource_version)


async def test_watch_from_before_the_window_is_gone(store: StoreCluster,
                                                   tmp_path: Path) -> None:
    server = ApiServerProcess(store.endpoints, tmp_path / "api", ["--watch-cache-size", "5"])
    server.start()
    try:
        async with navarch.Client(server.address) as client:
            cms = client.configmaps("default")
            first = await cms.create(configmap(f"w-{uuid.uuid4().hex[:8]}", "default"))
            for i in range(10):
                await cms.patch(first.metadata.name, {"data": {"i": str(i)}})
            stream = cms.watch(resource_version=first.metadata.resource_version)
            with pytest.raises(navarch.Gone, match="too old resource version"):
                async with contextlib.aclosing(stream):
                    await next_events(stream, 1)
            latest = await cms.get(first.metadata.name)
            recent = cms.watch(resource_version=str(int(latest.metadata.resource_version) - 1))
            async with contextlib.aclosing(recent):
                events = await next_events(recent, 1)
            assert events[0].object.data["i"] == "9"
    finally:
        server.stop()


async def test_watch_timeout_ends_stream(client: navarch.Client, ns: str) -> None:
    start = await client.configmaps(ns).list()
    stream = client.configmaps(ns).watch(resource_version=start.resource_version,
                                         timeout_seconds=1)
    got = [e async for e in stream]
    assert [e.type for e in got if e.type != "BOOKMARK"] == []


async def test_many_watchers_see_the_same_events(client: navarch.Client, ns: str) -> None:
    cms = client.configmaps(ns)
    start = await cms.list()
    streams = [cms.watch(resource_version=start.resource_version) for _ in range(50)]
    for i in range(3):
        await cms.create(configmap(f"c{i}", ns))
    results = await asyncio.gather(*(next_events(s, 3) for s in streams))
    for s in streams:
        await s.aclose()
    assert all([e.object.metadata.name for e in r] == ["c0", "c1", "c2"] for r in results)


async def test_list_at_compacted_revision_is_gone(fresh_store: StoreCluster,
                                                  tmp_path: Path) -> None:
    server = ApiServerProcess(fresh_store.endpoints, tmp_path / "api")
    server.start()
    try:
        async with navarch.Client(server.address) as client:
            cms = client.configmaps("default")
            for i in range(6):
                await cms.create(configmap(f"c{i}", "default"))
            page = await cms.list(limit=2)
            for i in range(6):
                await cms.patch(f"c{i}", {"data": {"k": "new"}})
            host, port = fresh_store.endpoints[0].split(":")
            async with aetcd.Client(host=host, port=int(port)) as etcd:
                await etcd.compact(int((await cms.list()).resource_version))
            with pytest.raises(navarch.Gone, match="continue parameter is too old"):
                await cms.list(limit=2, continue_token=page.continue_token)
            with pytest.raises(navarch.Gone, match="too old resource version"):
                await cms.list(resource_version=page.resource_version)
    finally:
        server.stop()


async def test_watch_batches_carry_every_queued_event(client: navarch.Client, ns: str) -> None:
    """WatchBatches sends what is queued for the watcher in one message (at most
    BATCH_EVENTS); Watch sends the same events one per message. A watch from "" waits
    until the watch cache holds the store's latest revision, then queues an ADDED event
    for every object at once: the queue is known in full when the first message goes."""
    cms = client.configmaps(ns)
    names = iter(range(BATCH_EVENTS + 10))

    async def creator() -> None:
        for i in names:
            await cms.create(configmap(f"c{i:04d}", ns))

    await asyncio.gather(*(creator() for _ in range(16)))
    expected = [c.metadata.name for c in (await cms.list()).items]
    assert len(expected) >= BATCH_EVENTS + 10
    request = api_pb2.WatchRequest(resource="configmaps", namespace=ns)

    async def messages(method: str) -> list[list[tuple[str, str, str]]]:
        call = client.stream(method, request)
        got: list[list[tuple[str, str, str]]] = []
        try:
            while sum(map(len, got)) < len(expected):
                msg = await asyncio.wait_for(call.read(), 20)
                batch = msg.events if method == "WatchBatches" else [msg]
                got.append([(e.type, e.object.type_url.rsplit(".", 1)[-1],
                             core_pb2.ConfigMap.FromString(e.object.value).metadata.name)
                            for e in batch])
        finally:
            call.cancel()
        return got

    batches = await messages("WatchBatches")
    single = await messages("Watch")
    assert [len(b) for b in batches] == [BATCH_EVENTS, len(expected) - BATCH_EVENTS]
    assert [len(m) for m in single] == [1] * len(expected)
    flat = [e for b in batches for e in b]
    assert flat == [e for m in single for e in m]
    assert flat == [("ADDED", "ConfigMap", name) for name in expected]

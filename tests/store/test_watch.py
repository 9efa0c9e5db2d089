"""Conformance: the Watch service behaves like etcd v3.4.

Each test drives raw bidirectional Watch streams (:class:`WatchStream`) and keeps to its
own ``prefix``. Absence of events is never waited out with a timer: a later write that
*is* watched, or a progress request (whose answer follows everything sent before it),
shows that nothing else was delivered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest_asyncio
from aetcd.rpc import kv_pb2, rpc_pb2

from tests.store.cluster import StoreCluster
from tests.store.etcd_api import (
    PROGRESS_WATCH_ID,
    EtcdApi,
    connect,
    current_revision,
    flat_events,
    op_delete,
    op_put,
    prefix_end,
    put,
)

PUT, DELETE = kv_pb2.Event.PUT, kv_pb2.Event.DELETE
WatchCreate = rpc_pb2.WatchCreateRequest


@pytest_asyncio.fixture
async def api(store: StoreCluster) -> AsyncIterator[EtcdApi]:
    async with connect(store.endpoints[0]) as a:
        yield a


def summary(events: list[kv_pb2.Event]) -> list[tuple[int, bytes, int]]:
    """(type, key, mod_revision) of each event."""
    return [(ev.type, ev.kv.key, ev.kv.mod_revision) for ev in events]


async def test_create_response(api: EtcdApi, prefix: bytes) -> None:
    rev = await current_revision(api)
    async with api.watch_stream() as ws:
        created = await ws.create(prefix + b"k")
        assert created.watch_id >= 0
        assert created.header.revision == rev
        assert created.header.cluster_id != 0


async def test_put_and_delete_events(api: EtcdApi, prefix: bytes) -> None:
    key = prefix + b"k"
    lease = await api.lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=300))
    try:
        async with api.watch_stream() as ws:
            created = await ws.create(key)
            r1 = (await put(api, key, b"one")).header.revision
            r2 = (await put(api, key, b"two", lease=lease.ID)).header.revision
            r3 = (await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=key))).header.revision
            responses = await ws.events(3)
            for resp in responses:
                assert resp.watch_id == created.watch_id
                assert resp.header.revision >= max(ev.kv.mod_revision for ev in resp.events)
            first, second, deleted = flat_events(responses)
            assert (first.type, first.kv.key, first.kv.value) == (PUT, key, b"one")
            assert (first.kv.create_revision, first.kv.mod_revision, first.kv.version,
                    first.kv.lease) == (r1, r1, 1, 0)
            assert (second.type, second.kv.value, second.kv.lease) == (PUT, b"two", lease.ID)
            assert (second.kv.create_revision, second.kv.mod_revision,
                    second.kv.version) == (r1, r2, 2)
            # a delete event carries the key and the deletion revision only
            assert deleted.type == DELETE
            assert (deleted.kv.key, deleted.kv.mod_revision) == (key, r3)
            assert (deleted.kv.create_revision, deleted.kv.version, deleted.kv.value,
                    deleted.kv.lease) == (0, 0, b"", 0)
            for ev in (first, second, deleted):
                assert not ev.HasField("prev_kv")
    finally:
        await api.lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease.ID))


async def test_prev_kv(api: EtcdApi, prefix: bytes) -> None:
    key = prefix + b"k"
    async with api.watch_stream() as ws:
        await ws.create(key, prev_kv=True)
        r1 = (await put(api, key, b"one")).header.revision
        await put(api, key, b"two")
        await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=key))
        created, updated, deleted = flat_events(await ws.events(3))
        assert not created.HasField("prev_kv")  # nothing was there before
        assert (updated.prev_kv.key, updated.prev_kv.value, updated.prev_kv.version,
                updated.prev_kv.mod_revision) == (key, b"one", 1, r1)
        assert (deleted.prev_kv.value, deleted.prev_kv.version) == (b"two", 2)
        assert deleted.prev_kv.create_revision == r1


async def test_filters(api: EtcdApi, prefix: bytes) -> None:
    key = prefix + b"k"
    async with api.watch_stream() as ws:
        no_put = (await ws.create(key, filters=[WatchCreate.NOPUT])).watch_id
        no_delete = (await ws.create(key, filters=[WatchCreate.NODELETE])).watch_id
        r1 = (await put(api, key)).header.revision
        r2 = (await put(api, key)).header.revision
        r3 = (await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=key))).header.revision
        r4 = (await put(api, key)).header.revision
        r5 = (await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=key))).header.revision
        responses = await ws.events(5)
        by_watch: dict[int, list[kv_pb2.Event]] = {no_put: [], no_delete: []}
        for resp in responses:
            by_watch[resp.watch_id].extend(resp.events)
        assert summary(by_watch[no_put]) == [(DELETE, key, r3), (DELETE, key, r5)]
        assert summary(by_watch[no_delete]) == [(PUT, key, r1), (PUT, key, r2), (PUT, key, r4)]


async def test_range_watches(api: EtcdApi, prefix: bytes) -> None:
    directory = prefix + b"dir/"
    async with api.watch_stream() as ws:
        half_open = (await ws.create(prefix + b"b", prefix + b"d")).watch_id
        by_prefix = (await ws.create(directory, prefix_end(directory))).watch_id
        from_key = (await ws.create(prefix + b"m", b"\0")).watch_id
        writes = [prefix + b"a", prefix + b"b", prefix + b"c", prefix + b"d",
                  prefix + b"dir", directory + b"x", prefix + b"dir0", directory + b"y/z",
                  prefix + b"l", prefix + b"m", prefix + b"zz"]
        revs = {k: (await put(api, k)).header.revision for k in writes}
        expected = {
            half_open: [prefix + b"b", prefix + b"c"],
            by_prefix: [directory + b"x", directory + b"y/z"],
            from_key: [prefix + b"m", prefix + b"zz"],
        }
        responses = await ws.events(sum(len(v) for v in expected.values()))
        got: dict[int, list[tuple[int, bytes, int]]] = {w: [] for w in expected}
        for resp in responses:
            got[resp.watch_id].extend(summary(list(resp.events)))
        assert got == {w: [(PUT, k, revs[k]) for k in keys] for w, keys in expected.items()}
        # nothing else was sent for the writes above
        await ws.progress()


async def test_many_watches_on_one_stream(api: EtcdApi, prefix: bytes) -> None:
    keys = [prefix + b"k%d" % i for i in range(8)]
    async with api.watch_stream() as ws:
        ids = [(await ws.create(k)).watch_id for k in keys]
        assert len(set(ids)) == len(ids)
        everything = (await ws.create(prefix, prefix_end(prefix))).watch_id
        assert everything not in ids
        for k in reversed(keys):
            await put(api, k, k)
        responses = await ws.events(2 * len(keys))
        got: dict[int, list[bytes]] = {}
        for resp in responses:
            got.setdefault(resp.watch_id, []).extend(ev.kv.value for ev in resp.events)
        assert got == {everything: list(reversed(keys)), **{w: [k] for w, k in zip(ids, keys,
                                                                                   strict=True)}}


async def test_watch_on_every_member_sees_writes(store: StoreCluster, api: EtcdApi,
                                                 prefix: bytes) -> None:
    key = prefix + b"k"
    async with AsyncExitStack() as stack:
        streams = []
        for endpoint in store.endpoints:
            member = await stack.enter_async_context(connect(endpoint))
            streams.append(await stack.enter_async_context(member.watch_stream()))
        for ws in streams:
            await ws.create(key)
        rev = (await put(api, key, b"replicated")).header.revision
        for ws in streams:
            (ev,) = flat_events(await ws.events(1))
            assert (ev.kv.value, ev.kv.mod_revision) == (b"replicated", rev)


async def test_txn_events_arrive_in_one_response(api: EtcdApi, prefix: bytes) -> None:
    a, b, c, d = (prefix + k for k in (b"a", b"b", b"c", b"d"))
    await put(api, d)
    async with api.watch_stream() as ws:
        await ws.create(prefix, prefix_end(prefix))
        txn = await api.kv.Txn(rpc_pb2.TxnRequest(
            success=[op_put(c), op_put(a), op_delete(d), op_put(b)]))
        rev = txn.header.revision
        (resp,) = await ws.events(4)  # one response holds the whole revision
        # in the order of the operations in the txn
        assert summary(list(resp.events)) == [(PUT, c, rev), (PUT, a, rev), (DELETE, d, rev),
                                              (PUT, b, rev)]
    async with api.watch_stream() as ws:  # and so does a catch-up from history
        await ws.create(prefix, prefix_end(prefix), start_revision=rev)
        (resp,) = await ws.events(4)
        assert [ev.kv.key for ev in resp.events] == [c, a, d, b]


async def test_catch_up_from_history(api: EtcdApi, prefix: bytes) -> None:
    key_a, key_b = prefix + b"a", prefix + b"b"
    history: list[tuple[int, bytes, int]] = []
    for i in range(12):
        key = key_a if i % 3 else key_b
        if i % 5 == 4:
            rev = (await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=key))).header.revision
            history.append((DELETE, key, rev))
        else:
            rev = (await put(api, key, b"%d" % i)).header.revision
            history.append((PUT, key, rev))
    await put(api, prefix + b"unwatched")  # outside the watched range [a, c)
    first = history[0][2]
    async with api.watch_stream() as ws:
        watch_id = (await ws.create(key_a, prefix + b"c", start_revision=first)).watch_id
        responses = await ws.events(len(history))
        assert {resp.watch_id for resp in responses} == {watch_id}
        events = flat_events(responses)
        assert summary(events) == history  # every revision once, in order
        assert [ev.kv.value for ev in events if ev.type == PUT] == [
            b"%d" % i for i in range(12) if i % 5 != 4]
        live = (await put(api, key_a, b"live")).header.revision  # history hands over to live
        assert summary(flat_events(await ws.events(1))) == [(PUT, key_a, live)]
        history.append((PUT, key_a, live))

    # a client that saw up to some revision resumes from the next one and misses nothing
    seen = history[6][2]
    async with api.watch_stream() as ws:
        await ws.create(key_a, prefix + b"c", start_revision=seen + 1)
        assert summary(flat_events(await ws.events(len(history) - 7))) == history[7:]
        await ws.progress()


async def test_start_revision_in_the_future(api: EtcdApi, prefix: bytes) -> None:
    key = prefix + b"k"
    rev = await current_revision(api)
    async with api.watch_stream() as ws:
        await ws.create(key, start_revision=rev + 2)
        assert (await put(api, key, b"early")).header.revision == rev + 1
        assert (await put(api, key, b"on-time")).header.revision == rev + 2
        (ev,) = flat_events(await ws.events(1))
        assert (ev.kv.value, ev.kv.mod_revision) == (b"on-time", rev + 2)


async def test_progress_request(api: EtcdApi, prefix: bytes) -> None:
    async with api.watch_stream() as ws:
        await ws.create(prefix + b"a")
        await ws.create(prefix + b"b")
        rev = (await put(api, prefix + b"a")).header.revision
        await ws.events(1)
        progress = await ws.progress()
        assert progress.watch_id == PROGRESS_WATCH_ID
        assert rev <= progress.header.revision <= await current_revision(api)
        # the stream carries on after a progress notification
        rev_b = (await put(api, prefix + b"b")).header.revision
        (ev,) = flat_events(await ws.events(1))
        assert ev.kv.mod_revision == rev_b


async def test_cancel(api: EtcdApi, prefix: bytes) -> None:
    a, b = prefix + b"a", prefix + b"b"
    async with api.watch_stream() as ws:
        watch_a = (await ws.create(a)).watch_id
        watch_b = (await ws.create(b)).watch_id
        canceled = await ws.cancel(watch_a)
        assert canceled.watch_id == watch_a and not canceled.created
        assert canceled.header.revision == await current_revision(api)
        await put(api, a)  # no longer watched
        rev_b = (await put(api, b)).header.revision
        (resp,) = await ws.events(1)
        assert resp.watch_id == watch_b
        assert summary(list(resp.events)) == [(PUT, b, rev_b)]


async def test_cancel_unknown_watch_is_ignored(api: EtcdApi, prefix: bytes) -> None:
    async with api.watch_stream() as ws:
        watch_id = (await ws.create(prefix + b"k")).watch_id
        ws.send(rpc_pb2.WatchRequest(
            cancel_request=rpc_pb2.WatchCancelRequest(watch_id=watch_id + 1000)))
        await ws.progress()  # the next response is the progress one: no answer to the cancel
        rev = (await put(api, prefix + b"k")).header.revision
        (ev,) = flat_events(await ws.events(1))
        assert ev.kv.mod_revision == rev


async def test_client_chosen_watch_id(api: EtcdApi, prefix: bytes) -> None:
    key = prefix + b"k"
    async with api.watch_stream() as ws:
        created = await ws.create(key, watch_id=100)
        assert created.watch_id == 100
        ws.send_create(prefix + b"other", watch_id=100)
        refused = await ws.next()
        assert refused.created and refused.canceled
        assert refused.watch_id == PROGRESS_WATCH_ID
        assert refused.cancel_reason == "mvcc: duplicate watch ID provided on the WatchStream"
        auto = await ws.create(prefix + b"auto")
        assert auto.watch_id not in (100, PROGRESS_WATCH_ID)
        rev = (await put(api, key)).header.revision
        (resp,) = await ws.events(1)
        assert resp.watch_id == 100 and resp.events[0].kv.mod_revision == rev
        await ws.cancel(100)


async def test_watch_ids_are_per_stream(api: EtcdApi, prefix: bytes) -> None:
    async with api.watch_stream() as first, api.watch_stream() as second:
        await first.create(prefix + b"k", watch_id=7)
        await second.create(prefix + b"k", watch_id=7)  # no clash across streams
        rev = (await put(api, prefix + b"k")).header.revision
        for ws in (first, second):
            (resp,) = await ws.events(1)
            assert resp.watch_id == 7 and resp.events[0].kv.mod_revision == rev


async def test_watch_from_compacted_revision_is_canceled(fresh_store: StoreCluster) -> None:
    key = b"/compacted/k"
    async with connect(fresh_store.endpoints[0]) as api:
        revs = [(await put(api, key, b"%d" % i)).header.revision for i in range(3)]
        await api.kv.Compact(rpc_pb2.CompactionRequest(revision=revs[1], physical=True))
        async with api.watch_stream() as ws:
            ws.send_create(key, start_revision=revs[0])
            created = await ws.next()
            assert created.created and not created.canceled
            canceled = await ws.next()
            assert canceled.canceled and not canceled.events
            assert canceled.watch_id == created.watch_id
            assert canceled.compact_revision == revs[1]
            # the compaction revision itself can still be watched from
            await ws.create(key, start_revision=revs[1])
            assert [ev.kv.value for ev in flat_events(await ws.events(2))] == [b"1", b"2"]

"""Conformance of services/apiserver/storage.py: one suite, run against a 3-member
raftstore and a 3-member etcd (NAVARCH_STORE_BACKENDS), plus the retry rules checked
against a scripted etcd v3 KV server.

Tests on the shared ``store`` keep to their own ``prefix``; tests that compact or kill
members get a ``fresh_store``. A watch is read with a deadline per batch, so a missing
batch fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
import pytest_asyncio
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

from services.apiserver.storage import (
    AmbiguousWrite,
    Compacted,
    Compare,
    Delete,
    EtcdStore,
    FutureRevision,
    Get,
    KeyValue,
    Put,
    StoreError,
    StoreUnavailable,
    WatchBatch,
    key_absent,
    key_at,
)
from tests.store.cluster import StoreCluster
from tests.store.etcd_api import prefix_end

BATCH_TIMEOUT = 20.0


@pytest_asyncio.fixture
async def db(store: StoreCluster) -> AsyncIterator[EtcdStore]:
    """An EtcdStore over every member of the shared cluster."""
    s = EtcdStore(store.endpoints, progress_interval=0.2)
    try:
        yield s
    finally:
        await s.close()


async def next_batch(it: AsyncIterator[WatchBatch]) -> WatchBatch:
    return await asyncio.wait_for(anext(it), BATCH_TIMEOUT)


async def batches_through(it: AsyncIterator[WatchBatch], revision: int) -> list[WatchBatch]:
    """Batches up to and including the one that reaches ``revision``."""
    got = [await next_batch(it)]
    while got[-1].revision < revision:
        got.append(await next_batch(it))
    return got


def changes(batches: list[WatchBatch]) -> list[tuple[str, bytes, bytes, int, bytes | None]]:
    """(type, key, value, mod_revision, previous value) of every event, in order."""
    return [(e.type, e.kv.key, e.kv.value, e.kv.mod_revision,
             e.prev_kv.value if e.prev_kv else None) for b in batches for e in b.events]


def assert_ordered(batches: list[WatchBatch]) -> None:
    revisions = [b.revision for b in batches]
    assert revisions == sorted(set(revisions)), revisions
    for b in batches:
        assert all(e.kv.mod_revision == b.revision for e in b.events)


async def put(db: EtcdStore, key: bytes, value: bytes = b"v") -> int:
    result = await db.txn([], [Put(key, value)])
    assert result.succeeded
    return result.revision


# --------------------------------------------------------------------------- get / page


async def test_get_latest_at_revision_and_absent(db: EtcdStore, prefix: bytes) -> None:
    key = prefix + b"k"
    r1 = await put(db, key, b"v1")
    r2 = await put(db, key, b"v2")
    assert await db.get(key) == KeyValue(key, b"v2", r1, r2, 2, 0)
    assert await db.get(key, revision=r1) == KeyValue(key, b"v1", r1, r1, 1, 0)
    assert await db.get(prefix + b"absent") is None
    assert await db.current_revision() >= r2


async def test_get_future_revision(db: EtcdStore, prefix: bytes) -> None:
    with pytest.raises(FutureRevision):
        await db.get(prefix + b"k", revision=await db.current_revision() + 1000)


async def test_page_limit_count_more_and_pinned_revision(db: EtcdStore, prefix: bytes) -> None:
    keys = [prefix + b"k%02d" % i for i in range(7)]
    written = await db.txn([], [Put(k, b"old") for k in reversed(keys)])
    end = prefix_end(prefix)
    first = await db.page(prefix, end, limit=3)
    assert [kv.key for kv in first.kvs] == keys[:3]
    assert (first.more, first.count) == (True, 7)
    assert first.revision >= written.revision
    # the range changes between pages: an insert, an update, a delete
    await db.txn([], [Put(prefix + b"k00a", b"new"), Put(keys[4], b"new"), Delete(keys[5])])
    pages, start = [first], first.kvs[-1].key + b"\0"
    while pages[-1].more:
        pages.append(await db.page(start, end, revision=first.revision, limit=3))
        start = pages[-1].kvs[-1].key + b"\0"
    assert [(p.revision, len(p.kvs), p.count, p.more) for p in pages] == [
        (first.revision, 3, 7, True), (first.revision, 3, 4, True),
        (first.revision, 1, 1, False)]
    assert [(kv.key, kv.value) for p in pages for kv in p.kvs] == [(k, b"old") for k in keys]
    latest = await db.page(prefix, end)
    assert [kv.key for kv in latest.kvs] == [keys[0], prefix + b"k00a", *keys[1:5], keys[6]]
    assert (latest.count, latest.more) == (7, False)
    assert latest.kvs[5].value == b"new"


async def test_page_of_empty_range(db: EtcdStore, prefix: bytes) -> None:
    page = await db.page(prefix, prefix_end(prefix), limit=10)
    assert (page.kvs, page.more, page.count) == ((), False, 0)
    assert page.revision == await db.current_revision()


async def test_list_of_5000_1kib_objects_in_one_page(db: EtcdStore, prefix: bytes) -> None:
    value = b"x" * 1024
    for chunk in range(50):
        await db.txn([], [Put(prefix + b"%05d" % (chunk * 100 + i), value) for i in range(100)])
    page = await db.page(prefix, prefix_end(prefix))
    assert (len(page.kvs), page.count, page.more) == (5000, 5000, False)
    assert page.kvs[-1].key == prefix + b"04999"


# --------------------------------------------------------------------------- txn


async def test_txn_creates_three_keys_atomically(db: EtcdStore, prefix: bytes) -> None:
    a, b, c = prefix + b"a", prefix + b"b", prefix + b"c"
    result = await db.txn([key_absent(a), key_absent(b), key_absent(c)],
                          [Put(a, b"1"), Put(b, b"2"), Put(c, b"3")])
    assert (result.succeeded, result.kvs) == (True, (None, None, None))
    page = await db.page(prefix, prefix_end(prefix))
    assert [(kv.key, kv.value, kv.mod_revision) for kv in page.kvs] == [
        (a, b"1", result.revision), (b, b"2", result.revision), (c, b"3", result.revision)]


async def test_txn_conflict_writes_nothing(db: EtcdStore, prefix: bytes) -> None:
    a, b, c = prefix + b"a", prefix + b"b", prefix + b"c"
    theirs = await put(db, b, b"theirs")
    result = await db.txn([key_absent(a), key_absent(b), key_absent(c)],
                          [Put(a, b"1"), Put(b, b"2"), Put(c, b"3")],
                          [Get(a), Get(b), Get(c)])
    assert not result.succeeded
    assert result.kvs == (None, KeyValue(b, b"theirs", theirs, theirs, 1, 0), None)
    assert result.revision == theirs == await db.current_revision()
    assert [kv.key for kv in (await db.page(prefix, prefix_end(prefix))).kvs] == [b]


async def test_txn_returns_previous_values(db: EtcdStore, prefix: bytes) -> None:
    a, b, gone = prefix + b"a", prefix + b"b", prefix + b"gone"
    r1 = await db.txn([], [Put(a, b"a1"), Put(b, b"b1")])
    r2 = await db.txn([key_at(a, r1.revision)], [Put(a, b"a2"), Delete(b), Delete(gone)])
    assert r2.succeeded
    assert r2.kvs == (KeyValue(a, b"a1", r1.revision, r1.revision, 1, 0),
                      KeyValue(b, b"b1", r1.revision, r1.revision, 1, 0), None)
    stale = await db.txn([key_at(a, r1.revision)], [Put(a, b"a3")], [Get(a)])
    assert not stale.succeeded
    assert stale.kvs == (KeyValue(a, b"a2", r1.revision, r2.revision, 2, 0),)
    assert await db.get(b) is None


COMPARES: list[tuple[str, str, Callable[[KeyValue], int | bytes], bool]] = [
    ("mod", "=", lambda kv: kv.mod_revision, True),
    ("mod", "=", lambda kv: kv.mod_revision - 1, False),
    ("mod", "!=", lambda kv: kv.mod_revision - 1, True),
    ("mod", "<", lambda kv: kv.mod_revision + 1, True),
    ("mod", ">", lambda kv: kv.mod_revision, False),
    ("create", "=", lambda kv: kv.create_revision, True),
    ("create", "=", lambda kv: 0, False),
    ("create", "<", lambda kv: kv.mod_revision, True),
    ("version", "=", lambda kv: 2, True),
    ("version", ">", lambda kv: 1, True),
    ("version", "<", lambda kv: 2, False),
    ("value", "=", lambda kv: b"v2", True),
    ("value", "!=", lambda kv: b"v2", False),
    ("value", ">", lambda kv: b"v1", True),
    ("value", "<", lambda kv: b"v1", False),
]


@pytest.mark.parametrize(("target", "op", "operand", "holds"), COMPARES,
                         ids=[f"{t}{o}{i}" for i, (t, o, _, _) in enumerate(COMPARES)])
async def test_compare(db: EtcdStore, prefix: bytes, target: Any, op: Any,
                       operand: Callable[[KeyValue], int | bytes], holds: bool) -> None:
    key = prefix + b"k"
    await put(db, key, b"v1")
    await put(db, prefix + b"other")
    await put(db, key, b"v2")
    kv = await db.get(key)
    assert kv is not None
    result = await db.txn([Compare(key, target, op, operand(kv))], [Get(key)], [])
    assert result.succeeded is holds
    assert result.kvs == ((kv,) if holds else ())


async def test_compares_on_an_absent_key(db: EtcdStore, prefix: bytes) -> None:
    absent = prefix + b"absent"
    result = await db.txn([key_absent(absent), Compare(absent, "version", "=", 0),
                           Compare(absent, "mod", "=", 0)], [Get(absent)])
    assert (result.succeeded, result.kvs) == (True, (None,))


@pytest.mark.parametrize(("target", "operand"), [("value", 1), ("mod", b"1"), ("version", True),
                                                 ("lease", 0)])
def test_compare_rejects_a_mismatched_operand(target: Any, operand: Any) -> None:
    with pytest.raises(ValueError, match="Compare"):
        Compare(b"k", target, "=", operand)


# --------------------------------------------------------------------------- watch


async def test_watch_batches_are_ordered_and_complete(db: EtcdStore, prefix: bytes) -> None:
    end = prefix_end(prefix)
    k = [prefix + b"k%d" % i for i in range(10)]
    start = await db.current_revision() + 1
    it = db.watch(prefix, end, start_revision=start)
    # written before the first read: the watch replays them from history
    many = await db.txn([], [Put(key, b"x") for key in k])
    await put(db, prefix_end(prefix) + b"elsewhere")
    upd = await put(db, k[0], b"y")
    batches = await batches_through(it, upd)
    assert_ordered(batches)
    assert [b.revision for b in batches if b.events] == [many.revision, upd]
    assert changes(batches) == [("PUT", key, b"x", many.revision, None) for key in k] + [
        ("PUT", k[0], b"y", upd, b"x")]
    # live: written while the watch is caught up
    gone = (await db.txn([], [Delete(k[1]), Delete(k[2])])).revision
    last = await put(db, k[3], b"z")
    live = await batches_through(it, last)
    assert_ordered(batches + live)
    assert changes(live) == [("DELETE", k[1], b"", gone, b"x"), ("DELETE", k[2], b"", gone, b"x"),
                             ("PUT", k[3], b"z", last, b"x")]
    await it.aclose()


async def test_watch_progress_notification(db: EtcdStore, prefix: bytes) -> None:
    it = db.watch(prefix, prefix_end(prefix), start_revision=await db.current_revision() + 1)
    mine = await put(db, prefix + b"k")
    assert changes([await next_batch(it)])[0][3] == mine
    outside = await put(db, prefix_end(prefix) + b"elsewhere")
    assert await next_batch(it) == WatchBatch(outside, ())
    await it.aclose()


async def test_member_notifications_cover_a_quiet_resumed_watch(
        notifying_store: StoreCluster, prefix: bytes) -> None:
    db = EtcdStore(notifying_store.endpoints, progress_interval=0)  # never asks
    try:
        start = await db.current_revision() + 1
        outside = await put(db, prefix_end(prefix) + b"elsewhere")
        it = db.watch(prefix, prefix_end(prefix), start_revision=start)
        batch = await next_batch(it)
        assert batch.events == () and batch.revision >= outside
        await it.aclose()
    finally:
        await db.close()


async def test_compacted_page_get_and_watch(fresh_store: StoreCluster, prefix: bytes) -> None:
    db = EtcdStore(fresh_store.endpoints)
    try:
        key, end = prefix + b"k", prefix_end(prefix)
        r1, r2, r3 = [await put(db, key, b"v%d" % i) for i in (1, 2, 3)]
        await db.compact(r3)
        with pytest.raises(Compacted) as page_err:
            await db.page(prefix, end, revision=r1)
        with pytest.raises(Compacted) as get_err:
            await db.get(key, revision=r2)
        with pytest.raises(Compacted) as watch_err:
            await next_batch(db.watch(prefix, end, start_revision=r2))
        assert page_err.value.compact_revision == get_err.value.compact_revision == r3
        assert watch_err.value.compact_revision == r3
        assert (await db.get(key, revision=r3)) == KeyValue(key, b"v3", r1, r3, 3, 0)
        batch = await next_batch(db.watch(prefix, end, start_revision=r3))
        # (its prev_kv, at r2, is compacted too: the backends may leave it out)
        assert [c[:4] for c in changes([batch])] == [("PUT", key, b"v3", r3)]
        await db.compact(r3)  # idempotent
        await db.compact(r2)  # already past it
    finally:
        await db.close()


async def test_close_ends_a_running_watch(store: StoreCluster, prefix: bytes) -> None:
    db = EtcdStore(store.endpoints, progress_interval=0)
    it = db.watch(prefix, prefix_end(prefix), start_revision=await db.current_revision() + 1)
    mine = await put(db, prefix + b"k")
    assert (await next_batch(it)).revision == mine
    waiting = asyncio.ensure_future(next_batch(it))
    await db.close()
    with pytest.raises(StoreError, match="closed"):
        await waiting


# --------------------------------------------------------------------------- failover


def kill(cluster: StoreCluster, member: int) -> Any:
    """Kill a member, then wait for a leader among the others (off the event loop)."""
    def run() -> None:
        cluster.kill(member)
        cluster.wait_leader(30.0, exclude=member)
    return asyncio.to_thread(run)


async def test_watch_resumes_after_its_member_dies(fresh_store: StoreCluster,
                                                   prefix: bytes) -> None:
    db = EtcdStore(fresh_store.endpoints, progress_interval=0.2)  # pick_first: member 0
    writer = EtcdStore(fresh_store.endpoints[1:])
    try:
        keys = [prefix + b"k%02d" % i for i in range(12)]
        it = db.watch(prefix, prefix_end(prefix), start_revision=await db.current_revision() + 1)
        written = [(k, await put(writer, k)) for k in keys[:4]]
        seen = await batches_through(it, written[-1][1])
        await kill(fresh_store, 0)
        written += [(k, await put(writer, k)) for k in keys[4:]]
        seen += await batches_through(it, written[-1][1])
        assert_ordered(seen)
        assert [(c[1], c[3]) for c in changes(seen)] == written
        assert db.watch_resumes >= 1
        await it.aclose()
    finally:
        await db.close()
        await writer.close()


async def test_get_and_txn_fail_over_from_a_dead_first_member(fresh_store: StoreCluster,
                                                             prefix: bytes) -> None:
    db = EtcdStore(fresh_store.endpoints)
    try:
        key = prefix + b"k"
        await put(db, key, b"before")  # connected to member 0
        await kill(fresh_store, 0)
        result = await db.txn([key_absent(prefix + b"new")], [Put(prefix + b"new", b"after")])
        assert result.succeeded
        kv = await db.get(prefix + b"new")
        assert kv is not None and kv.mod_revision == result.revision
        # a client started after the death skips the dead member too
        late = EtcdStore(fresh_store.endpoints)
        try:
            assert await late.get(key) is not None
            assert (await late.txn([], [Put(key, b"late")])).succeeded
        finally:
            await late.close()
    finally:
        await db.close()


# --------------------------------------------------------------------------- retry rules


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_nothing_listening_is_unavailable_not_ambiguous() -> None:
    db = EtcdStore([f"127.0.0.1:{free_port()}"], retry_budget=0.5)
    try:
        with pytest.raises(StoreUnavailable) as read_err:
            await db.get(b"k")
        with pytest.raises(StoreUnavailable) as write_err:
            await db.txn([], [Put(b"k", b"v")])
        with pytest.raises(StoreUnavailable, match="watch"):
            await next_batch(db.watch(b"a", b"b", start_revision=1))
        assert not isinstance(read_err.value, AmbiguousWrite)
        assert not isinstance(write_err.value, AmbiguousWrite)
        assert db.retries >= 2
    finally:
        await db.close()


HANG = "hang"


class ScriptedKV(rpc_pb2_grpc.KVServicer):  # type: ignore[misc]
    """A KV service that answers each call with the next scripted failure, then success."""

    def __init__(self, script: list[tuple[grpc.StatusCode, str] | str]) -> None:
        self.script = list(script)
        self.calls = 0
        self.metadata: list[dict[str, str]] = []

    async def _answer(self, context: grpc.aio.ServicerContext, ok: Any) -> Any:
        self.calls += 1
        self.metadata.append(dict(context.invocation_metadata() or ()))
        if not self.script:
            return ok
        step = self.script.pop(0)
        if step == HANG:
            await asyncio.Event().wait()
        assert not isinstance(step, str)
        await context.abort(*step)

    async def Range(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        resp = rpc_pb2.RangeResponse(count=0)
        resp.header.revision = 7
        return await self._answer(context, resp)

    async def Txn(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        resp = rpc_pb2.TxnResponse(succeeded=True)
        resp.header.revision = 7
        return await self._answer(context, resp)


U, R = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED
RETRY_RULES: list[tuple[str, list[Any], str, type[Exception] | None, int]] = [
    # (request, scripted failures, ...) -> expected error (None: succeeds), calls made
    ("write", [(U, "etcdserver: no leader")] * 2, "no leader: never proposed", None, 3),
    ("write", [(R, "etcdserver: too many requests")], "too many requests", None, 2),
    ("write", [(U, "etcdserver: leader changed")], "leader changed", AmbiguousWrite, 1),
    ("write", [(U, "etcdserver: request timed out")], "timed out", AmbiguousWrite, 1),
    ("write", [(U, "Stream removed (Socket closed)")], "connection lost", AmbiguousWrite, 1),
    ("write", [HANG], "no answer", AmbiguousWrite, 1),
    ("write", [(grpc.StatusCode.INVALID_ARGUMENT,
                "etcdserver: duplicate key given in txn request")], "refused", StoreError, 1),
    ("read", [(U, "etcdserver: leader changed"), (U, "etcdserver: request timed out")],
     "read retried", None, 3),
    ("read", [HANG], "read times out and is retried", None, 2),
    ("read", [(U, "etcdserver: no leader")] * 50, "budget spent", StoreUnavailable, 0),
    ("read", [(grpc.StatusCode.OUT_OF_RANGE,
               "etcdserver: mvcc: required revision is a future revision")], "future",
     FutureRevision, 1),
]


@pytest_asyncio.fixture
async def scripted() -> AsyncIterator[tuple[ScriptedKV, str]]:
    kv = ScriptedKV([])
    server = grpc.aio.server()
    rpc_pb2_grpc.add_KVServicer_to_server(kv, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield kv, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@pytest.mark.parametrize(("request_kind", "script", "case", "error", "calls"), RETRY_RULES,
                         ids=[r[2] for r in RETRY_RULES])
async def test_retry_rules(scripted: tuple[ScriptedKV, str], request_kind: str,
                           script: list[Any], case: str, error: type[Exception] | None,
                           calls: int) -> None:
    kv, endpoint = scripted
    kv.script = list(script)
    db = EtcdStore([endpoint], retry_budget=2.0, attempt_timeout=0.3)
    try:
        async def run() -> Any:
            if request_kind == "write":
                return await db.txn([key_absent(b"k")], [Put(b"k", b"v")])
            return await db.get(b"k")
        if error is None:
            await run()
        else:
            with pytest.raises(error) as err:
                await run()
            assert type(err.value) is error
        if calls:
            assert kv.calls == calls
        assert all(md.get("hasleader") == "true" for md in kv.metadata)
    finally:
        await db.close()


async def test_a_member_without_leader_is_moved_last(scripted: tuple[ScriptedKV, str],
                                                     store: StoreCluster,
                                                     prefix: bytes) -> None:
    kv, endpoint = scripted
    kv.script = [(U, "etcdserver: no leader")] * 1000
    db = EtcdStore([endpoint, *store.endpoints])
    try:
        revision = await put(db, prefix + b"k")
        got = await db.get(prefix + b"k")
        assert got is not None and got.mod_revision == revision
        assert kv.calls == 1  # asked once, then never again
    finally:
        await db.close()

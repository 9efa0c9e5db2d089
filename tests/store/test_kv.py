"""Conformance: the KV service (Range, Put, DeleteRange, Txn, Compact) behaves like etcd v3.4.

Every test runs against each backend (``store``) and keeps to its own ``prefix``;
compaction changes the whole keyspace and so runs on a cluster of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from aetcd.rpc import rpc_pb2

from tests.store.cluster import StoreCluster
from tests.store.etcd_api import (
    EtcdApi,
    connect,
    current_revision,
    eventually,
    expect_error,
    get,
    keyspace,
    op_delete,
    op_put,
    op_range,
    op_txn,
    prefix_end,
    put,
)

Range = rpc_pb2.RangeRequest
Compare = rpc_pb2.Compare
Txn = rpc_pb2.TxnRequest

FUTURE_REVISION = "etcdserver: mvcc: required revision is a future revision"
COMPACTED = "etcdserver: mvcc: required revision has been compacted"


@pytest_asyncio.fixture
async def api(store: StoreCluster) -> AsyncIterator[EtcdApi]:
    async with connect(store.endpoints[0]) as a:
        yield a


def keys_of(resp: Any) -> list[bytes]:
    return [kv.key for kv in resp.kvs]


# -- revisions ---------------------------------------------------------------------------------

async def test_put_creates_key_with_revision_fields(api: EtcdApi, prefix: bytes) -> None:
    key = prefix + b"k"
    before = await current_revision(api)
    resp = await put(api, key, b"hello")
    assert resp.header.revision == before + 1
    assert not resp.HasField("prev_kv")
    kv = await get(api, key)
    assert kv is not None
    assert (kv.key, kv.value, kv.lease) == (key, b"hello", 0)
    assert kv.create_revision == kv.mod_revision == resp.header.revision
    assert kv.version == 1


async def test_update_bumps_mod_revision_and_version(api: EtcdApi, prefix: bytes) -> None:
    key = prefix + b"k"
    first = await put(api, key, b"1")
    second = await put(api, key, b"2")
    assert second.header.revision == first.header.revision + 1
    kv = await get(api, key)
    assert kv is not None
    assert kv.value == b"2"
    assert kv.create_revision == first.header.revision
    assert kv.mod_revision == second.header.revision
    assert kv.version == 2


async def test_delete_resets_version_and_create_revision(api: EtcdApi, prefix: bytes) -> None:
    key = prefix + b"k"
    await put(api, key, b"1")
    await put(api, key, b"2")
    await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=key))
    assert await get(api, key) is None
    again = await put(api, key, b"3")
    kv = await get(api, key)
    assert kv is not None
    assert kv.version == 1
    assert kv.create_revision == kv.mod_revision == again.header.revision


async def test_reads_do_not_bump_revision(api: EtcdApi, prefix: bytes) -> None:
    await put(api, prefix + b"k")
    before = await current_revision(api)
    r = await api.kv.Range(Range(key=prefix + b"k"))
    t = await api.kv.Txn(Txn(success=[op_range(prefix + b"k")]))
    assert r.header.revision == t.header.revision == before
    assert await current_revision(api) == before


# -- Range -------------------------------------------------------------------------------------

async def test_range_single_key_missing_and_present(api: EtcdApi, prefix: bytes) -> None:
    missing = await api.kv.Range(Range(key=prefix + b"absent"))
    assert (list(missing.kvs), missing.count, missing.more) == ([], 0, False)
    await put(api, prefix + b"a", b"1")
    await put(api, prefix + b"ab", b"2")
    resp = await api.kv.Range(Range(key=prefix + b"a"))
    assert keys_of(resp) == [prefix + b"a"]  # exact key, not a prefix
    assert (resp.count, resp.more) == (1, False)


async def test_range_with_range_end_is_half_open(api: EtcdApi, prefix: bytes) -> None:
    for k in (b"a", b"b", b"c", b"d"):
        await put(api, prefix + k)
    resp = await api.kv.Range(Range(key=prefix + b"b", range_end=prefix + b"d"))
    assert keys_of(resp) == [prefix + b"b", prefix + b"c"]
    assert resp.count == 2


async def test_range_prefix_via_range_end(api: EtcdApi, prefix: bytes) -> None:
    directory = prefix + b"dir/"
    inside = [directory + b"a", directory + b"b/c", directory + b"\xff"]
    outside = [prefix + b"dir", prefix + b"dir0", prefix + b"dis"]
    for k in inside + outside:
        await put(api, k)
    resp = await api.kv.Range(Range(key=directory, range_end=prefix_end(directory)))
    assert keys_of(resp) == sorted(inside)
    assert resp.count == len(inside)


async def test_range_all_keys_and_from_key(api: EtcdApi, prefix: bytes) -> None:
    mine = [prefix + b"a", prefix + b"b", prefix + b"c"]
    for k in mine:
        await put(api, k)
    everything = await api.kv.Range(Range(key=b"\0", range_end=b"\0", keys_only=True))
    assert set(mine) <= set(keys_of(everything))
    assert everything.count == len(everything.kvs) >= len(mine)
    assert keys_of(everything) == sorted(keys_of(everything))

    from_b = await api.kv.Range(Range(key=prefix + b"b", range_end=b"\0", keys_only=True))
    got = keys_of(from_b)
    assert prefix + b"a" not in got
    assert got[:2] == [prefix + b"b", prefix + b"c"]
    assert all(k >= prefix + b"b" for k in got)


@pytest.mark.parametrize(("limit", "returned", "more"), [
    (0, 5, False), (1, 1, True), (4, 4, True), (5, 5, False), (6, 5, False), (-1, 5, False),
])
async def test_range_limit_more_and_count(api: EtcdApi, prefix: bytes,
                                          limit: int, returned: int, more: bool) -> None:
    keys = [prefix + bytes([c]) for c in b"abcde"]
    for k in keys:
        await put(api, k)
    resp = await api.kv.Range(Range(key=prefix, range_end=prefix_end(prefix), limit=limit))
    assert keys_of(resp) == keys[:returned]
    assert resp.more is more
    assert resp.count == 5


async def test_range_historical_revision(api: EtcdApi, prefix: bytes) -> None:
    key = prefix + b"k"
    r1 = (await put(api, key, b"1")).header.revision
    r2 = (await put(api, key, b"2")).header.revision
    r3 = (await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=key))).header.revision
    assert await get(api, key, revision=r1 - 1) is None
    at1 = await get(api, key, revision=r1)
    at2 = await get(api, key, revision=r2)
    assert at1 is not None and at2 is not None
    assert (at1.value, at1.version, at1.mod_revision) == (b"1", 1, r1)
    assert (at2.value, at2.version, at2.mod_revision) == (b"2", 2, r2)
    assert at2.create_revision == r1
    assert await get(api, key, revision=r3) is None
    resp = await api.kv.Range(Range(key=key, revision=r2))
    assert resp.header.revision == await current_revision(api)  # the header is "now"


async def test_range_future_revision_is_out_of_range(api: EtcdApi, prefix: bytes) -> None:
    rev = await current_revision(api)
    await expect_error(api.kv.Range(Range(key=prefix + b"k", revision=rev + 1000)),
                       grpc.StatusCode.OUT_OF_RANGE, FUTURE_REVISION)


async def test_range_keys_only(api: EtcdApi, prefix: bytes) -> None:
    await put(api, prefix + b"a", b"value-a")
    await put(api, prefix + b"b", b"value-b")
    await put(api, prefix + b"b", b"value-b2")
    resp = await api.kv.Range(Range(key=prefix, range_end=prefix_end(prefix), keys_only=True))
    assert keys_of(resp) == [prefix + b"a", prefix + b"b"]
    assert all(kv.value == b"" for kv in resp.kvs)
    b = resp.kvs[1]
    assert b.version == 2 and b.mod_revision > b.create_revision > 0
    limited = await api.kv.Range(
        Range(key=prefix, range_end=prefix_end(prefix), keys_only=True, limit=1))
    assert (keys_of(limited), limited.more, limited.count) == ([prefix + b"a"], True, 2)


async def test_range_count_only(api: EtcdApi, prefix: bytes) -> None:
    for k in (b"a", b"b", b"c"):
        await put(api, prefix + k)
    resp = await api.kv.Range(Range(key=prefix, range_end=prefix_end(prefix), count_only=True))
    assert (list(resp.kvs), resp.count, resp.more) == ([], 3, False)
    limited = await api.kv.Range(
        Range(key=prefix, range_end=prefix_end(prefix), count_only=True, limit=1))
    # etcd answers a count_only request with the full count and never sets `more`
    assert (list(limited.kvs), limited.count, limited.more) == ([], 3, False)


async def test_linearizable_read_on_every_member_sees_completed_write(
        store: StoreCluster, api: EtcdApi, prefix: bytes) -> None:
    written = await put(api, prefix + b"k", b"fresh")
    for endpoint in store.endpoints:
        async with connect(endpoint) as member:
            kv = await get(member, prefix + b"k")
            assert kv is not None and kv.value == b"fresh", endpoint
            assert kv.mod_revision == written.header.revision


async def test_serializable_read_on_every_member(store: StoreCluster, api: EtcdApi,
                                                 prefix: bytes) -> None:
    written = await put(api, prefix + b"k", b"v1")
    for endpoint in store.endpoints:
        async with connect(endpoint) as member:
            async def caught_up(member: EtcdApi = member) -> rpc_pb2.RangeResponse | None:
                resp = await member.kv.Range(Range(key=prefix + b"k", serializable=True))
                return resp if resp.kvs else None
            resp = await eventually(caught_up, f"{endpoint} to apply the write")
            assert resp.kvs[0].value == b"v1"
            assert resp.kvs[0].mod_revision == written.header.revision
            assert resp.header.revision >= written.header.revision


# -- sorting -----------------------------------------------------------------------------------

SORT_FIELD = {
    Range.KEY: lambda kv: kv.key,
    Range.VERSION: lambda kv: kv.version,
    Range.CREATE: lambda kv: kv.create_revision,
    Range.MOD: lambda kv: kv.mod_revision,
    Range.VALUE: lambda kv: kv.value,
}


async def seed_sortable(api: EtcdApi, prefix: bytes) -> list[Any]:
    """Five keys whose key, version, create, mod and value orders all differ, without ties."""
    values = {b"a": b"3", b"b": b"1", b"c": b"5", b"d": b"2", b"e": b"4"}
    for k in (b"c", b"a", b"e", b"b", b"d"):  # creation order
        await put(api, prefix + k, values[k])
    for k in (b"e", b"a", b"b", b"d", b"e", b"a", b"b", b"a", b"b", b"b"):  # versions
        await put(api, prefix + k, values[k])
    resp = await api.kv.Range(Range(key=prefix, range_end=prefix_end(prefix)))
    kvs = list(resp.kvs)
    for field in SORT_FIELD.values():
        assert len({field(kv) for kv in kvs}) == len(kvs)  # no ties: one right order
    return kvs


@pytest.mark.parametrize("order", [Range.ASCEND, Range.DESCEND],
                         ids=lambda o: Range.SortOrder.Name(o))
@pytest.mark.parametrize("target", list(SORT_FIELD), ids=lambda t: Range.SortTarget.Name(t))
async def test_range_sort_with_limit(api: EtcdApi, prefix: bytes, target: int,
                                     order: int) -> None:
    kvs = await seed_sortable(api, prefix)
    expected = sorted(kvs, key=SORT_FIELD[target], reverse=order == Range.DESCEND)
    resp = await api.kv.Range(Range(key=prefix, range_end=prefix_end(prefix), limit=3,
                                    sort_target=target, sort_order=order))
    assert keys_of(resp) == [kv.key for kv in expected[:3]]
    assert (resp.count, resp.more) == (5, True)


@pytest.mark.parametrize("target", list(SORT_FIELD), ids=lambda t: Range.SortTarget.Name(t))
async def test_range_sort_order_none_is_ascending(api: EtcdApi, prefix: bytes,
                                                  target: int) -> None:
    kvs = await seed_sortable(api, prefix)
    resp = await api.kv.Range(Range(key=prefix, range_end=prefix_end(prefix),
                                    sort_target=target, sort_order=Range.NONE))
    assert keys_of(resp) == [kv.key for kv in sorted(kvs, key=SORT_FIELD[target])]


async def test_range_revision_filters(api: EtcdApi, prefix: bytes) -> None:
    a, b, c = prefix + b"a", prefix + b"b", prefix + b"c"
    ra = (await put(api, a)).header.revision
    rb = (await put(api, b)).header.revision
    rc = (await put(api, c)).header.revision
    rb2 = (await put(api, b)).header.revision
    whole = {"key": prefix, "range_end": prefix_end(prefix)}
    cases: list[tuple[dict[str, int], list[bytes]]] = [
        ({"min_mod_revision": rc}, [b, c]),
        ({"max_mod_revision": rc}, [a, c]),
        ({"min_mod_revision": rb2}, [b]),
        ({"min_create_revision": rb}, [b, c]),
        ({"max_create_revision": rb}, [a, b]),
        ({"min_create_revision": rb, "max_mod_revision": rc}, [c]),
        ({"min_mod_revision": ra, "max_mod_revision": rb2}, [a, b, c]),
        ({"min_mod_revision": rb2 + 1}, []),
    ]
    for filters, expected in cases:
        resp = await api.kv.Range(Range(**whole, **filters))
        assert keys_of(resp) == expected, filters
        # etcd counts the keys in the range before the filters apply
        assert resp.count == 3, filters
        assert resp.more is False, filters
    limited = await api.kv.Range(Range(**whole, min_mod_revision=rc, limit=1))
    assert (keys_of(limited), limited.more, limited.count) == ([b], True, 3)


# -- Put ---------------------------------------------------------------------------------------

async def test_put_prev_kv(api: EtcdApi, prefix: bytes) -> None:
    key = prefix + b"k"
    first = await put(api, key, b"1", prev_kv=True)
    assert not first.HasField("prev_kv")
    second = await put(api, key, b"2", prev_kv=True)
    assert second.HasField("prev_kv")
    prev = second.prev_kv
    assert (prev.key, prev.value, prev.version) == (key, b"1", 1)
    assert prev.create_revision == prev.mod_revision == first.header.revision
    third = await put(api, key, b"3")  # prev_kv not asked for
    assert not third.HasField("prev_kv")


async def test_put_attaches_and_detaches_lease(api: EtcdApi, prefix: bytes) -> None:
    key = prefix + b"k"
    lease = await api.lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=300))
    try:
        await put(api, key, b"1", lease=lease.ID)
        kv = await get(api, key)
        assert kv is not None and kv.lease == lease.ID
        await put(api, key, b"2")  # a put without a lease detaches the key
        kv = await get(api, key)
        assert kv is not None and kv.lease == 0
        ttl = await api.lease.LeaseTimeToLive(
            rpc_pb2.LeaseTimeToLiveRequest(ID=lease.ID, keys=True))
        assert list(ttl.keys) == []
    finally:
        await api.lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease.ID))
    assert await get(api, key) is not None  # detached, so not revoked with the lease


async def test_put_ignore_value_and_ignore_lease(api: EtcdApi, prefix: bytes) -> None:
    key = prefix + b"k"
    lease = await api.lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=300))
    try:
        first = await put(api, key, b"original")
        # ignore_value: keep the value, attach the lease, count as a modification
        kept = await api.kv.Put(rpc_pb2.PutRequest(key=key, lease=lease.ID, ignore_value=True,
                                                   prev_kv=True))
        assert kept.prev_kv.value == b"original"
        kv = await get(api, key)
        assert kv is not None
        assert (kv.value, kv.lease, kv.version) == (b"original", lease.ID, 2)
        assert kv.mod_revision == kept.header.revision == first.header.revision + 1
        # ignore_lease: new value, lease kept
        await api.kv.Put(rpc_pb2.PutRequest(key=key, value=b"new", ignore_lease=True))
        kv = await get(api, key)
        assert kv is not None
        assert (kv.value, kv.lease, kv.version) == (b"new", lease.ID, 3)
    finally:
        await api.lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease.ID))


@pytest.mark.parametrize(("fields", "existing", "details"), [
    ({"value": b"x", "ignore_value": True}, True, "etcdserver: value is provided"),
    ({"lease": 12345, "ignore_lease": True}, True, "etcdserver: lease is provided"),
    ({"ignore_value": True}, False, "etcdserver: key not found"),
    ({"value": b"x", "ignore_lease": True}, False, "etcdserver: key not found"),
], ids=["value_with_ignore_value", "lease_with_ignore_lease", "ignore_value_missing_key",
        "ignore_lease_missing_key"])
async def test_put_ignore_flags_errors(api: EtcdApi, prefix: bytes, fields: dict[str, Any],
                                       existing: bool, details: str) -> None:
    key = prefix + b"k"
    if existing:
        await put(api, key, b"original")
    before = await keyspace(api, prefix)
    await expect_error(api.kv.Put(rpc_pb2.PutRequest(key=key, **fields)),
                       grpc.StatusCode.INVALID_ARGUMENT, details)
    assert await keyspace(api, prefix) == before


# -- DeleteRange -------------------------------------------------------------------------------

async def test_delete_single_key(api: EtcdApi, prefix: bytes) -> None:
    await put(api, prefix + b"a", b"1")
    await put(api, prefix + b"ab", b"2")
    before = await current_revision(api)
    resp = await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=prefix + b"a", prev_kv=True))
    assert resp.deleted == 1
    assert resp.header.revision == before + 1
    assert [(kv.key, kv.value) for kv in resp.prev_kvs] == [(prefix + b"a", b"1")]
    assert await get(api, prefix + b"a") is None
    assert await get(api, prefix + b"ab") is not None


async def test_delete_range_in_one_revision(api: EtcdApi, prefix: bytes) -> None:
    keys = [prefix + k for k in (b"a", b"b", b"c", b"d")]
    for i, k in enumerate(keys):
        await put(api, k, b"%d" % i)
    before = await current_revision(api)
    resp = await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(
        key=keys[1], range_end=prefix + b"d", prev_kv=True))
    assert resp.deleted == 2
    assert resp.header.revision == before + 1
    assert [(kv.key, kv.value) for kv in resp.prev_kvs] == [(keys[1], b"1"), (keys[2], b"2")]
    state = await keyspace(api, prefix)
    assert [kv.key for kv in state.kvs] == [keys[0], keys[3]]
    # both deletions happened at one revision: just before it both keys exist
    old = await api.kv.Range(Range(key=prefix, range_end=prefix_end(prefix),
                                   revision=resp.header.revision - 1))
    assert keys_of(old) == keys


async def test_delete_without_prev_kv_returns_none(api: EtcdApi, prefix: bytes) -> None:
    await put(api, prefix + b"a")
    resp = await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=prefix + b"a"))
    assert resp.deleted == 1 and list(resp.prev_kvs) == []


async def test_delete_nothing_keeps_revision(api: EtcdApi, prefix: bytes) -> None:
    await put(api, prefix + b"a")
    before = await current_revision(api)
    single = await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=prefix + b"b",
                                                                 prev_kv=True))
    ranged = await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(
        key=prefix + b"b", range_end=prefix + b"z"))
    for resp in (single, ranged):
        assert resp.deleted == 0 and list(resp.prev_kvs) == []
        assert resp.header.revision == before
    assert await current_revision(api) == before


async def test_delete_prefix(api: EtcdApi, prefix: bytes) -> None:
    directory = prefix + b"dir/"
    for k in (directory + b"a", directory + b"b", prefix + b"dir0", prefix + b"dir"):
        await put(api, k)
    resp = await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(
        key=directory, range_end=prefix_end(directory)))
    assert resp.deleted == 2
    assert [kv.key for kv in (await keyspace(api, prefix)).kvs] == [prefix + b"dir",
                                                                     prefix + b"dir0"]


# -- Txn ---------------------------------------------------------------------------------------

def compare(key: bytes, target: int, result: int, operand: Any, range_end: bytes = b""
            ) -> rpc_pb2.Compare:
    field = {Compare.VERSION: "version", Compare.CREATE: "create_revision",
             Compare.MOD: "mod_revision", Compare.VALUE: "value", Compare.LEASE: "lease"}[target]
    return Compare(key=key, range_end=range_end, target=target, result=result,
                   **{field: operand})


EQ, NE, GT, LT = Compare.EQUAL, Compare.NOT_EQUAL, Compare.GREATER, Compare.LESS

# (target, result, operand relative to the key's actual field, succeeds?)
COMPARE_TABLE = [
    (Compare.VERSION, EQ, 0, True), (Compare.VERSION, EQ, 1, False),
    (Compare.VERSION, NE, 1, True), (Compare.VERSION, NE, 0, False),
    (Compare.VERSION, GT, -1, True), (Compare.VERSION, GT, 0, False),
    (Compare.VERSION, LT, 1, True), (Compare.VERSION, LT, 0, False),
    (Compare.CREATE, EQ, 0, True), (Compare.CREATE, NE, 0, False),
    (Compare.CREATE, GT, -1, True), (Compare.CREATE, LT, 0, False),
    (Compare.MOD, EQ, 0, True), (Compare.MOD, EQ, -1, False),
    (Compare.MOD, GT, -1, True), (Compare.MOD, LT, 1, True), (Compare.MOD, GT, 0, False),
    (Compare.LEASE, EQ, 0, True), (Compare.LEASE, NE, 0, False),
    (Compare.LEASE, GT, -1, True), (Compare.LEASE, LT, 1, True), (Compare.LEASE, LT, 0, False),
]


@pytest.mark.parametrize(("target", "result", "delta", "succeeds"), COMPARE_TABLE,
                         ids=[f"{Compare.CompareTarget.Name(t)}-{Compare.CompareResult.Name(r)}"
                              f"{d:+d}" for t, r, d, _ in COMPARE_TABLE])
async def test_txn_compare_numeric(api: EtcdApi, prefix: bytes, target: int, result: int,
                                   delta: int, succeeds: bool) -> None:
    key = prefix + b"k"
    lease = await api.lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=300))
    try:
        await put(api, key, b"1")
        await put(api, key, b"2", lease=lease.ID)  # version 2, create < mod
        kv = await get(api, key)
        assert kv is not None
        actual = {Compare.VERSION: kv.version, Compare.CREATE: kv.create_revision,
                  Compare.MOD: kv.mod_revision, Compare.LEASE: kv.lease}[target]
        resp = await api.kv.Txn(Txn(compare=[compare(key, target, result, actual + delta)],
                                    success=[op_put(prefix + b"ok")],
                                    failure=[op_put(prefix + b"failed")]))
        assert resp.succeeded is succeeds
        branch = prefix + (b"ok" if succeeds else b"failed")
        assert [kv.key for kv in (await keyspace(api, prefix)).kvs] == sorted([key, branch])
    finally:
        await api.lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease.ID))


@pytest.mark.parametrize(("result", "operand", "succeeds"), [
    (EQ, b"mid", True), (EQ, b"mi", False), (NE, b"mid", False), (NE, b"x", True),
    (GT, b"mic", True), (GT, b"mid", False), (GT, b"mida", False),
    (LT, b"mie", True), (LT, b"mid", False), (LT, b"mi", False),
])
async def test_txn_compare_value(api: EtcdApi, prefix: bytes, result: int, operand: bytes,
                                 succeeds: bool) -> None:
    key = prefix + b"k"
    await put(api, key, b"mid")
    resp = await api.kv.Txn(Txn(compare=[compare(key, Compare.VALUE, result, operand)]))
    assert resp.succeeded is succeeds


@pytest.mark.parametrize(("target", "result", "operand", "succeeds"), [
    (Compare.VERSION, EQ, 0, True), (Compare.CREATE, EQ, 0, True), (Compare.MOD, EQ, 0, True),
    (Compare.LEASE, EQ, 0, True), (Compare.VERSION, GT, 0, False), (Compare.MOD, LT, 1, True),
    # a value compare against a missing key always fails, whatever the operator
    (Compare.VALUE, EQ, b"", False), (Compare.VALUE, NE, b"x", False),
    (Compare.VALUE, LT, b"x", False), (Compare.VALUE, GT, b"", False),
])
async def test_txn_compare_missing_key(api: EtcdApi, prefix: bytes, target: int, result: int,
                                       operand: Any, succeeds: bool) -> None:
    resp = await api.kv.Txn(Txn(compare=[compare(prefix + b"absent", target, result, operand)]))
    assert resp.succeeded is succeeds


async def test_txn_compare_over_range_requires_every_key(api: EtcdApi, prefix: bytes) -> None:
    await put(api, prefix + b"a")
    await put(api, prefix + b"b")
    await put(api, prefix + b"b")  # a has version 1, b version 2
    end = prefix_end(prefix)

    async def holds(target: int, result: int, operand: Any, key: bytes = prefix,
                    range_end: bytes = end) -> bool:
        resp = await api.kv.Txn(Txn(compare=[compare(key, target, result, operand, range_end)]))
        return bool(resp.succeeded)

    assert await holds(Compare.VERSION, GT, 0)
    assert not await holds(Compare.VERSION, EQ, 1)
    assert await holds(Compare.VERSION, LT, 3)
    assert await holds(Compare.VALUE, EQ, b"v")
    assert await holds(Compare.VERSION, EQ, 1, range_end=prefix + b"b")
    # an empty range compares like a missing key
    assert await holds(Compare.VERSION, EQ, 0, key=prefix + b"x", range_end=prefix + b"z")
    assert not await holds(Compare.VALUE, NE, b"x", key=prefix + b"x", range_end=prefix + b"z")
    # range_end "\0" means every key from `key` on
    assert await holds(Compare.VERSION, GT, 0, key=prefix + b"a", range_end=b"\0")


async def test_txn_multiple_compares_are_anded(api: EtcdApi, prefix: bytes) -> None:
    await put(api, prefix + b"a", b"1")
    ok = compare(prefix + b"a", Compare.VALUE, EQ, b"1")
    bad = compare(prefix + b"a", Compare.VERSION, EQ, 5)
    assert (await api.kv.Txn(Txn(compare=[ok, ok]))).succeeded
    assert not (await api.kv.Txn(Txn(compare=[ok, bad]))).succeeded
    assert not (await api.kv.Txn(Txn(compare=[bad, ok]))).succeeded


async def test_txn_success_branch_responses(api: EtcdApi, prefix: bytes) -> None:
    a, b, c = prefix + b"a", prefix + b"b", prefix + b"c"
    await put(api, a, b"old-a")
    await put(api, c, b"old-c")
    before = await current_revision(api)
    resp = await api.kv.Txn(Txn(
        compare=[compare(a, Compare.VALUE, EQ, b"old-a")],
        success=[op_put(a, b"new-a", prev_kv=True), op_range(a), op_put(b, b"new-b"),
                 op_delete(c, prev_kv=True), op_range(prefix, range_end=prefix_end(prefix))],
        failure=[op_put(prefix + b"failed")],
    ))
    assert resp.succeeded
    assert resp.header.revision == before + 1
    kinds = [r.WhichOneof("response") for r in resp.responses]
    assert kinds == ["response_put", "response_range", "response_put",
                     "response_delete_range", "response_range"]
    put_a, range_a, _, delete_c, range_all = (getattr(r, k) for r, k in
                                              zip(resp.responses, kinds, strict=True))
    assert put_a.prev_kv.value == b"old-a"
    # a range inside the txn sees the writes made earlier in the same txn
    assert [(kv.key, kv.value, kv.version) for kv in range_a.kvs] == [(a, b"new-a", 2)]
    assert delete_c.deleted == 1 and [kv.value for kv in delete_c.prev_kvs] == [b"old-c"]
    assert [(kv.key, kv.value) for kv in range_all.kvs] == [(a, b"new-a"), (b, b"new-b")]
    assert range_all.count == 2


async def test_txn_failure_branch(api: EtcdApi, prefix: bytes) -> None:
    a = prefix + b"a"
    await put(api, a, b"1")
    resp = await api.kv.Txn(Txn(
        compare=[compare(a, Compare.VALUE, EQ, b"other")],
        success=[op_put(prefix + b"succeeded")],
        failure=[op_range(a), op_put(prefix + b"failed", b"f")],
    ))
    assert not resp.succeeded
    assert [r.WhichOneof("response") for r in resp.responses] == ["response_range",
                                                                   "response_put"]
    assert [kv.value for kv in resp.responses[0].response_range.kvs] == [b"1"]
    assert [kv.key for kv in (await keyspace(api, prefix)).kvs] == [a, prefix + b"failed"]


async def test_txn_without_writes_keeps_revision(api: EtcdApi, prefix: bytes) -> None:
    await put(api, prefix + b"a")
    before = await current_revision(api)
    empty = await api.kv.Txn(Txn())
    assert empty.succeeded and list(empty.responses) == []
    failed_no_ops = await api.kv.Txn(Txn(
        compare=[compare(prefix + b"a", Compare.VERSION, EQ, 9)],
        success=[op_put(prefix + b"a")]))
    assert not failed_no_ops.succeeded and list(failed_no_ops.responses) == []
    deletes_nothing = await api.kv.Txn(Txn(success=[op_delete(prefix + b"absent")]))
    assert deletes_nothing.responses[0].response_delete_range.deleted == 0
    for resp in (empty, failed_no_ops, deletes_nothing):
        assert resp.header.revision == before
    assert await current_revision(api) == before


async def test_txn_writes_share_one_revision(api: EtcdApi, prefix: bytes) -> None:
    keys = [prefix + k for k in (b"a", b"b", b"c")]
    await put(api, prefix + b"d")
    await put(api, keys[0], b"old")
    before = await current_revision(api)
    resp = await api.kv.Txn(Txn(success=[op_put(k, b"new") for k in keys]
                                + [op_delete(prefix + b"d")]))
    rev = resp.header.revision
    assert rev == before + 1
    state = await keyspace(api, prefix)
    assert state.revision == rev
    assert [kv.key for kv in state.kvs] == keys
    assert {kv.mod_revision for kv in state.kvs} == {rev}
    assert [(kv.version, kv.create_revision) for kv in state.kvs] == [
        (2, state.kvs[0].create_revision), (1, rev), (1, rev)]
    assert state.kvs[0].create_revision < rev


async def test_nested_txn(api: EtcdApi, prefix: bytes) -> None:
    a = prefix + b"a"
    await put(api, a, b"1")
    before = await current_revision(api)
    resp = await api.kv.Txn(Txn(
        success=[
            op_put(a, b"2"),
            # compares of nested txns are evaluated against the state before the whole txn
            op_txn(compare=[compare(a, Compare.VALUE, EQ, b"2")],
                   success=[op_put(prefix + b"inner-success")],
                   failure=[op_put(prefix + b"inner-failure"), op_range(a)]),
            op_txn(compare=[compare(a, Compare.VALUE, EQ, b"1")],
                   success=[op_txn(success=[op_range(a)])]),
        ]))
    assert resp.succeeded and resp.header.revision == before + 1
    first, second = resp.responses[1].response_txn, resp.responses[2].response_txn
    assert not first.succeeded
    assert [r.WhichOneof("response") for r in first.responses] == ["response_put",
                                                                    "response_range"]
    assert [kv.value for kv in first.responses[1].response_range.kvs] == [b"2"]
    assert second.succeeded
    innermost = second.responses[0].response_txn
    assert innermost.succeeded
    assert [kv.value for kv in innermost.responses[0].response_range.kvs] == [b"2"]
    state = await keyspace(api, prefix)
    assert [kv.key for kv in state.kvs] == [a, prefix + b"inner-failure"]
    assert {kv.mod_revision for kv in state.kvs} == {before + 1}


DUPLICATE_KEY = "etcdserver: duplicate key given in txn request"


@pytest.mark.parametrize("success", [
    pytest.param(lambda p: [op_put(p + b"k"), op_put(p + b"k", b"2")], id="put-put"),
    pytest.param(lambda p: [op_put(p + b"k"), op_delete(p + b"k")], id="put-delete"),
    pytest.param(lambda p: [op_delete(p + b"a", range_end=p + b"z"), op_put(p + b"k")],
                 id="delete_range-covers-put"),
    pytest.param(lambda p: [op_put(p + b"k"), op_txn(success=[op_put(p + b"k")])],
                 id="put-nested_put"),
    pytest.param(lambda p: [op_put(p + b"k"), op_txn(failure=[op_delete(p + b"k")])],
                 id="put-nested_failure_delete"),
])
async def test_txn_duplicate_key_is_rejected(api: EtcdApi, prefix: bytes, success: Any) -> None:
    await put(api, prefix + b"k", b"original")
    before = await keyspace(api, prefix)
    await expect_error(api.kv.Txn(Txn(success=success(prefix))),
                       grpc.StatusCode.INVALID_ARGUMENT, DUPLICATE_KEY)
    assert await keyspace(api, prefix) == before


async def test_txn_repeated_keys_that_are_allowed(api: EtcdApi, prefix: bytes) -> None:
    k = prefix + b"k"
    await put(api, k, b"original")
    # the same key read and written, or deleted twice, or written in both branches, is fine
    resp = await api.kv.Txn(Txn(success=[op_range(k), op_put(k, b"1"), op_range(k)]))
    assert resp.responses[2].response_range.kvs[0].value == b"1"
    resp = await api.kv.Txn(Txn(success=[op_delete(k), op_delete(k)]))
    assert [r.response_delete_range.deleted for r in resp.responses] == [1, 0]
    resp = await api.kv.Txn(Txn(success=[op_put(k, b"s")], failure=[op_put(k, b"f")]))
    assert resp.succeeded
    kv = await get(api, k)
    assert kv is not None and kv.value == b"s"


async def test_txn_with_failing_op_is_atomic(api: EtcdApi, prefix: bytes) -> None:
    await put(api, prefix + b"a", b"1")
    before = await keyspace(api, prefix)
    await expect_error(
        api.kv.Txn(Txn(success=[op_put(prefix + b"a", b"2"),
                                op_range(prefix + b"a", revision=before.revision + 1000)])),
        grpc.StatusCode.OUT_OF_RANGE, FUTURE_REVISION)
    assert await keyspace(api, prefix) == before


# -- Compact -----------------------------------------------------------------------------------

async def test_compact_future_revision_is_out_of_range(api: EtcdApi) -> None:
    rev = await current_revision(api)
    await expect_error(api.kv.Compact(rpc_pb2.CompactionRequest(revision=rev + 1)),
                       grpc.StatusCode.OUT_OF_RANGE, FUTURE_REVISION)
    assert await current_revision(api) == rev


async def test_compaction(fresh_store: StoreCluster) -> None:
    key = b"/compact/k"
    async with connect(fresh_store.endpoints[0]) as api:
        revs = [(await put(api, key, b"%d" % i)).header.revision for i in range(4)]
        compact_at = revs[2]
        resp = await api.kv.Compact(rpc_pb2.CompactionRequest(revision=compact_at,
                                                              physical=True))
        assert resp.header.revision == revs[-1]  # compaction is not a write
        assert await current_revision(api) == revs[-1]

        for endpoint in fresh_store.endpoints:  # every member compacted
            async with connect(endpoint) as member:
                for old in revs[:2]:
                    await expect_error(member.kv.Range(Range(key=key, revision=old)),
                                       grpc.StatusCode.OUT_OF_RANGE, COMPACTED)
        at = await get(api, key, revision=compact_at)  # the compaction revision stays readable
        assert at is not None and at.value == b"2"
        latest = await get(api, key)
        assert latest is not None and (latest.value, latest.version) == (b"3", 4)
        assert latest.create_revision == revs[0]  # compaction keeps the live key's history fields
        await expect_error(
            api.kv.Txn(Txn(success=[op_range(key, revision=revs[0])])),
            grpc.StatusCode.OUT_OF_RANGE, COMPACTED)

        # compacting at or below the compacted revision again fails
        for again in (compact_at, revs[1]):
            await expect_error(api.kv.Compact(rpc_pb2.CompactionRequest(revision=again)),
                               grpc.StatusCode.OUT_OF_RANGE, COMPACTED)
        await expect_error(api.kv.Compact(rpc_pb2.CompactionRequest(revision=revs[-1] + 1)),
                           grpc.StatusCode.OUT_OF_RANGE, FUTURE_REVISION)
        # compacting up to the current revision is allowed
        await api.kv.Compact(rpc_pb2.CompactionRequest(revision=revs[-1]))
        await expect_error(api.kv.Range(Range(key=key, revision=compact_at)),
                           grpc.StatusCode.OUT_OF_RANGE, COMPACTED)
        assert await get(api, key, revision=revs[-1]) is not None

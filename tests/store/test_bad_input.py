"""Conformance: bad requests get etcd's exact error, and never change the store.

After every refused request the test checks that the store revision, the key count and
the test's own keys are what they were. The last test covers what raftstore deliberately
leaves out (auth, defragmentation, snapshots, alarms...): it must answer UNIMPLEMENTED,
which real etcd of course does not, so that test runs on raftstore only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import pytest_asyncio
from aetcd.rpc import auth_pb2, rpc_pb2

from tests.store.cluster import StoreCluster
from tests.store.etcd_api import (
    PROGRESS_WATCH_ID,
    EtcdApi,
    connect,
    expect_error,
    get,
    keyspace,
    op_delete,
    op_put,
    op_range,
    op_txn,
    put,
)

MiB = 1024 * 1024
MAX_REQUEST_BYTES = 3 * MiB // 2  # etcd's default --max-request-bytes
KEY_NOT_PROVIDED = "etcdserver: key is not provided"
TOO_LARGE = "etcdserver: request is too large"
TOO_MANY_OPS = "etcdserver: too many operations in txn request"
LEASE_NOT_FOUND = "etcdserver: requested lease not found"
MAX_TXN_OPS = 128  # etcd's default --max-txn-ops

Txn = rpc_pb2.TxnRequest
Compare = rpc_pb2.Compare


def require_backend(store: StoreCluster, backend: str) -> None:
    """Skip the calling test unless it runs against ``backend``."""
    if store.backend != backend:
        pytest.skip(f"{backend} only: {store.backend} is the reference, not the subject")


@pytest_asyncio.fixture
async def api(store: StoreCluster) -> AsyncIterator[EtcdApi]:
    async with connect(store.endpoints[0]) as a:
        yield a


@dataclass(frozen=True)
class StoreState:
    """What a refused request must leave alone."""

    revision: int
    total_keys: int
    mine: tuple[Any, ...]


async def state(api: EtcdApi, prefix: bytes) -> StoreState:
    everything = await api.kv.Range(rpc_pb2.RangeRequest(key=b"\0", range_end=b"\0",
                                                         count_only=True))
    own = await keyspace(api, prefix)
    return StoreState(own.revision, everything.count, own.kvs)


async def refused_without_change(api: EtcdApi, prefix: bytes, call: Callable[[], Awaitable[Any]],
                                 code: grpc.StatusCode, details: str | None) -> None:
    """Assert ``call()`` fails with ``code`` (and ``details``) and the store is unchanged."""
    before = await state(api, prefix)
    await expect_error(call(), code, details)
    assert await state(api, prefix) == before


# -- empty keys --------------------------------------------------------------------------------

EMPTY_KEY_CALLS: dict[str, Callable[[EtcdApi, bytes], Awaitable[Any]]] = {
    "put": lambda a, p: a.kv.Put(rpc_pb2.PutRequest(key=b"", value=b"v")),
    "range": lambda a, p: a.kv.Range(rpc_pb2.RangeRequest(key=b"")),
    "range_with_end": lambda a, p: a.kv.Range(rpc_pb2.RangeRequest(key=b"", range_end=p)),
    "delete": lambda a, p: a.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=b"")),
    "txn_compare": lambda a, p: a.kv.Txn(Txn(
        compare=[Compare(key=b"", target=Compare.VERSION, result=Compare.EQUAL)],
        success=[op_put(p + b"a")])),
    "txn_put": lambda a, p: a.kv.Txn(Txn(success=[op_put(p + b"a"), op_put(b"")])),
    "txn_range": lambda a, p: a.kv.Txn(Txn(success=[op_put(p + b"a"), op_range(b"")])),
    "txn_delete": lambda a, p: a.kv.Txn(Txn(success=[op_put(p + b"a"), op_delete(b"")])),
    "txn_failure_branch": lambda a, p: a.kv.Txn(Txn(failure=[op_put(b"")])),
    "nested_txn": lambda a, p: a.kv.Txn(Txn(success=[
        op_put(p + b"a"), op_txn(success=[op_put(b"")])])),
}


@pytest.mark.parametrize("request_kind", list(EMPTY_KEY_CALLS))
async def test_empty_key(api: EtcdApi, prefix: bytes, request_kind: str) -> None:
    await put(api, prefix + b"a", b"original")
    await refused_without_change(api, prefix, lambda: EMPTY_KEY_CALLS[request_kind](api, prefix),
                                 grpc.StatusCode.INVALID_ARGUMENT, KEY_NOT_PROVIDED)


# -- request size ------------------------------------------------------------------------------

async def test_request_just_over_the_limit(api: EtcdApi, prefix: bytes) -> None:
    big = b"x" * (MAX_REQUEST_BYTES + 100 * 1024)  # ~1.6 MiB
    await put(api, prefix + b"k", b"original")
    for call in (
        lambda: put(api, prefix + b"k", big),
        lambda: put(api, prefix + b"new", big),
        lambda: api.kv.Txn(Txn(success=[op_put(prefix + b"new", big)])),
        lambda: put(api, prefix + big),  # a big key counts as much as a big value
    ):
        await refused_without_change(api, prefix, call, grpc.StatusCode.INVALID_ARGUMENT,
                                     TOO_LARGE)


async def test_request_over_the_grpc_message_limit(api: EtcdApi, prefix: bytes) -> None:
    huge = b"x" * (3 * MiB)
    await put(api, prefix + b"k", b"original")
    before = await state(api, prefix)
    err = await expect_error(put(api, prefix + b"k", huge), grpc.StatusCode.RESOURCE_EXHAUSTED)
    # etcd (grpc-go) says "grpc: received message larger than max (3145739 vs. 2097152)"
    assert "larger than max" in (err.details() or "").lower()
    assert await state(api, prefix) == before  # and the channel still works


async def test_request_just_under_the_limit_is_accepted(api: EtcdApi, prefix: bytes) -> None:
    value = b"y" * (MAX_REQUEST_BYTES - 1024)
    written = await put(api, prefix + b"k", value)
    kv = await get(api, prefix + b"k")
    assert kv is not None and kv.value == value and kv.mod_revision == written.header.revision
    await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=prefix + b"k"))


# -- leases ------------------------------------------------------------------------------------

async def test_unknown_lease_in_txn(api: EtcdApi, prefix: bytes) -> None:
    await put(api, prefix + b"a", b"original")
    await refused_without_change(
        api, prefix,
        lambda: api.kv.Txn(Txn(success=[op_put(prefix + b"a", b"new"),
                                        op_put(prefix + b"b", lease=0x7E57_0000_0001)])),
        grpc.StatusCode.NOT_FOUND, LEASE_NOT_FOUND)
    # only the branch that runs is checked: an unknown lease in the other one is no error
    resp = await api.kv.Txn(Txn(success=[op_put(prefix + b"a", b"ran")],
                                failure=[op_put(prefix + b"b", lease=0x7E57_0000_0001)]))
    assert resp.succeeded
    kv = await get(api, prefix + b"a")
    assert kv is not None and kv.value == b"ran"


# -- txn size ----------------------------------------------------------------------------------

TOO_MANY: dict[str, Callable[[bytes], rpc_pb2.TxnRequest]] = {
    "success": lambda p: Txn(success=[op_put(p + b"%d" % i) for i in range(MAX_TXN_OPS + 1)]),
    "failure": lambda p: Txn(failure=[op_range(p + b"%d" % i) for i in range(MAX_TXN_OPS + 1)]),
    "compare": lambda p: Txn(
        compare=[Compare(key=p + b"%d" % i, target=Compare.VERSION, result=Compare.EQUAL)
                 for i in range(MAX_TXN_OPS + 1)],
        success=[op_put(p + b"a")]),
    "nested": lambda p: Txn(success=[
        op_put(p + b"a"), op_txn(success=[op_put(p + b"%d" % i) for i in range(MAX_TXN_OPS + 1)])]),
}


@pytest.mark.parametrize("where", list(TOO_MANY))
async def test_txn_with_too_many_operations(api: EtcdApi, prefix: bytes, where: str) -> None:
    await put(api, prefix + b"a", b"original")
    await refused_without_change(api, prefix, lambda: api.kv.Txn(TOO_MANY[where](prefix)),
                                 grpc.StatusCode.INVALID_ARGUMENT, TOO_MANY_OPS)


async def test_txn_with_the_most_operations_allowed(api: EtcdApi, prefix: bytes) -> None:
    keys = [prefix + b"%03d" % i for i in range(MAX_TXN_OPS)]
    resp = await api.kv.Txn(Txn(
        compare=[Compare(key=k, target=Compare.VERSION, result=Compare.EQUAL) for k in keys],
        success=[op_put(k) for k in keys],
        failure=[op_range(k) for k in keys]))
    assert resp.succeeded and len(resp.responses) == MAX_TXN_OPS
    own = await keyspace(api, prefix)
    assert [kv.key for kv in own.kvs] == keys
    assert {kv.mod_revision for kv in own.kvs} == {resp.header.revision}


# -- ranges that select nothing ------------------------------------------------------------------

async def test_range_end_before_key_selects_nothing(api: EtcdApi, prefix: bytes) -> None:
    for k in (b"a", b"b", b"c"):
        await put(api, prefix + k)
    before = await state(api, prefix)
    for end in (prefix + b"a", prefix + b"b"):  # before, and equal to, the key
        resp = await api.kv.Range(rpc_pb2.RangeRequest(key=prefix + b"b", range_end=end))
        assert (list(resp.kvs), resp.count, resp.more) == ([], 0, False)
        deleted = await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=prefix + b"b",
                                                                      range_end=end))
        assert deleted.deleted == 0 and deleted.header.revision == before.revision
    assert await state(api, prefix) == before


async def test_watch_with_empty_range_is_refused(api: EtcdApi, prefix: bytes) -> None:
    async with api.watch_stream() as ws:
        for end in (prefix + b"a", prefix + b"b"):
            ws.send_create(prefix + b"b", range_end=end)
            refused = await ws.next()
            assert refused.created and refused.canceled
            assert refused.watch_id == PROGRESS_WATCH_ID
            assert refused.cancel_reason == "mvcc: watcher range is empty"
        # the stream stays usable
        await ws.create(prefix + b"b")
        rev = (await put(api, prefix + b"b")).header.revision
        (resp,) = await ws.events(1)
        assert resp.events[0].kv.mod_revision == rev


# -- what raftstore does not implement -------------------------------------------------------------

UNIMPLEMENTED: dict[str, Callable[[EtcdApi], Awaitable[Any]]] = {
    "Auth.AuthEnable": lambda a: a.auth.AuthEnable(rpc_pb2.AuthEnableRequest()),
    "Auth.AuthDisable": lambda a: a.auth.AuthDisable(rpc_pb2.AuthDisableRequest()),
    "Auth.AuthStatus": lambda a: a.auth.AuthStatus(rpc_pb2.AuthStatusRequest()),
    "Auth.Authenticate": lambda a: a.auth.Authenticate(
        rpc_pb2.AuthenticateRequest(name="root", password="secret")),
    "Auth.UserAdd": lambda a: a.auth.UserAdd(
        rpc_pb2.AuthUserAddRequest(name="u", password="p")),
    "Auth.UserList": lambda a: a.auth.UserList(rpc_pb2.AuthUserListRequest()),
    "Auth.RoleAdd": lambda a: a.auth.RoleAdd(rpc_pb2.AuthRoleAddRequest(name="r")),
    "Auth.RoleGrantPermission": lambda a: a.auth.RoleGrantPermission(
        rpc_pb2.AuthRoleGrantPermissionRequest(name="r", perm=auth_pb2.Permission(key=b"k"))),
    "Maintenance.Alarm": lambda a: a.maintenance.Alarm(
        rpc_pb2.AlarmRequest(action=rpc_pb2.AlarmRequest.GET)),
    "Maintenance.Defragment": lambda a: a.maintenance.Defragment(rpc_pb2.DefragmentRequest()),
    "Maintenance.Hash": lambda a: a.maintenance.Hash(rpc_pb2.HashRequest()),
    "Maintenance.HashKV": lambda a: a.maintenance.HashKV(rpc_pb2.HashKVRequest()),
    "Maintenance.MoveLeader": lambda a: a.maintenance.MoveLeader(
        rpc_pb2.MoveLeaderRequest(targetID=1)),
    "Maintenance.Snapshot": lambda a: read_all(a.maintenance.Snapshot(rpc_pb2.SnapshotRequest())),
}


async def read_all(stream: Any) -> list[Any]:
    return [item async for item in stream]


@pytest.mark.parametrize("method", list(UNIMPLEMENTED))
async def test_left_out_services_are_unimplemented(store: StoreCluster, api: EtcdApi,
                                                   prefix: bytes, method: str) -> None:
    require_backend(store, "raftstore")
    await refused_without_change(api, prefix, lambda: UNIMPLEMENTED[method](api),
                                 grpc.StatusCode.UNIMPLEMENTED, None)

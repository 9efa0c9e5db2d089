"""Conformance: the Lease service behaves like etcd v3.4.

Leases here live in the shared cluster, so every test revokes what it grants (unless
revocation is what it checks) and every client-chosen lease ID is random.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import grpc
import pytest_asyncio
from aetcd.rpc import kv_pb2, rpc_pb2

from tests.store.cluster import StoreCluster
from tests.store.etcd_api import (
    EtcdApi,
    connect,
    current_revision,
    eventually,
    expect_error,
    flat_events,
    get,
    keyspace,
    prefix_end,
    put,
)

LEASE_NOT_FOUND = "etcdserver: requested lease not found"
Grant = rpc_pb2.LeaseGrantRequest
TimeToLive = rpc_pb2.LeaseTimeToLiveRequest


@pytest_asyncio.fixture
async def api(store: StoreCluster) -> AsyncIterator[EtcdApi]:
    async with connect(store.endpoints[0]) as a:
        yield a


def random_lease_id() -> int:
    return secrets.randbits(62) + 1


async def revoke(api: EtcdApi, lease_id: int) -> None:
    """Revoke a lease if it still exists (test cleanup)."""
    try:
        await api.lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease_id))
    except grpc.aio.AioRpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:
            raise


async def test_grant_server_chosen_id(api: EtcdApi) -> None:
    first = await api.lease.LeaseGrant(Grant(TTL=120))
    second = await api.lease.LeaseGrant(Grant(TTL=90))
    try:
        assert first.ID != 0 and second.ID != 0 and first.ID != second.ID
        assert (first.TTL, second.TTL) == (120, 90)
        assert first.error == ""
        ttl = await api.lease.LeaseTimeToLive(TimeToLive(ID=first.ID))
        assert (ttl.ID, ttl.grantedTTL) == (first.ID, 120)
        assert 0 < ttl.TTL <= 120
    finally:
        await revoke(api, first.ID)
        await revoke(api, second.ID)


async def test_grant_does_not_bump_revision(api: EtcdApi) -> None:
    before = await current_revision(api)
    lease = await api.lease.LeaseGrant(Grant(TTL=60))
    try:
        assert await current_revision(api) == before
    finally:
        await revoke(api, lease.ID)


async def test_grant_client_chosen_id(api: EtcdApi) -> None:
    lease_id = random_lease_id()
    resp = await api.lease.LeaseGrant(Grant(ID=lease_id, TTL=60))
    try:
        assert (resp.ID, resp.TTL) == (lease_id, 60)
        ttl = await api.lease.LeaseTimeToLive(TimeToLive(ID=lease_id))
        assert (ttl.ID, ttl.grantedTTL) == (lease_id, 60)
        await expect_error(api.lease.LeaseGrant(Grant(ID=lease_id, TTL=30)),
                           grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: lease already exists")
        ttl = await api.lease.LeaseTimeToLive(TimeToLive(ID=lease_id))
        assert ttl.grantedTTL == 60  # the refused grant changed nothing
    finally:
        await revoke(api, lease_id)


async def test_grant_too_large_ttl(api: EtcdApi) -> None:
    await expect_error(api.lease.LeaseGrant(Grant(TTL=9_000_000_001)),
                       grpc.StatusCode.OUT_OF_RANGE, "etcdserver: too large lease TTL")


async def test_revoke_deletes_attached_keys_in_one_revision(api: EtcdApi, prefix: bytes) -> None:
    lease = await api.lease.LeaseGrant(Grant(TTL=300))
    attached = [prefix + b"a", prefix + b"b", prefix + b"c"]
    for k in attached:
        await put(api, k, lease=lease.ID)
    await put(api, prefix + b"free")
    async with api.watch_stream() as ws:
        await ws.create(prefix, prefix_end(prefix))
        before = await current_revision(api)
        resp = await api.lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease.ID))
        assert resp.header.revision == before + 1
        (deletions,) = await ws.events(len(attached))  # one response: one revision
        assert sorted((ev.type, ev.kv.key, ev.kv.mod_revision) for ev in deletions.events) == [
            (kv_pb2.Event.DELETE, k, before + 1) for k in attached]
    assert [kv.key for kv in (await keyspace(api, prefix)).kvs] == [prefix + b"free"]
    gone = await api.lease.LeaseTimeToLive(TimeToLive(ID=lease.ID, keys=True))
    assert gone.TTL == -1
    await expect_error(api.lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease.ID)),
                       grpc.StatusCode.NOT_FOUND, LEASE_NOT_FOUND)


async def test_revoke_without_keys_does_not_bump_revision(api: EtcdApi) -> None:
    lease = await api.lease.LeaseGrant(Grant(TTL=60))
    before = await current_revision(api)
    resp = await api.lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease.ID))
    assert resp.header.revision == before
    assert await current_revision(api) == before


async def test_revoke_unknown_lease(api: EtcdApi) -> None:
    await expect_error(api.lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=random_lease_id())),
                       grpc.StatusCode.NOT_FOUND, LEASE_NOT_FOUND)


async def test_time_to_live_with_keys(api: EtcdApi, prefix: bytes) -> None:
    lease = await api.lease.LeaseGrant(Grant(TTL=600))
    try:
        keys = [prefix + b"b", prefix + b"a", prefix + b"c"]
        for k in keys:
            await put(api, k, lease=lease.ID)
        other = await api.lease.LeaseGrant(Grant(TTL=600))
        await put(api, prefix + b"c", lease=other.ID)  # moves c to the other lease
        try:
            resp = await api.lease.LeaseTimeToLive(TimeToLive(ID=lease.ID, keys=True))
            assert resp.ID == lease.ID
            assert resp.grantedTTL == 600
            assert 590 <= resp.TTL <= 600
            assert sorted(resp.keys) == [prefix + b"a", prefix + b"b"]
            moved = await api.lease.LeaseTimeToLive(TimeToLive(ID=other.ID, keys=True))
            assert list(moved.keys) == [prefix + b"c"]
            without_keys = await api.lease.LeaseTimeToLive(TimeToLive(ID=lease.ID))
            assert list(without_keys.keys) == []
            assert without_keys.grantedTTL == 600
        finally:
            await revoke(api, other.ID)
    finally:
        await revoke(api, lease.ID)


async def test_time_to_live_of_unknown_lease(api: EtcdApi) -> None:
    lease_id = random_lease_id()
    # etcd answers without an error: TTL -1, nothing granted, no keys
    resp = await api.lease.LeaseTimeToLive(TimeToLive(ID=lease_id, keys=True))
    assert (resp.ID, resp.TTL, resp.grantedTTL, list(resp.keys)) == (lease_id, -1, 0, [])
    assert resp.header.revision == await current_revision(api)


async def test_leases_listing(api: EtcdApi) -> None:
    granted = [await api.lease.LeaseGrant(Grant(TTL=60)) for _ in range(3)]
    chosen = random_lease_id()
    await api.lease.LeaseGrant(Grant(ID=chosen, TTL=60))
    ids = {g.ID for g in granted} | {chosen}
    try:
        listed = {status.ID for status in (await api.lease.LeaseLeases(
            rpc_pb2.LeaseLeasesRequest())).leases}
        assert ids <= listed
        await api.lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=chosen))
        listed = {status.ID for status in (await api.lease.LeaseLeases(
            rpc_pb2.LeaseLeasesRequest())).leases}
        assert chosen not in listed
        assert ids - {chosen} <= listed
    finally:
        for lease_id in ids:
            await revoke(api, lease_id)


class KeepAliveStream:
    """A LeaseKeepAlive stream: one response per request, in order."""

    def __init__(self, api: EtcdApi) -> None:
        self._requests: asyncio.Queue[rpc_pb2.LeaseKeepAliveRequest | None] = asyncio.Queue()
        self._call = api.lease.LeaseKeepAlive(self._iterate())

    async def _iterate(self) -> AsyncIterator[rpc_pb2.LeaseKeepAliveRequest]:
        while (request := await self._requests.get()) is not None:
            yield request

    async def keep_alive(self, lease_id: int) -> rpc_pb2.LeaseKeepAliveResponse:
        self._requests.put_nowait(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
        resp = await asyncio.wait_for(self._call.read(), 10)
        assert resp is not grpc.aio.EOF
        return resp

    def close(self) -> None:
        self._requests.put_nowait(None)
        self._call.cancel()


async def test_keep_alive_refreshes_ttl(api: EtcdApi, prefix: bytes) -> None:
    lease = await api.lease.LeaseGrant(Grant(TTL=20))
    other = await api.lease.LeaseGrant(Grant(TTL=30))
    stream = KeepAliveStream(api)
    try:
        await put(api, prefix + b"k", lease=lease.ID)

        async def ttl_dropped() -> bool:
            resp = await api.lease.LeaseTimeToLive(TimeToLive(ID=lease.ID))
            return resp.TTL <= 18
        await eventually(ttl_dropped, "the lease's remaining TTL to drop")

        resp = await stream.keep_alive(lease.ID)
        assert (resp.ID, resp.TTL) == (lease.ID, 20)
        refreshed = await api.lease.LeaseTimeToLive(TimeToLive(ID=lease.ID))
        assert refreshed.TTL >= 19 and refreshed.grantedTTL == 20
        # one stream serves several leases, answering each in turn
        resp = await stream.keep_alive(other.ID)
        assert (resp.ID, resp.TTL) == (other.ID, 30)
        # an unknown lease gets an answer with TTL 0, not an error, and the stream goes on
        unknown = random_lease_id()
        resp = await stream.keep_alive(unknown)
        assert (resp.ID, resp.TTL) == (unknown, 0)
        resp = await stream.keep_alive(lease.ID)
        assert (resp.ID, resp.TTL) == (lease.ID, 20)
        kv = await get(api, prefix + b"k")
        assert kv is not None and kv.lease == lease.ID
    finally:
        stream.close()
        await revoke(api, lease.ID)
        await revoke(api, other.ID)


async def test_expiry_deletes_attached_keys(api: EtcdApi, prefix: bytes) -> None:
    lease = await api.lease.LeaseGrant(Grant(TTL=2))
    keys = [prefix + b"a", prefix + b"b"]
    async with api.watch_stream() as ws:
        await ws.create(prefix, prefix_end(prefix))
        for k in keys:
            await put(api, k, lease=lease.ID)
        await put(api, prefix + b"free")
        puts = flat_events(await ws.events(3))
        assert all(ev.type == kv_pb2.Event.PUT for ev in puts)
        (expired,) = await ws.events(2, within=30)  # both keys in one revision
    assert sorted((ev.type, ev.kv.key) for ev in expired.events) == [
        (kv_pb2.Event.DELETE, k) for k in keys]
    assert len({ev.kv.mod_revision for ev in expired.events}) == 1
    assert [kv.key for kv in (await keyspace(api, prefix)).kvs] == [prefix + b"free"]
    ttl = await api.lease.LeaseTimeToLive(TimeToLive(ID=lease.ID))
    assert ttl.TTL == -1
    await expect_error(put(api, prefix + b"c", lease=lease.ID),
                       grpc.StatusCode.NOT_FOUND, LEASE_NOT_FOUND)


async def test_put_with_unknown_lease(api: EtcdApi, prefix: bytes) -> None:
    await put(api, prefix + b"k", b"original")
    before = await keyspace(api, prefix)
    await expect_error(put(api, prefix + b"k", b"new", lease=random_lease_id()),
                       grpc.StatusCode.NOT_FOUND, LEASE_NOT_FOUND)
    await expect_error(put(api, prefix + b"other", lease=random_lease_id()),
                       grpc.StatusCode.NOT_FOUND, LEASE_NOT_FOUND)
    assert await keyspace(api, prefix) == before

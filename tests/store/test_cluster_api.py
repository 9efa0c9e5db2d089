"""Conformance: Cluster.MemberList, Maintenance.Status and response headers behave like etcd.

Member IDs, raft indexes and database sizes are the server's own business; these tests
only check that what the members say is complete and agrees across members.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack

import pytest_asyncio
from aetcd.rpc import rpc_pb2

from tests.store.cluster import StoreCluster
from tests.store.etcd_api import EtcdApi, connect, put


@pytest_asyncio.fixture
async def members(store: StoreCluster) -> AsyncIterator[list[EtcdApi]]:
    """One API connection per member, in member order."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(connect(e)) for e in store.endpoints]


def owner_of(endpoint: str, listing: rpc_pb2.MemberListResponse) -> rpc_pb2.Member:
    """The listed member with ``endpoint`` among its client URLs."""
    (member,) = [m for m in listing.members if serves(m.clientURLs, endpoint)]
    return member


def serves(urls: Iterable[str], address: str) -> bool:
    """Whether one of ``urls`` (``scheme://host:port`` or ``host:port``) is ``address``."""
    return any(u.rstrip("/").rpartition("/")[2] == address for u in urls)


async def test_member_list(store: StoreCluster, members: list[EtcdApi]) -> None:
    listings = [await m.cluster.MemberList(rpc_pb2.MemberListRequest()) for m in members]
    first = listings[0]
    assert sorted(m.name for m in first.members) == ["s1", "s2", "s3"]
    ids = [m.ID for m in first.members]
    assert len(set(ids)) == 3 and 0 not in ids
    for listing in listings[1:]:  # every member tells the same story
        assert sorted(listing.members, key=lambda m: m.ID) == sorted(first.members,
                                                                    key=lambda m: m.ID)
    for i, endpoint in enumerate(store.endpoints):
        member = owner_of(endpoint, first)
        assert member.name == store.names[i]
        assert serves(member.peerURLs, f"127.0.0.1:{store.peer_ports[i]}")
        assert not member.isLearner
        # a member's headers carry its own ID, the one the listing gives it
        assert listings[i].header.member_id == member.ID


async def test_status_of_every_member(store: StoreCluster, members: list[EtcdApi]) -> None:
    listing = await members[0].cluster.MemberList(rpc_pb2.MemberListRequest())
    ids = {m.ID for m in listing.members}
    statuses = [await m.maintenance.Status(rpc_pb2.StatusRequest()) for m in members]
    leaders = {st.leader for st in statuses}
    assert len(leaders) == 1, f"members disagree on the leader: {leaders}"
    (leader,) = leaders
    assert leader in ids
    assert [st.header.member_id for st in statuses].count(leader) == 1
    for endpoint, st in zip(store.endpoints, statuses, strict=True):
        assert st.header.member_id == owner_of(endpoint, listing).ID
        assert st.raftTerm > 0
        assert st.version != ""
        assert not st.isLearner
    assert len({st.raftTerm for st in statuses}) == 1


async def test_status_revision_follows_writes(members: list[EtcdApi], prefix: bytes) -> None:
    rev = (await put(members[0], prefix + b"k")).header.revision
    st = await members[0].maintenance.Status(rpc_pb2.StatusRequest())
    assert st.header.revision >= rev


async def test_cluster_id_is_the_same_everywhere(members: list[EtcdApi], prefix: bytes) -> None:
    cluster_ids = set()
    for i, m in enumerate(members):
        headers = [
            (await m.kv.Range(rpc_pb2.RangeRequest(key=prefix + b"k"))).header,
            (await m.kv.Put(rpc_pb2.PutRequest(key=prefix + b"%d" % i))).header,
            (await m.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=prefix + b"x"))).header,
            (await m.kv.Txn(rpc_pb2.TxnRequest())).header,
            (await m.lease.LeaseTimeToLive(rpc_pb2.LeaseTimeToLiveRequest(ID=1))).header,
            (await m.lease.LeaseLeases(rpc_pb2.LeaseLeasesRequest())).header,
            (await m.cluster.MemberList(rpc_pb2.MemberListRequest())).header,
            (await m.maintenance.Status(rpc_pb2.StatusRequest())).header,
        ]
        async with m.watch_stream() as ws:
            headers.append((await ws.create(prefix + b"k")).header)
        assert len({h.member_id for h in headers}) == 1, f"member {i} changes its ID"
        cluster_ids |= {h.cluster_id for h in headers}
    assert len(cluster_ids) == 1 and 0 not in cluster_ids

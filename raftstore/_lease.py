"""etcd v3 Lease service. Grants, renewals and revocations go through the Raft log;
expiry is decided by the leader's clock and applied through the log (``LeaseKeeper``)."""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

from raftstore import _errors as err
from raftstore._commands import Op
from raftstore._kv import fill_header, rpc
from raftstore._mvcc import MAX_LEASE_TTL
from raftstore._node import RaftNode

log = structlog.get_logger("raftstore.lease")


class LeaseService(rpc_pb2_grpc.LeaseServicer):  # type: ignore[misc]
    """LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases."""

    def __init__(self, node: RaftNode) -> None:
        self.node = node
        self.store = node.store
        # etcd's minimum TTL: 1.5 election timeouts, rounded up to whole seconds
        self.min_ttl = math.ceil(1.5 * node.config.election_timeout)

    @rpc
    async def LeaseGrant(self, request: rpc_pb2.LeaseGrantRequest,
                         context: Any) -> rpc_pb2.LeaseGrantResponse:
        if request.TTL > MAX_LEASE_TTL:
            raise err.LEASE_TTL_TOO_LARGE
        req = rpc_pb2.LeaseGrantRequest(ID=request.ID, TTL=max(request.TTL, self.min_ttl))
        if req.ID == 0:
            while req.ID == 0 or req.ID in self.store.leases:
                req.ID = secrets.randbits(63)
        applied = await self.node.propose(Op.LEASE_GRANT, req)
        resp: rpc_pb2.LeaseGrantResponse = applied.result
        fill_header(self.node, resp.header)
        return resp

    @rpc
    async def LeaseRevoke(self, request: rpc_pb2.LeaseRevokeRequest,
                          context: Any) -> rpc_pb2.LeaseRevokeResponse:
        applied = await self.node.propose(Op.LEASE_REVOKE, request)
        resp: rpc_pb2.LeaseRevokeResponse = applied.result
        fill_header(self.node, resp.header)
        return resp

    async def LeaseKeepAlive(self, request_iterator: AsyncIterator[rpc_pb2.LeaseKeepAliveRequest],
                             context: Any) -> AsyncIterator[rpc_pb2.LeaseKeepAliveResponse]:
        async for req in request_iterator:
            try:
                applied = await self.node.propose(Op.LEASE_RENEW, req)
            except err.StoreError as e:
                await context.abort(e.code, e.message)
                return
            resp: rpc_pb2.LeaseKeepAliveResponse = applied.result
            fill_header(self.node, resp.header)
            yield resp

    @rpc
    async def LeaseTimeToLive(self, request: rpc_pb2.LeaseTimeToLiveRequest,
                              context: Any) -> rpc_pb2.LeaseTimeToLiveResponse:
        await self.node.read_barrier()
        lease = self.store.leases.get(request.ID)
        resp = rpc_pb2.LeaseTimeToLiveResponse(ID=request.ID, TTL=-1)
        if lease is not None:
            deadline = self.node.lease_deadlines.get(lease.id, time.monotonic() + lease.ttl)
            resp.TTL = max(0, int(deadline - time.monotonic()))
            resp.grantedTTL = lease.ttl
            if request.keys:
                resp.keys.extend(sorted(lease.keys))
        resp.header.revision = self.store.revision
        fill_header(self.node, resp.header)
        return resp

    @rpc
    async def LeaseLeases(self, request: rpc_pb2.LeaseLeasesRequest,
                          context: Any) -> rpc_pb2.LeaseLeasesResponse:
        await self.node.read_barrier()
        resp = rpc_pb2.LeaseLeasesResponse(
            leases=[rpc_pb2.LeaseStatus(ID=i) for i in sorted(self.store.leases)])
        resp.header.revision = self.store.revision
        fill_header(self.node, resp.header)
        return resp


class LeaseKeeper:
    """On the leader, revoke leases whose TTL ran out, through the log (one at a time each)."""

    def __init__(self, node: RaftNode, interval: float = 0.25) -> None:
        self.node = node
        self.interval = interval
        self._pending: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak refs

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self.node.status().is_leader:
                continue
            now = time.monotonic()
            for lid, deadline in list(self.node.lease_deadlines.items()):
                if deadline <= now and lid not in self._pending:
                    self._pending.add(lid)
                    task = asyncio.get_running_loop().create_task(self._expire(lid))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def _expire(self, lid: int) -> None:
        try:
            await self.node.propose(Op.LEASE_EXPIRE, rpc_pb2.LeaseRevokeRequest(ID=lid))
            log.info("lease expired", lease=lid)
        except err.StoreError as e:
            log.warning("lease expiry not applied; will retry", lease=lid, error=e.message)
        finally:
            self._pending.discard(lid)

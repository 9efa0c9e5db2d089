"""etcd v3 Cluster and Maintenance services (the parts raftstore serves), and the
answer UNIMPLEMENTED, with a message, for everything else etcd has."""

from __future__ import annotations

import ipaddress
from typing import Any

from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

from raftstore import _errors as err
from raftstore._commands import Op
from raftstore._kv import fill_header, rpc
from raftstore._node import RaftNode, member_id

API_VERSION = "3.4.0"


def url(address: str) -> str:
    return f"http://{address}"


def address_of(peer_url: str) -> str:
    """``http://IP:PORT`` or ``IP:PORT`` to ``IP:PORT``; StoreError if it is not one."""
    rest = peer_url
    for scheme in ("http://", "https://"):
        if rest.startswith(scheme):
            rest = rest[len(scheme):]
    host, sep, port = rest.rstrip("/").rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
        ok = bool(sep) and port.isdigit() and 0 < int(port) < 65536
    except ValueError:
        ok = False
    if not ok:
        raise err.StoreError(err.MEMBER_BAD_URLS.code,
                             f"{err.MEMBER_BAD_URLS.message}: {peer_url!r} is not http://IP:PORT")
    return f"{host}:{port}"


def _unimplemented_servicer(base: type, service: str, skip: set[str]) -> type:
    """A servicer whose every method (but ``skip``) aborts with UNIMPLEMENTED and a message."""
    methods: dict[str, Any] = {}
    for name in dir(base):
        if name.startswith("_") or name in skip or not callable(getattr(base, name)):
            continue

        def make(method: str) -> Any:
            async def handler(self: Any, request: Any, context: Any) -> Any:
                e = err.unimplemented(service, method)
                await context.abort(e.code, e.message)
            return handler

        methods[name] = make(name)
    return type(f"Unimplemented{service}", (base,), methods)


_UnimplementedMaintenance: Any = _unimplemented_servicer(
    rpc_pb2_grpc.MaintenanceServicer, "Maintenance", {"Status"})
AuthService: Any = _unimplemented_servicer(rpc_pb2_grpc.AuthServicer, "Auth", set())


class ClusterService(rpc_pb2_grpc.ClusterServicer):  # type: ignore[misc]
    """MemberList, MemberAdd, MemberRemove."""

    def __init__(self, node: RaftNode) -> None:
        self.node = node
        self.store = node.store

    def members(self) -> list[rpc_pb2.Member]:
        table = dict(self.store.members)
        out = {m.id: m.to_pb() for m in table.values()}
        for addr in self.node.raft_nodes():
            mid = member_id(self.node.token, addr)
            if mid not in out:
                out[mid] = rpc_pb2.Member(ID=mid, peerURLs=[url(addr)])
        return sorted(out.values(), key=lambda m: m.ID)

    def _header(self) -> rpc_pb2.ResponseHeader:
        h = rpc_pb2.ResponseHeader(revision=self.store.revision)
        fill_header(self.node, h)
        return h

    @rpc
    async def MemberList(self, request: Any, context: Any) -> rpc_pb2.MemberListResponse:
        return rpc_pb2.MemberListResponse(header=self._header(), members=self.members())

    @rpc
    async def MemberAdd(self, request: rpc_pb2.MemberAddRequest,
                        context: Any) -> rpc_pb2.MemberAddResponse:
        if request.isLearner:
            raise err.StoreError(err.MEMBER_BAD_URLS.code,
                                 "raftstore has no learners: add the member as a voter")
        if len(request.peerURLs) != 1:
            raise err.StoreError(err.MEMBER_BAD_URLS.code,
                                 f"{err.MEMBER_BAD_URLS.message}: give exactly one peer URL")
        addr = address_of(request.peerURLs[0])
        if addr in self.node.raft_nodes():
            raise err.PEER_URL_EXISTS
        new = rpc_pb2.Member(ID=member_id(self.node.token, addr), peerURLs=[url(addr)])
        await self.node.propose(Op.MEMBER_ADD, new)
        await self.node.add_node(addr)
        return rpc_pb2.MemberAddResponse(header=self._header(), member=new,
                                         members=self.members())

    @rpc
    async def MemberRemove(self, request: rpc_pb2.MemberRemoveRequest,
                           context: Any) -> rpc_pb2.MemberRemoveResponse:
        target = next((m for m in self.members() if m.ID == request.ID), None)
        if target is None:
            raise err.MEMBER_NOT_FOUND
        addr = address_of(target.peerURLs[0])
        if request.ID == self.node.member_id:
            raise err.StoreError(
                err.PEER_URL_EXISTS.code,
                "raftstore: a member cannot remove itself; send MemberRemove to another member")
        await self.node.remove_node(addr)
        try:
            await self.node.propose(Op.MEMBER_REMOVE, rpc_pb2.Member(ID=request.ID))
        except err.StoreError as e:
            if e != err.MEMBER_NOT_FOUND:  # not yet published: nothing in the table
                raise
        return rpc_pb2.MemberRemoveResponse(header=self._header(), members=self.members())

    async def MemberUpdate(self, request: Any, context: Any) -> Any:
        e = err.unimplemented("Cluster", "MemberUpdate")
        await context.abort(e.code, e.message)

    async def MemberPromote(self, request: Any, context: Any) -> Any:
        e = err.unimplemented("Cluster", "MemberPromote")
        await context.abort(e.code, e.message)


class MaintenanceService(_UnimplementedMaintenance):  # type: ignore[misc]
    """Status; every other Maintenance RPC answers UNIMPLEMENTED."""

    def __init__(self, node: RaftNode) -> None:
        self.node = node

    @rpc
    async def Status(self, request: Any, context: Any) -> rpc_pb2.StatusResponse:
        st = self.node.status()
        size = self.node.size_bytes()
        resp = rpc_pb2.StatusResponse(
            version=API_VERSION, dbSize=size, dbSizeInUse=size,
            leader=self.node.leader_member_id(), raftIndex=st.commit_index,
            raftTerm=st.term, raftAppliedIndex=st.applied_index,
        )
        resp.header.revision = self.node.store.revision
        fill_header(self.node, resp.header)
        return resp



"""etcd v3 KV service: request validation (as etcd's v3rpc does) and the handlers."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc
from google.protobuf.message import Message

from raftstore import _errors as err
from raftstore._commands import Op
from raftstore._mvcc import MAX_TXN_OPS, range_end_of
from raftstore._node import RaftNode

R = TypeVar("R", bound=Message)


def rpc(fn: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Answer a StoreError raised by a handler as its gRPC status."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await fn(self, request, context)
        except err.StoreError as e:
            await context.abort(e.code, e.message)
            raise  # unreachable: abort raises

    return wrapper


def fill_header(node: RaftNode, header: rpc_pb2.ResponseHeader) -> None:
    """Set the cluster, member and term of a response header (revision is set by the store)."""
    header.cluster_id = node.cluster_id()
    header.member_id = node.member_id
    header.raft_term = node.term()


# ---------------------------------------------------------------- validation
def check_range(r: rpc_pb2.RangeRequest) -> None:
    if not r.key:
        raise err.EMPTY_KEY


def check_put(r: rpc_pb2.PutRequest) -> None:
    if not r.key:
        raise err.EMPTY_KEY
    if r.ignore_value and r.value:
        raise err.VALUE_PROVIDED
    if r.ignore_lease and r.lease:
        raise err.LEASE_PROVIDED


def check_delete(r: rpc_pb2.DeleteRangeRequest) -> None:
    if not r.key:
        raise err.EMPTY_KEY


def check_txn(r: rpc_pb2.TxnRequest) -> None:
    """etcd's checkTxnRequest + checkIntervals: op counts, keys, no key written twice."""
    if max(len(r.compare), len(r.success), len(r.failure)) > MAX_TXN_OPS:
        raise err.TOO_MANY_OPS
    for c in r.compare:
        if not c.key:
            raise err.EMPTY_KEY
    for ops in (r.success, r.failure):
        for op in ops:
            kind = op.WhichOneof("request")
            if kind == "request_range":
                check_range(op.request_range)
            elif kind == "request_put":
                check_put(op.request_put)
            elif kind == "request_delete_range":
                check_delete(op.request_delete_range)
            elif kind == "request_txn":
                check_txn(op.request_txn)
        _written(ops)


def _written(ops: Any) -> tuple[set[bytes], list[tuple[bytes, bytes | None]]]:
    """Keys put and ranges deleted by one branch; DUPLICATE_KEY if they collide."""
    puts: set[bytes] = set()
    dels: list[tuple[bytes, bytes | None]] = []

    def add_put(key: bytes) -> None:
        if key in puts:
            raise err.DUPLICATE_KEY
        puts.add(key)

    for op in ops:
        kind = op.WhichOneof("request")
        if kind == "request_put":
            add_put(op.request_put.key)
        elif kind == "request_delete_range":
            d = op.request_delete_range
            dels.append(range_end_of(d.key, d.range_end) if d.range_end else (d.key, d.key + b"\0"))
        elif kind == "request_txn":
            branch_puts: set[bytes] = set()
            for branch in (op.request_txn.success, op.request_txn.failure):
                p, d = _written(branch)
                if p & puts:
                    raise err.DUPLICATE_KEY
                branch_puts |= p
                dels.extend(d)
            for key in branch_puts:
                puts.add(key)
    for key in puts:
        for lo, hi in dels:
            if key >= lo and (hi is None or key < hi):
                raise err.DUPLICATE_KEY
    return puts, dels


class KVService(rpc_pb2_grpc.KVServicer):  # type: ignore[misc]
    """Range, Put, DeleteRange, Txn, Compact."""

    def __init__(self, node: RaftNode) -> None:
        self.node = node
        self.store = node.store
        self.max_request_bytes = node.config.max_request_bytes

    def _check_size(self, req: Message) -> None:
        if req.ByteSize() > self.max_request_bytes:
            raise err.REQUEST_TOO_LARGE

    async def _write(self, op: Op, req: Message) -> Any:
        self._check_size(req)
        applied = await self.node.propose(op, req)
        resp: Any = applied.result
        fill_header(self.node, resp.header)
        return resp

    @rpc
    async def Range(self, request: rpc_pb2.RangeRequest, context: Any) -> rpc_pb2.RangeResponse:
        check_range(request)
        if not request.serializable:
            await self.node.read_barrier()
        resp = self.store.range(request)
        fill_header(self.node, resp.header)
        return resp

    @rpc
    async def Put(self, request: rpc_pb2.PutRequest, context: Any) -> rpc_pb2.PutResponse:
        check_put(request)
        resp: rpc_pb2.PutResponse = await self._write(Op.PUT, request)
        return resp

    @rpc
    async def DeleteRange(self, request: rpc_pb2.DeleteRangeRequest,
                          context: Any) -> rpc_pb2.DeleteRangeResponse:
        check_delete(request)
        resp: rpc_pb2.DeleteRangeResponse = await self._write(Op.DELETE_RANGE, request)
        return resp

    @rpc
    async def Txn(self, request: rpc_pb2.TxnRequest, context: Any) -> rpc_pb2.TxnResponse:
        check_txn(request)
        if _read_only(request):
            return await self._read_only_txn(request)
        resp: rpc_pb2.TxnResponse = await self._write(Op.TXN, request)
        return resp

    async def _read_only_txn(self, request: rpc_pb2.TxnRequest) -> rpc_pb2.TxnResponse:
        """A txn that writes nothing is served like a read: no log entry beyond a barrier."""
        self._check_size(request)
        if not _serializable(request):
            await self.node.read_barrier()
        resp = self.store.read_txn(request)
        fill_header(self.node, resp.header)
        return resp

    @rpc
    async def Compact(self, request: rpc_pb2.CompactionRequest,
                      context: Any) -> rpc_pb2.CompactionResponse:
        resp: rpc_pb2.CompactionResponse = await self._write(Op.COMPACT, request)
        return resp


def _read_only(r: rpc_pb2.TxnRequest) -> bool:
    for op in (*r.success, *r.failure):
        kind = op.WhichOneof("request")
        if kind in ("request_put", "request_delete_range"):
            return False
        if kind == "request_txn" and not _read_only(op.request_txn):
            return False
    return True


def _serializable(r: rpc_pb2.TxnRequest) -> bool:
    """etcd serves a read-only txn locally when every range in it is serializable."""
    ranges = []
    for op in (*r.success, *r.failure):
        kind = op.WhichOneof("request")
        if kind == "request_range":
            ranges.append(op.request_range.serializable)
        elif kind == "request_txn":
            ranges.append(_serializable(op.request_txn))
    return bool(ranges) and all(ranges)

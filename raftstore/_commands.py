"""Raft log entries: one byte of operation, a CRC-32 of the payload, the payload.

The CRC-32 covers the operation byte and the payload (seeded with the operation).
The payload is the serialized etcd request (already validated and completed by the
proposer: a chosen lease ID, a clamped TTL). A CRC mismatch means a damaged journal;
the member stops rather than apply it.
"""

from __future__ import annotations

import enum
import struct
import zlib
from typing import Any

from aetcd.rpc import rpc_pb2
from google.protobuf.message import Message


class Op(enum.IntEnum):
    """The operations the state machine applies."""

    PUT = 1
    DELETE_RANGE = 2
    TXN = 3
    COMPACT = 4
    LEASE_GRANT = 5
    LEASE_REVOKE = 6
    LEASE_EXPIRE = 7
    LEASE_RENEW = 8
    BARRIER = 9
    MEMBER_PUBLISH = 10
    MEMBER_ADD = 11
    MEMBER_REMOVE = 12
    CLUSTER_INIT = 13
    BATCH = 14  # several commands proposed together (group commit); applied in order


_TYPES: dict[Op, type[Message]] = {
    Op.PUT: rpc_pb2.PutRequest,
    Op.DELETE_RANGE: rpc_pb2.DeleteRangeRequest,
    Op.TXN: rpc_pb2.TxnRequest,
    Op.COMPACT: rpc_pb2.CompactionRequest,
    Op.LEASE_GRANT: rpc_pb2.LeaseGrantRequest,
    Op.LEASE_REVOKE: rpc_pb2.LeaseRevokeRequest,
    Op.LEASE_EXPIRE: rpc_pb2.LeaseRevokeRequest,
    Op.LEASE_RENEW: rpc_pb2.LeaseKeepAliveRequest,
    Op.BARRIER: rpc_pb2.StatusRequest,
    Op.MEMBER_PUBLISH: rpc_pb2.Member,
    Op.MEMBER_ADD: rpc_pb2.Member,
    Op.MEMBER_REMOVE: rpc_pb2.Member,
    Op.CLUSTER_INIT: rpc_pb2.Member,
}

_HEAD = struct.Struct("<BI")


class CorruptCommand(Exception):
    """A log entry failed its checksum or does not decode: the journal is damaged."""


def encode(op: Op, msg: Message) -> bytes:
    """The log entry for ``msg``."""
    payload: bytes = msg.SerializeToString()
    return _HEAD.pack(op, zlib.crc32(payload, op)) + payload


_LEN = struct.Struct("<I")


def encode_batch(entries: list[bytes]) -> bytes:
    """One log entry carrying several encoded commands, applied in the given order."""
    payload = b"".join(_LEN.pack(len(e)) + e for e in entries)
    return _HEAD.pack(Op.BATCH, zlib.crc32(payload, Op.BATCH)) + payload


def split_batch(payload: bytes) -> list[bytes]:
    """The commands inside a BATCH entry's payload."""
    out, off = [], 0
    while off < len(payload):
        if off + _LEN.size > len(payload):
            raise CorruptCommand("batch entry is truncated")
        (n,) = _LEN.unpack_from(payload, off)
        off += _LEN.size
        if off + n > len(payload):
            raise CorruptCommand("batch entry is truncated")
        out.append(payload[off:off + n])
        off += n
    return out


def decode(entry: bytes) -> tuple[Op, Any]:
    """Parse a log entry; raise CorruptCommand if it is damaged.

    For ``Op.BATCH`` the second item is the list of the batch's encoded commands.
    """
    if len(entry) < _HEAD.size:
        raise CorruptCommand("log entry shorter than its header")
    op_b, crc = _HEAD.unpack_from(entry)
    payload = entry[_HEAD.size:]
    if zlib.crc32(payload, op_b) != crc:  # the checksum covers the operation byte too
        raise CorruptCommand(f"log entry checksum mismatch (operation {op_b})")
    if op_b == Op.BATCH:
        return Op.BATCH, split_batch(payload)
    try:
        op = Op(op_b)
        msg = _TYPES[op]()
        msg.ParseFromString(payload)
    except Exception as e:
        raise CorruptCommand(f"log entry does not decode: {e}") from e
    return op, msg

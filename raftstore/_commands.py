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


def decode(entry: bytes) -> tuple[Op, Message]:
    """Parse a log entry; raise CorruptCommand if it is damaged."""
    if len(entry) < _HEAD.size:
        raise CorruptCommand("log entry shorter than its header")
    op_b, crc = _HEAD.unpack_from(entry)
    payload = entry[_HEAD.size:]
    if zlib.crc32(payload, op_b) != crc:  # the checksum covers the operation byte too
        raise CorruptCommand(f"log entry checksum mismatch (operation {op_b})")
    try:
        op = Op(op_b)
        msg = _TYPES[op]()
        msg.ParseFromString(payload)
    except Exception as e:
        raise CorruptCommand(f"log entry does not decode: {e}") from e
    return op, msg

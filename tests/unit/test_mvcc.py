"""The raftstore state machine (``MVCCStore``) and its log-entry codec, without Raft.

Part 1 drives ``MVCCStore.apply`` with tables of commands and checks etcd's revision
semantics: create/mod revision and version, txns sharing one revision, exact rollback of
a failed txn, compaction, leases. Part 2 is a property test: random command
sequences go to the store and to ``Model``, a deliberately naive reference (a dict of
current values and a full copy of it per revision), and to a store restored from a
snapshot; all three must answer every read and every further command identically.
Part 3 is the codec (``_commands``): round trips and damaged entries.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest
from aetcd.rpc import rpc_pb2
from google.protobuf.message import Message
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from raftstore import _errors as err
from raftstore._commands import CorruptCommand, Op, decode, encode
from raftstore._kv import check_put, check_txn
from raftstore._mvcc import MAX_LEASE_TTL, Applied, MVCCStore

RR = rpc_pb2.RangeRequest
CMP = rpc_pb2.Compare
ALL = (b"\0", b"\0")  # etcd's "every key" (key and range_end both \0)

# A record as a plain tuple: (key, create_revision, mod_revision, version, value, lease).
KVTuple = tuple[bytes, int, int, int, bytes, int]


# ------------------------------------------------------------------ request builders
def put(key: bytes, value: bytes = b"v", lease: int = 0, **kw: Any) -> rpc_pb2.PutRequest:
    return rpc_pb2.PutRequest(key=key, value=value, lease=lease, **kw)


def delete(key: bytes, end: bytes = b"", **kw: Any) -> rpc_pb2.DeleteRangeRequest:
    return rpc_pb2.DeleteRangeRequest(key=key, range_end=end, **kw)


def rng(key: bytes, end: bytes = b"", revision: int = 0) -> rpc_pb2.RangeRequest:
    return rpc_pb2.RangeRequest(key=key, range_end=end, revision=revision)


def txn(compare: Sequence[rpc_pb2.Compare] = (), success: Sequence[Message] = (),
        failure: Sequence[Message] = ()) -> rpc_pb2.TxnRequest:
    return rpc_pb2.TxnRequest(compare=list(compare), success=[request_op(m) for m in success],
                              failure=[request_op(m) for m in failure])


def request_op(m: Message) -> rpc_pb2.RequestOp:
    field_name = {
        rpc_pb2.RangeRequest: "request_range",
        rpc_pb2.PutRequest: "request_put",
        rpc_pb2.DeleteRangeRequest: "request_delete_range",
        rpc_pb2.TxnRequest: "request_txn",
    }[type(m)]
    return rpc_pb2.RequestOp(**{field_name: m})


def version_is(key: bytes, version: int) -> rpc_pb2.Compare:
    return rpc_pb2.Compare(key=key, target=CMP.VERSION, result=CMP.EQUAL, version=version)


def compact(rev: int) -> rpc_pb2.CompactionRequest:
    return rpc_pb2.CompactionRequest(revision=rev)


def grant(lease_id: int, ttl: int = 10) -> rpc_pb2.LeaseGrantRequest:
    return rpc_pb2.LeaseGrantRequest(ID=lease_id, TTL=ttl)


def revoke(lease_id: int) -> rpc_pb2.LeaseRevokeRequest:
    return rpc_pb2.LeaseRevokeRequest(ID=lease_id)


@dataclass(frozen=True)
class Expire:
    """LEASE_EXPIRE shares LeaseRevokeRequest with LEASE_REVOKE; this marks which one."""

    lease_id: int


_OPS: dict[type, Op] = {
    rpc_pb2.PutRequest: Op.PUT,
    rpc_pb2.DeleteRangeRequest: Op.DELETE_RANGE,
    rpc_pb2.TxnRequest: Op.TXN,
    rpc_pb2.CompactionRequest: Op.COMPACT,
    rpc_pb2.LeaseGrantRequest: Op.LEASE_GRANT,
    rpc_pb2.LeaseRevokeRequest: Op.LEASE_REVOKE,
}


def entry(req: Message | Expire) -> bytes:
    """The log entry proposing ``req``."""
    if isinstance(req, Expire):
        return encode(Op.LEASE_EXPIRE, revoke(req.lease_id))
    return encode(_OPS[type(req)], req)


def apply(store: MVCCStore, req: Message | Expire) -> Applied:
    applied = store.apply(entry(req))
    assert isinstance(applied, Applied)
    return applied


def apply_all(store: MVCCStore, reqs: Sequence[Message | Expire]) -> list[Applied]:
    return [apply(store, r) for r in reqs]


# ------------------------------------------------------------------ store observations
def kv_tuple(kv: Any) -> KVTuple:
    return (kv.key, kv.create_revision, kv.mod_revision, kv.version, kv.value, kv.lease)


def read(store: MVCCStore, key: bytes, end: bytes = b"", rev: int = 0
         ) -> list[KVTuple] | err.StoreError:
    """A Range's records, or the StoreError it answers."""
    try:
        return [kv_tuple(kv) for kv in store.range(rng(key, end, rev)).kvs]
    except err.StoreError as e:
        return e


def current(store: MVCCStore) -> dict[bytes, tuple[int, int, int, bytes, int]]:
    """Every live key now: key -> (create, mod, version, value, lease)."""
    got = read(store, *ALL)
    assert isinstance(got, list)
    return {t[0]: t[1:] for t in got}


def lease_sets(store: MVCCStore) -> dict[int, frozenset[bytes]]:
    return {lid: frozenset(lease.keys) for lid, lease in store.leases.items()}


def outcome(a: Applied) -> tuple[int, int, err.StoreError | None]:
    """(revision after, number of changes, error or None) of one applied command."""
    return (a.revision, len(a.changes), a.result if isinstance(a.result, err.StoreError)
            else None)


def changes(store: MVCCStore, start: int = 1, limit: int = 10_000
            ) -> tuple[list[tuple[KVTuple, KVTuple | None]], int]:
    chs, nxt = store.changes_since(start, limit)
    return [(c.rec.as_tuple(), c.prev.as_tuple() if c.prev else None) for c in chs], nxt


# ==================================================================== part 1: tables
@dataclass(frozen=True)
class Case:
    """Apply ``commands`` in order; expect each one's outcome, then the live keys and
    the leases' key sets. ``outcomes`` rows are (revision after, changes, error)."""

    name: str
    commands: list[Message | Expire]
    outcomes: list[tuple[int, int, err.StoreError | None]]
    keys: dict[bytes, tuple[int, int, int, bytes, int]]
    leases: dict[int, frozenset[bytes]] = field(default_factory=dict)


NONE: frozenset[bytes] = frozenset()

REVISION_CASES = [
    Case("a fresh store is at revision 1; a first put creates at 2",
         [put(b"a", b"1")], [(2, 1, None)], {b"a": (2, 2, 1, b"1", 0)}),
    Case("a second put keeps create, takes a new mod, bumps version",
         [put(b"a", b"1"), put(b"a", b"2")], [(2, 1, None), (3, 1, None)],
         {b"a": (2, 3, 2, b"2", 0)}),
    Case("each put takes its own revision, across keys",
         [put(b"a"), put(b"b"), put(b"a")], [(2, 1, None), (3, 1, None), (4, 1, None)],
         {b"a": (2, 4, 2, b"v", 0), b"b": (3, 3, 1, b"v", 0)}),
    Case("delete then put: a new create revision and version 1 again",
         [put(b"a"), put(b"a"), delete(b"a"), put(b"a", b"again")],
         [(2, 1, None), (3, 1, None), (4, 1, None), (5, 1, None)],
         {b"a": (5, 5, 1, b"again", 0)}),
    Case("deleting a missing key changes nothing and takes no revision",
         [put(b"a"), delete(b"b"), put(b"c")], [(2, 1, None), (2, 0, None), (3, 1, None)],
         {b"a": (2, 2, 1, b"v", 0), b"c": (3, 3, 1, b"v", 0)}),
    Case("deleting an already deleted key takes no revision",
         [put(b"a"), delete(b"a"), delete(b"a")], [(2, 1, None), (3, 1, None), (3, 0, None)],
         {}),
    Case("a range delete removes every key in [key, range_end) at one revision",
         [put(b"a"), put(b"b"), put(b"c"), delete(b"a", b"c")],
         [(2, 1, None), (3, 1, None), (4, 1, None), (5, 2, None)],
         {b"c": (4, 4, 1, b"v", 0)}),
    Case("a range delete of an empty range takes no revision",
         [put(b"a"), delete(b"b", b"z")], [(2, 1, None), (2, 0, None)],
         {b"a": (2, 2, 1, b"v", 0)}),
    Case("range_end \\0 deletes every key >= key",
         [put(b"a"), put(b"b"), put(b"c"), delete(b"b", b"\0")],
         [(2, 1, None), (3, 1, None), (4, 1, None), (5, 2, None)],
         {b"a": (2, 2, 1, b"v", 0)}),
    Case("put with ignore_value keeps the value and bumps the version",
         [put(b"a", b"1"), put(b"a", b"", ignore_value=True)], [(2, 1, None), (3, 1, None)],
         {b"a": (2, 3, 2, b"1", 0)}),
    Case("put with ignore_value on a missing key: KEY_NOT_FOUND, no revision",
         [put(b"a"), put(b"b", b"", ignore_value=True)],
         [(2, 1, None), (2, 0, err.KEY_NOT_FOUND)], {b"a": (2, 2, 1, b"v", 0)}),
    Case("put with an unknown lease: LEASE_NOT_FOUND, no revision",
         [put(b"a", lease=7)], [(1, 0, err.LEASE_NOT_FOUND)], {}),
    Case("a txn's puts and deletes all share one revision",
         [put(b"x"), txn(success=[put(b"a"), put(b"b"), delete(b"x")])],
         [(2, 1, None), (3, 3, None)],
         {b"a": (3, 3, 1, b"v", 0), b"b": (3, 3, 1, b"v", 0)}),
    Case("a txn whose compare fails runs its failure branch",
         [put(b"a"), txn([version_is(b"a", 5)], [put(b"s")], [put(b"f")])],
         [(2, 1, None), (3, 1, None)],
         {b"a": (2, 2, 1, b"v", 0), b"f": (3, 3, 1, b"v", 0)}),
    Case("a txn whose compare holds runs its success branch",
         [put(b"a"), txn([version_is(b"a", 1)], [put(b"s")], [put(b"f")])],
         [(2, 1, None), (3, 1, None)],
         {b"a": (2, 2, 1, b"v", 0), b"s": (3, 3, 1, b"v", 0)}),
    Case("a compare on a missing key sees version 0",
         [txn([version_is(b"a", 0)], [put(b"a")])], [(2, 1, None)],
         {b"a": (2, 2, 1, b"v", 0)}),
    Case("a txn that only reads takes no revision",
         [put(b"a"), txn(success=[rng(b"a")])], [(2, 1, None), (2, 0, None)],
         {b"a": (2, 2, 1, b"v", 0)}),
    Case("a txn whose branch deletes nothing takes no revision",
         [put(b"a"), txn(success=[delete(b"zz")])], [(2, 1, None), (2, 0, None)],
         {b"a": (2, 2, 1, b"v", 0)}),
    Case("an empty txn takes no revision", [txn()], [(1, 0, None)], {}),
    Case("a nested txn's writes share the outer revision",
         [txn(success=[put(b"a"), txn(success=[put(b"b")])])], [(2, 2, None)],
         {b"a": (2, 2, 1, b"v", 0), b"b": (2, 2, 1, b"v", 0)}),
    Case("a nested txn's compare sees the state before the txn (etcd's compareToPath)",
         [txn(success=[put(b"a"), txn([version_is(b"a", 0)], [put(b"pre")], [put(b"post")])])],
         [(2, 2, None)], {b"a": (2, 2, 1, b"v", 0), b"pre": (2, 2, 1, b"v", 0)}),
    Case("compaction takes no revision",
         [put(b"a"), compact(2)], [(2, 1, None), (2, 0, None)], {b"a": (2, 2, 1, b"v", 0)}),
]

LEASE_CASES = [
    Case("grant takes no revision; a put under the lease attaches the key",
         [grant(1), put(b"a", lease=1)], [(1, 0, None), (2, 1, None)],
         {b"a": (2, 2, 1, b"v", 1)}, {1: frozenset({b"a"})}),
    Case("granting an existing lease: LEASE_EXISTS",
         [grant(1), grant(1)], [(1, 0, None), (1, 0, err.LEASE_EXISTS)], {}, {1: NONE}),
    Case("granting a TTL over the maximum: LEASE_TTL_TOO_LARGE",
         [grant(1, MAX_LEASE_TTL + 1)], [(1, 0, err.LEASE_TTL_TOO_LARGE)], {}, {}),
    Case("re-putting a key under another lease moves it",
         [grant(1), grant(2), put(b"a", lease=1), put(b"a", lease=2)],
         [(1, 0, None), (1, 0, None), (2, 1, None), (3, 1, None)],
         {b"a": (2, 3, 2, b"v", 2)}, {1: NONE, 2: frozenset({b"a"})}),
    Case("re-putting a key without a lease detaches it",
         [grant(1), put(b"a", lease=1), put(b"a")], [(1, 0, None), (2, 1, None), (3, 1, None)],
         {b"a": (2, 3, 2, b"v", 0)}, {1: NONE}),
    Case("put with ignore_lease keeps the key's lease",
         [grant(1), put(b"a", lease=1), put(b"a", b"2", ignore_lease=True)],
         [(1, 0, None), (2, 1, None), (3, 1, None)],
         {b"a": (2, 3, 2, b"2", 1)}, {1: frozenset({b"a"})}),
    Case("deleting a key detaches it from its lease",
         [grant(1), put(b"a", lease=1), delete(b"a")],
         [(1, 0, None), (2, 1, None), (3, 1, None)], {}, {1: NONE}),
    Case("revoke deletes every attached key at one revision, and only those",
         [grant(1), put(b"a", lease=1), put(b"b", lease=1), put(b"c"), revoke(1)],
         [(1, 0, None), (2, 1, None), (3, 1, None), (4, 1, None), (5, 2, None)],
         {b"c": (4, 4, 1, b"v", 0)}, {}),
    Case("revoke spares a key that moved to another lease",
         [grant(1), grant(2), put(b"a", lease=1), put(b"a", lease=2), revoke(1)],
         [(1, 0, None), (1, 0, None), (2, 1, None), (3, 1, None), (3, 0, None)],
         {b"a": (2, 3, 2, b"v", 2)}, {2: frozenset({b"a"})}),
    Case("revoking a lease without keys takes no revision",
         [grant(1), revoke(1)], [(1, 0, None), (1, 0, None)], {}, {}),
    Case("revoking an unknown lease: LEASE_NOT_FOUND",
         [put(b"a"), revoke(9)], [(2, 1, None), (2, 0, err.LEASE_NOT_FOUND)],
         {b"a": (2, 2, 1, b"v", 0)}, {}),
    Case("revoking twice: the second is LEASE_NOT_FOUND",
         [grant(1), put(b"a", lease=1), revoke(1), revoke(1)],
         [(1, 0, None), (2, 1, None), (3, 1, None), (3, 0, err.LEASE_NOT_FOUND)], {}, {}),
    Case("expiry deletes attached keys like revoke",
         [grant(1), put(b"a", lease=1), Expire(1)], [(1, 0, None), (2, 1, None), (3, 1, None)],
         {}, {}),
    Case("expiry of an unknown (already revoked) lease is a no-op, not an error",
         [grant(1), put(b"a", lease=1), revoke(1), Expire(1)],
         [(1, 0, None), (2, 1, None), (3, 1, None), (3, 0, None)], {}, {}),
    Case("a put under a revoked lease: LEASE_NOT_FOUND",
         [grant(1), revoke(1), put(b"a", lease=1)],
         [(1, 0, None), (1, 0, None), (1, 0, err.LEASE_NOT_FOUND)], {}, {}),
    Case("a txn can attach keys to a lease",
         [grant(1), txn(success=[put(b"a", lease=1), put(b"b", lease=1)])],
         [(1, 0, None), (2, 2, None)],
         {b"a": (2, 2, 1, b"v", 1), b"b": (2, 2, 1, b"v", 1)}, {1: frozenset({b"a", b"b"})}),
]


@pytest.mark.parametrize("case", REVISION_CASES + LEASE_CASES, ids=lambda c: c.name)
def test_apply_semantics(case: Case) -> None:
    store = MVCCStore()
    assert store.revision == 1
    got = [outcome(a) for a in apply_all(store, case.commands)]
    assert got == case.outcomes
    assert current(store) == case.keys
    assert lease_sets(store) == case.leases
    assert store.revision == (case.outcomes[-1][0] if case.outcomes else 1)


def test_result_header_carries_the_revision_after_the_command() -> None:
    store = MVCCStore()
    apply(store, put(b"a"))
    assert apply(store, put(b"b")).result.header.revision == 3  # type: ignore[attr-defined]
    assert apply(store, delete(b"nothing")).result.header.revision == 3  # type: ignore[attr-defined]


def test_a_command_returns_changes_with_the_records_they_replaced() -> None:
    store = MVCCStore()
    apply_all(store, [put(b"a", b"1"), put(b"b", b"1")])
    a = apply(store, txn(success=[put(b"a", b"2"), delete(b"b"), put(b"c", b"1")]))
    assert [(c.rec.as_tuple(), c.prev.as_tuple() if c.prev else None) for c in a.changes] == [
        ((b"a", 2, 4, 2, b"2", 0), (b"a", 2, 2, 1, b"1", 0)),
        ((b"b", 0, 4, 0, b"", 0), (b"b", 3, 3, 1, b"1", 0)),
        ((b"c", 4, 4, 1, b"1", 0), None),
    ]


def test_reads_inside_a_txn_see_the_txns_earlier_writes() -> None:
    store = MVCCStore()
    apply(store, put(b"a", b"old"))
    a = apply(store, txn(success=[rng(b"a"), put(b"b", b"new"), rng(b"b"), delete(b"a"),
                                  rng(b"a"), delete(b"a")]))
    r = a.result.responses  # type: ignore[attr-defined]
    assert [kv_tuple(kv) for kv in r[0].response_range.kvs] == [(b"a", 2, 2, 1, b"old", 0)]
    assert [kv_tuple(kv) for kv in r[2].response_range.kvs] == [(b"b", 3, 3, 1, b"new", 0)]
    assert list(r[4].response_range.kvs) == []
    assert r[5].response_delete_range.deleted == 0  # the second delete finds nothing
    assert (a.revision, len(a.changes)) == (3, 2)


# ---------------------------------------------------------------- failed txn: exact rollback
def full_view(store: MVCCStore) -> dict[str, Any]:
    """Everything a client or watcher could see, at every retained revision, plus the
    internal change list and key index (rollback must restore those too)."""
    first = max(store.compact_revision, 1)
    return {
        "revision": store.revision,
        "compact": store.compact_revision,
        "history": {r: read(store, *ALL, rev=r) for r in range(first, store.revision + 1)},
        "leases": {lid: (lease.ttl, frozenset(lease.keys)) for lid, lease in store.leases.items()},
        "changes": changes(store, first),
        "records": store.record_count(),
    }


ROLLBACK_SETUP: list[Message] = [
    grant(1), grant(2),
    put(b"k1", b"1"), put(b"k2", b"1", lease=1), put(b"k3", b"1", lease=2), put(b"k4", b"1"),
    delete(b"k4"), compact(3),
]
BAD_PUT = put(b"bad", lease=99)  # an unknown lease: LEASE_NOT_FOUND

ROLLBACK_CASES = [
    ("a new key put, then a failing put", txn(success=[put(b"new"), BAD_PUT]),
     err.LEASE_NOT_FOUND),
    ("an existing key overwritten, then a failing put",
     txn(success=[put(b"k1", b"2"), BAD_PUT]), err.LEASE_NOT_FOUND),
    ("a deleted key re-created, then a failing put",
     txn(success=[put(b"k4", b"2"), BAD_PUT]), err.LEASE_NOT_FOUND),
    ("a key moved from lease 1 to lease 2, then a failing put",
     txn(success=[put(b"k2", lease=2), BAD_PUT]), err.LEASE_NOT_FOUND),
    ("a key detached from its lease, then a failing put",
     txn(success=[put(b"k3"), BAD_PUT]), err.LEASE_NOT_FOUND),
    ("an unleased key attached to a lease, then a failing put",
     txn(success=[put(b"k1", lease=1), BAD_PUT]), err.LEASE_NOT_FOUND),
    ("leased keys deleted by range, then a failing put",
     txn(success=[delete(b"k", b"l"), BAD_PUT]), err.LEASE_NOT_FOUND),
    ("the failure is in the failure branch",
     txn([version_is(b"k1", 9)], [put(b"s")], [put(b"f"), delete(b"k2"), BAD_PUT]),
     err.LEASE_NOT_FOUND),
    ("the failure is in a nested txn",
     txn(success=[put(b"new"), delete(b"k3"), txn(success=[put(b"n2", lease=1), BAD_PUT])]),
     err.LEASE_NOT_FOUND),
    ("writes, then ignore_value on a missing key",
     txn(success=[put(b"new"), put(b"missing", b"", ignore_value=True)]), err.KEY_NOT_FOUND),
    ("writes, then ignore_lease on a missing key",
     txn(success=[delete(b"k2"), put(b"missing", b"x", ignore_lease=True)]), err.KEY_NOT_FOUND),
    ("writes, then a read at a future revision",
     txn(success=[put(b"k1", b"2"), rng(b"k1", revision=99)]), err.FUTURE_REV),
    ("writes, then a read at a compacted revision",
     txn(success=[put(b"k2", b"2", lease=2), rng(b"k1", revision=2)]), err.COMPACTED),
]


@pytest.mark.parametrize(("name", "bad_txn", "error"), ROLLBACK_CASES,
                         ids=[c[0] for c in ROLLBACK_CASES])
def test_failed_txn_changes_nothing_at_all(name: str, bad_txn: rpc_pb2.TxnRequest,
                                           error: err.StoreError) -> None:
    store = MVCCStore()
    assert all(not isinstance(a.result, err.StoreError)
               for a in apply_all(store, ROLLBACK_SETUP))
    before = full_view(store)
    a = apply(store, bad_txn)
    assert (a.result, a.revision, a.changes) == (error, before["revision"], [])
    assert full_view(store) == before
    # the next write takes the very next revision: the failed txn left no hole
    assert apply(store, put(b"after")).revision == before["revision"] + 1


# ---------------------------------------------------------------- compaction
# revision: 2 put a=a1 | 3 put b=b1 | 4 put a=a2 | 5 delete b | 6 put c=c1 | 7 put a=a3
HISTORY: list[Message] = [put(b"a", b"a1"), put(b"b", b"b1"), put(b"a", b"a2"),
                          delete(b"b"), put(b"c", b"c1"), put(b"a", b"a3")]
A2, A3, C1 = (b"a", 2, 4, 2, b"a2", 0), (b"a", 2, 7, 3, b"a3", 0), (b"c", 6, 6, 1, b"c1", 0)
B1 = (b"b", 3, 3, 1, b"b1", 0)

COMPACTED_READS = [
    # (compact at, read at, expected records or error)
    (5, 5, [A2]),  # the compact revision itself stays readable
    (5, 6, [A2, C1]),
    (5, 7, [A3, C1]),
    (5, 0, [A3, C1]),  # 0: now
    (5, 4, err.COMPACTED),
    (5, 1, err.COMPACTED),
    (5, 8, err.FUTURE_REV),
    (4, 4, [A2, B1]),  # b's last live record <= 4 is kept
    (4, 3, err.COMPACTED),
    (3, 3, [(b"a", 2, 2, 1, b"a1", 0), B1]),
    (7, 7, [A3, C1]),
    (7, 6, err.COMPACTED),
    (2, 2, [(b"a", 2, 2, 1, b"a1", 0)]),
]


@pytest.mark.parametrize(("at", "read_rev", "expected"), COMPACTED_READS)
def test_reads_after_compaction(at: int, read_rev: int,
                                expected: list[KVTuple] | err.StoreError) -> None:
    store = MVCCStore()
    apply_all(store, HISTORY)
    assert outcome(apply(store, compact(at))) == (7, 0, None)
    assert store.compact_revision == at
    assert read(store, *ALL, rev=read_rev) == expected


COMPACT_REQUESTS = [
    # (earlier compactions, requested revision, error or None)
    ([], 7, None),  # the current revision may be compacted
    ([], 8, err.FUTURE_REV),
    ([], 1, None),
    ([5], 5, err.COMPACTED),  # again at the same revision
    ([5], 4, err.COMPACTED),
    ([5], 6, None),
    ([7], 8, err.FUTURE_REV),
]


@pytest.mark.parametrize(("earlier", "rev", "error"), COMPACT_REQUESTS)
def test_compact_request(earlier: list[int], rev: int, error: err.StoreError | None) -> None:
    store = MVCCStore()
    apply_all(store, [*HISTORY, *(compact(r) for r in earlier)])
    before = store.compact_revision
    assert outcome(apply(store, compact(rev))) == (7, 0, error)
    assert store.compact_revision == (before if error else rev)


COMPACTED_RECORDS = [
    # (compact at, keys left): a key whose latest record <= rev is a tombstone goes
    (2, 3),
    (4, 3),
    (5, 2),  # b was deleted at 5: b goes
    (7, 2),
]


@pytest.mark.parametrize(("at", "keys_left"), COMPACTED_RECORDS)
def test_compaction_forgets_whole_dead_keys(at: int, keys_left: int) -> None:
    store = MVCCStore()
    apply_all(store, [*HISTORY, compact(at)])
    assert store.record_count() == keys_left


CHANGES_AFTER_COMPACTION = [
    # (compact at, start, expected changes as (rec, prev)), next revision)
    (5, 5, [((b"b", 0, 5, 0, b"", 0), None),  # its prev (rev 3 < 5) is compacted away
            (C1, None), (A3, A2)], 8),
    (5, 6, [(C1, None), (A3, A2)], 8),
    (5, 7, [(A3, A2)], 8),
    (5, 8, [], 8),
    (4, 4, [(A2, None), ((b"b", 0, 5, 0, b"", 0), B1), (C1, None), (A3, A2)], 8),
    (7, 7, [(A3, None)], 8),
]


@pytest.mark.parametrize(("at", "start", "expected", "nxt"), CHANGES_AFTER_COMPACTION)
def test_changes_since_after_compaction(at: int, start: int, expected: list[Any],
                                        nxt: int) -> None:
    """etcd serves prev_kv by reading at mod-1; at the compact revision that read is
    compacted, so a change at exactly the compact revision carries no prev."""
    store = MVCCStore()
    apply_all(store, [*HISTORY, compact(at)])
    assert changes(store, start) == (expected, nxt)
    restored = MVCCStore()
    restored.restore_state(store.snapshot_bytes())
    assert changes(restored, start) == (expected, nxt)


CHANGES_LIMITS = [
    # (start, limit, revisions returned, next): whole revisions only
    (2, 1, [2], 3),
    (2, 2, [2, 3, 3, 3], 4),  # the txn at 3 is never split
    (3, 1, [3, 3, 3], 4),
    (2, 4, [2, 3, 3, 3], 4),
    (2, 5, [2, 3, 3, 3, 4], 5),  # all of them: next is revision + 1
    (4, 1, [4], 5),
    (5, 1, [], 5),
]


@pytest.mark.parametrize(("start", "limit", "revs", "nxt"), CHANGES_LIMITS)
def test_changes_since_returns_whole_revisions(start: int, limit: int, revs: list[int],
                                               nxt: int) -> None:
    store = MVCCStore()
    apply_all(store, [put(b"a"), txn(success=[put(b"b"), put(b"c"), put(b"d")]), put(b"e")])
    chs, got_next = store.changes_since(start, limit)
    assert ([c.rec.mod for c in chs], got_next) == (revs, nxt)


# ==================================================================== part 2: the model
@dataclass(frozen=True)
class KV:
    create: int
    mod: int
    version: int
    value: bytes
    lease: int


State = dict[bytes, KV]


def keys_in(state: State, key: bytes, end: bytes) -> list[bytes]:
    """etcd's [key, range_end): empty end is the one key, \\0 is every key >= key."""
    if not end:
        return [key] if key in state else []
    return sorted(k for k in state if k >= key and (end == b"\0" or k < end))


def as_tuple(key: bytes, kv: KV) -> KVTuple:
    return (key, kv.create, kv.mod, kv.version, kv.value, kv.lease)


Norm = Any  # a normalized response: nested tuples, or a StoreError


class Model:
    """The obviously-correct reference: the current dict, a full copy of it for every
    retained revision, the change log, and lease ids. No indexes, no shared records."""

    def __init__(self) -> None:
        self.rev = 1
        self.compact = 0
        self.cur: State = {}
        self.states: dict[int, State] = {1: {}}
        self.leases: dict[int, int] = {}  # id -> ttl
        self.log: list[tuple[int, bytes, KV | None]] = []  # (mod, key, new or deleted)

    # -- reads
    def range(self, key: bytes, end: bytes, rev: int = 0) -> list[KVTuple] | err.StoreError:
        if rev > self.rev:
            return err.FUTURE_REV
        if 0 < rev < self.compact:
            return err.COMPACTED
        state = self.states[rev or self.rev]
        return [as_tuple(k, state[k]) for k in keys_in(state, key, end)]

    def lease_sets(self) -> dict[int, tuple[int, frozenset[bytes]]]:
        return {lid: (ttl, frozenset(k for k, v in self.cur.items() if v.lease == lid))
                for lid, ttl in self.leases.items()}

    def change(self, mod: int, key: bytes, new: KV | None) -> tuple[KVTuple, KVTuple | None]:
        rec = as_tuple(key, new) if new else (key, 0, mod, 0, b"", 0)
        # etcd reads prev_kv at mod-1, which is gone once compacted
        prev = self.states[mod - 1].get(key) if mod - 1 >= self.compact else None
        return rec, as_tuple(key, prev) if prev else None

    def changes_since(self, start: int, limit: int) -> tuple[list[Any], int]:
        log = [c for c in self.log if c[0] >= start]
        nxt = self.rev + 1
        if len(log) > limit:
            last = log[limit - 1][0]
            if any(c[0] > last for c in log):
                nxt = last + 1
            log = [c for c in log if c[0] <= last]
        return [self.change(*c) for c in log], nxt

    # -- commands
    def apply(self, op: Op, msg: Any) -> tuple[Norm, int, list[Any]]:
        """(normalized result, revision after, changes) as the store must answer."""
        before = len(self.log)
        try:
            result = getattr(self, f"_{op.name.lower()}")(msg)
        except err.StoreError as e:
            return e, self.rev, []
        return result, self.rev, [self.change(*c) for c in self.log[before:]]

    def _write(self, body: Callable[[State, int, list[bytes]], Norm]) -> Norm:
        work, written = dict(self.cur), []
        result = body(work, self.rev + 1, written)  # raises: nothing was touched
        if written:
            self.rev += 1
            self.cur = work
            self.states[self.rev] = dict(work)
            self.log += [(self.rev, k, work.get(k)) for k in written]
        return result

    def _put(self, msg: rpc_pb2.PutRequest) -> Norm:
        return self._write(lambda w, rev, written: self._do_put(msg, w, rev, written))

    def _delete_range(self, msg: rpc_pb2.DeleteRangeRequest) -> Norm:
        return self._write(lambda w, rev, written: self._do_delete(msg, w, written))

    def _txn(self, msg: rpc_pb2.TxnRequest) -> Norm:
        return self._write(lambda w, rev, written: self._do_txn(msg, w, rev, written))

    def _do_put(self, p: rpc_pb2.PutRequest, w: State, rev: int, written: list[bytes]) -> Norm:
        old = w.get(p.key)
        if (p.ignore_value or p.ignore_lease) and old is None:
            raise err.KEY_NOT_FOUND
        value = old.value if p.ignore_value and old else p.value
        lease = old.lease if p.ignore_lease and old else p.lease
        if lease and lease not in self.leases:
            raise err.LEASE_NOT_FOUND
        w[p.key] = KV(old.create if old else rev, rev, old.version + 1 if old else 1,
                      value, lease)
        written.append(p.key)
        return ("put", as_tuple(p.key, old) if p.prev_kv and old else None)

    def _do_delete(self, d: rpc_pb2.DeleteRangeRequest, w: State, written: list[bytes]) -> Norm:
        victims = keys_in(w, d.key, d.range_end)
        prevs = [as_tuple(k, w.pop(k)) for k in victims]
        written += victims
        return ("delete", len(victims), prevs if d.prev_kv else [])

    def _do_range(self, r: rpc_pb2.RangeRequest, w: State) -> Norm:
        if r.revision:
            got = self.range(r.key, r.range_end, r.revision)
            if isinstance(got, err.StoreError):
                raise got
        else:
            got = [as_tuple(k, w[k]) for k in keys_in(w, r.key, r.range_end)]
        return ("range", len(got), got)

    def _holds(self, c: rpc_pb2.Compare) -> bool:
        keys = keys_in(self.cur, c.key, c.range_end)  # the state before the txn
        if not keys and c.target == CMP.VALUE:
            return False
        kvs = [self.cur[k] for k in keys] or [KV(0, 0, 0, b"", 0)]
        for kv in kvs:
            mine, theirs = {
                CMP.VERSION: (kv.version, c.version), CMP.CREATE: (kv.create, c.create_revision),
                CMP.MOD: (kv.mod, c.mod_revision), CMP.VALUE: (kv.value, c.value),
                CMP.LEASE: (kv.lease, c.lease)}[c.target]
            ok = {CMP.EQUAL: mine == theirs, CMP.NOT_EQUAL: mine != theirs,
                  CMP.GREATER: mine > theirs, CMP.LESS: mine < theirs}[c.result]
            if not ok:
                return False
        return True

    def _do_txn(self, t: rpc_pb2.TxnRequest, w: State, rev: int, written: list[bytes]) -> Norm:
        ok = all(self._holds(c) for c in t.compare)
        out = []
        for op in t.success if ok else t.failure:
            kind = op.WhichOneof("request")
            if kind == "request_put":
                out.append(self._do_put(op.request_put, w, rev, written))
            elif kind == "request_delete_range":
                out.append(self._do_delete(op.request_delete_range, w, written))
            elif kind == "request_range":
                out.append(self._do_range(op.request_range, w))
            else:
                out.append(self._do_txn(op.request_txn, w, rev, written))
        return ("txn", ok, tuple(out))

    def _compact(self, c: rpc_pb2.CompactionRequest) -> Norm:
        if c.revision > self.rev:
            raise err.FUTURE_REV
        if c.revision <= self.compact:
            raise err.COMPACTED
        self.compact = c.revision
        self.states = {r: s for r, s in self.states.items() if r >= c.revision}
        self.log = [x for x in self.log if x[0] >= c.revision]
        return ("compact",)

    def _lease_grant(self, g: rpc_pb2.LeaseGrantRequest) -> Norm:
        if g.ID in self.leases:
            raise err.LEASE_EXISTS
        if g.TTL > MAX_LEASE_TTL:
            raise err.LEASE_TTL_TOO_LARGE
        self.leases[g.ID] = g.TTL
        return ("grant", g.ID, g.TTL)

    def _lease_revoke(self, r: rpc_pb2.LeaseRevokeRequest) -> Norm:
        if r.ID not in self.leases:
            raise err.LEASE_NOT_FOUND
        return self._lease_expire(r)

    def _lease_expire(self, r: rpc_pb2.LeaseRevokeRequest) -> Norm:
        if r.ID not in self.leases:
            return ("revoke",)

        def body(w: State, rev: int, written: list[bytes]) -> Norm:
            doomed = sorted(k for k, v in w.items() if v.lease == r.ID)
            for k in doomed:
                del w[k]
            written += doomed
            return ("revoke",)

        result = self._write(body)
        del self.leases[r.ID]
        return result


def normalize(result: object) -> Norm:
    """A store response as the model's plain tuples."""
    if isinstance(result, err.StoreError):
        return result
    if isinstance(result, rpc_pb2.PutResponse):
        return ("put", kv_tuple(result.prev_kv) if result.HasField("prev_kv") else None)
    if isinstance(result, rpc_pb2.DeleteRangeResponse):
        return ("delete", result.deleted, [kv_tuple(kv) for kv in result.prev_kvs])
    if isinstance(result, rpc_pb2.RangeResponse):
        return ("range", result.count, [kv_tuple(kv) for kv in result.kvs])
    if isinstance(result, rpc_pb2.TxnResponse):
        return ("txn", result.succeeded, tuple(
            normalize(getattr(r, r.WhichOneof("response"))) for r in result.responses))
    if isinstance(result, rpc_pb2.CompactionResponse):
        return ("compact",)
    if isinstance(result, rpc_pb2.LeaseGrantResponse):
        return ("grant", result.ID, result.TTL)
    if isinstance(result, rpc_pb2.LeaseRevokeResponse):
        return ("revoke",)
    raise AssertionError(f"unexpected result {result!r}")


def store_outcome(a: Applied) -> tuple[Norm, int, list[Any]]:
    return (normalize(a.result), a.revision,
            [(c.rec.as_tuple(), c.prev.as_tuple() if c.prev else None) for c in a.changes])


class StoreView:
    """The store behind the model's read interface."""

    def __init__(self, store: MVCCStore) -> None:
        self.store = store

    @property
    def rev(self) -> int:
        return self.store.revision

    @property
    def compact(self) -> int:
        return self.store.compact_revision

    def range(self, key: bytes, end: bytes, rev: int = 0) -> list[KVTuple] | err.StoreError:
        return read(self.store, key, end, rev)

    def lease_sets(self) -> dict[int, tuple[int, frozenset[bytes]]]:
        return {lid: (lease.ttl, frozenset(lease.keys))
                for lid, lease in self.store.leases.items()}

    def changes_since(self, start: int, limit: int) -> tuple[list[Any], int]:
        return changes(self.store, start, limit)


View = Model | StoreView
KEYS = [b"a", b"b", b"c", b"d"]
RANGES = [ALL, (b"a", b"c"), (b"b", b"\0"), *((k, b"") for k in KEYS)]


def view_now(v: View, probe: int) -> dict[str, Any]:
    """Now, and at one retained revision chosen by ``probe``."""
    first = max(v.compact, 1)
    at = first + probe % (v.rev - first + 1)
    return {"rev": v.rev, "compact": v.compact, "leases": v.lease_sets(),
            "now": [v.range(k, e) for k, e in RANGES], "at": (at, v.range(*ALL, rev=at))}


def view_all(v: View) -> dict[str, Any]:
    """Every range at every retained revision, and every changes_since answer."""
    first = max(v.compact, 1)
    return {
        "rev": v.rev, "compact": v.compact, "leases": v.lease_sets(),
        "ranges": {(r, k, e): v.range(k, e, r) for r in range(first, v.rev + 1)
                   for k, e in RANGES},
        "below": v.range(*ALL, rev=first - 1) if first > 1 else None,
        "future": v.range(*ALL, rev=v.rev + 1),
        "changes": {(s, n): v.changes_since(s, n)
                    for s in range(first, v.rev + 2) for n in (1, 2, 10_000)},
    }


# -- random commands: plain frozen data, built into requests at the current revision
@dataclass(frozen=True)
class PutCmd:
    key: bytes
    value: bytes
    lease: int
    ignore_value: bool
    ignore_lease: bool
    prev_kv: bool


@dataclass(frozen=True)
class DeleteCmd:
    key: bytes
    end: bytes
    prev_kv: bool


@dataclass(frozen=True)
class RangeCmd:
    key: bytes
    end: bytes
    back: int | None  # read at revision - back (-1: the future); None: now


@dataclass(frozen=True)
class CompareCmd:
    key: bytes
    end: bytes
    target: int
    result: int
    operand: int
    value: bytes


@dataclass(frozen=True)
class TxnCmd:
    compare: tuple[CompareCmd, ...]
    success: tuple[Any, ...]
    failure: tuple[Any, ...]


@dataclass(frozen=True)
class CompactCmd:
    back: int  # compact at revision - back


@dataclass(frozen=True)
class LeaseCmd:
    op: Op  # LEASE_GRANT, LEASE_REVOKE or LEASE_EXPIRE
    lease_id: int
    ttl: int


@dataclass(frozen=True)
class SnapshotCmd:
    """Restore the twin from a snapshot of the store (or of the twin itself)."""

    of_twin: bool


ENDS = [b"", b"", b"\0", *KEYS]
LEASES = [0, 0, 0, 1, 1, 2, 3]  # lease 3 is never granted
keys = st.sampled_from(KEYS)
ends = st.sampled_from(ENDS)


@st.composite
def put_cmds(draw: st.DrawFn) -> PutCmd:
    ignore_value = draw(st.integers(0, 7)) == 0
    ignore_lease = draw(st.integers(0, 7)) == 0
    return PutCmd(draw(keys), b"" if ignore_value else draw(st.sampled_from([b"x", b"y"])),
                  0 if ignore_lease else draw(st.sampled_from(LEASES)),
                  ignore_value, ignore_lease, draw(st.booleans()))


delete_cmds = st.builds(DeleteCmd, keys, ends, st.booleans())
range_cmds = st.builds(RangeCmd, keys, ends, st.one_of(st.none(), st.integers(-1, 6)))
compare_cmds = st.builds(
    CompareCmd, keys, st.sampled_from([b"", b"", b"\0"]),
    st.sampled_from(list(CMP.CompareTarget.values())),
    st.sampled_from(list(CMP.CompareResult.values())),
    st.integers(0, 6), st.sampled_from([b"", b"x", b"y"]))


def txn_cmds(depth: int) -> st.SearchStrategy[TxnCmd]:
    ops = st.one_of(put_cmds(), delete_cmds, range_cmds,
                    *([txn_cmds(depth - 1)] if depth else []))
    branch = st.lists(ops, max_size=3).map(tuple)
    return st.builds(TxnCmd, st.lists(compare_cmds, max_size=2).map(tuple), branch, branch)


lease_cmds = st.builds(
    LeaseCmd, st.sampled_from([Op.LEASE_GRANT, Op.LEASE_REVOKE, Op.LEASE_EXPIRE]),
    st.sampled_from([1, 1, 2]),
    st.sampled_from([5, 60, 60, 60, 600, 600, 600, MAX_LEASE_TTL + 1]))
single_cmds = st.one_of(put_cmds(), put_cmds(), put_cmds(), delete_cmds,
                        txn_cmds(1), txn_cmds(1), txn_cmds(1),
                        st.builds(CompactCmd, st.integers(-1, 3)), lease_cmds, lease_cmds)
commands = st.one_of(single_cmds, single_cmds, single_cmds,
                     st.builds(SnapshotCmd, st.booleans()))


def build(cmd: Any, rev: int) -> tuple[Op, Message] | None:
    """The command for ``cmd`` at revision ``rev``; None if the API layer would refuse it
    (the state machine only ever sees requests that passed ``_kv``'s checks)."""
    msg = request(cmd, rev)
    try:
        if isinstance(msg, rpc_pb2.PutRequest):
            check_put(msg)
        elif isinstance(msg, rpc_pb2.TxnRequest):
            check_txn(msg)
    except err.StoreError:
        return None
    return (cmd.op if isinstance(cmd, LeaseCmd) else _OPS[type(msg)]), msg


def request(cmd: Any, rev: int) -> Message:
    """The etcd request ``cmd`` describes; revisions are relative to ``rev``."""
    if isinstance(cmd, PutCmd):
        return put(cmd.key, cmd.value, cmd.lease, ignore_value=cmd.ignore_value,
                   ignore_lease=cmd.ignore_lease, prev_kv=cmd.prev_kv)
    if isinstance(cmd, DeleteCmd):
        return delete(cmd.key, cmd.end, prev_kv=cmd.prev_kv)
    if isinstance(cmd, RangeCmd):
        return rng(cmd.key, cmd.end, 0 if cmd.back is None else max(rev - cmd.back, 1))
    if isinstance(cmd, TxnCmd):
        return rpc_pb2.TxnRequest(
            compare=[compare_request(c) for c in cmd.compare],
            success=[request_op(request(o, rev)) for o in cmd.success],
            failure=[request_op(request(o, rev)) for o in cmd.failure])
    if isinstance(cmd, CompactCmd):
        return compact(max(rev - cmd.back, 0))
    if isinstance(cmd, LeaseCmd):
        return grant(cmd.lease_id, cmd.ttl) if cmd.op == Op.LEASE_GRANT else revoke(cmd.lease_id)
    raise AssertionError(cmd)


def compare_request(c: CompareCmd) -> rpc_pb2.Compare:
    operand = {CMP.VERSION: {"version": c.operand}, CMP.CREATE: {"create_revision": c.operand},
               CMP.MOD: {"mod_revision": c.operand}, CMP.VALUE: {"value": c.value},
               CMP.LEASE: {"lease": c.operand % 4}}[c.target]
    return rpc_pb2.Compare(key=c.key, range_end=c.end, target=c.target, result=c.result,
                           **operand)


def snapshot_copy(store: MVCCStore) -> MVCCStore:
    fresh = MVCCStore()
    fresh.restore_state(store.snapshot_bytes())
    return fresh


def step(store: MVCCStore, model: Model, twin: MVCCStore | None, cmd: Any) -> None:
    """Apply ``cmd`` to all three and demand identical answers."""
    one = build(cmd, model.rev)
    if one is None:
        return
    raw = encode(*one)
    want = model.apply(*one)
    for s in (store, twin) if twin is not None else (store,):
        assert store_outcome(s.apply(raw)) == want, cmd


def _put(key: bytes, lease: int = 0) -> PutCmd:
    return PutCmd(key, b"x", lease, False, False, False)


@settings(max_examples=250, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(commands, st.integers(0, 1000)), max_size=30))
# rare at random: a failed txn that had moved a leased key must put it back in its lease
@example([(_put(b"a", 1), 0), (TxnCmd((), (_put(b"a", 2), _put(b"b", 3)), ()), 0)])
# a change at exactly the compact revision, then a snapshot (its prev is gone in both)
@example([(_put(b"a"), 0), (_put(b"a"), 0), (CompactCmd(0), 0), (SnapshotCmd(False), 0)])
def test_store_matches_the_model_and_survives_snapshots(steps: list[tuple[Any, int]]) -> None:
    """After every command: same answers, same reads now and at one retained revision.
    After a snapshot (encoded, restored into a fresh store), the twin must answer every
    read and changes_since exactly like the model, and keep doing so command by command."""
    store, model = MVCCStore(), Model()
    twin: MVCCStore | None = None
    start = [(LeaseCmd(Op.LEASE_GRANT, 1, 60), 0), (LeaseCmd(Op.LEASE_GRANT, 2, 600), 0)]
    for cmd, probe in start + steps:
        if isinstance(cmd, SnapshotCmd):
            twin = snapshot_copy(twin if cmd.of_twin and twin is not None else store)
            assert view_all(StoreView(twin)) == view_all(model)
            continue
        step(store, model, twin, cmd)
        assert view_now(StoreView(store), probe) == view_now(model, probe), cmd
        if twin is not None:
            assert view_now(StoreView(twin), probe) == view_now(model, probe), cmd
    assert view_all(StoreView(store)) == view_all(model)
    if twin is not None:
        assert view_all(StoreView(twin)) == view_all(model)
    assert view_all(StoreView(snapshot_copy(store))) == view_all(model)


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(single_cmds, max_size=20), st.lists(single_cmds, max_size=20),
       st.integers(1, 3))
# a compaction while the snapshot is encoded must not take records out of it (b@3,
# kept by the first compaction, is dropped by the second before its part is encoded)
@example([_put(b"a"), _put(b"b"), _put(b"c"), CompactCmd(0)], [_put(b"b"), CompactCmd(0)], 1)
def test_a_snapshot_encoded_while_writes_go_on_holds_the_state_it_captured(
        before: list[Any], during: list[Any], per_part: int) -> None:
    """The node encodes a snapshot a part at a time between applies: what it restores
    is exactly the state when the parts were asked for, whatever was applied since."""
    store, model = MVCCStore(), Model()
    for cmd in [LeaseCmd(Op.LEASE_GRANT, 1, 60), LeaseCmd(Op.LEASE_GRANT, 2, 600), *before]:
        step(store, model, None, cmd)
    captured = view_all(StoreView(store))
    parts = store.snapshot_parts(records_per_part=per_part)
    encoded = [next(parts)]
    for cmd in during:
        step(store, model, None, cmd)
        encoded.extend(itertools.islice(parts, 1))
    encoded.extend(parts)
    restored = MVCCStore()
    restored.restore_state(b"".join(encoded))
    assert view_all(StoreView(restored)) == captured
    assert view_all(StoreView(store)) == view_all(model)


def test_a_snapshot_cut_short_or_of_an_unknown_format_does_not_restore() -> None:
    store = MVCCStore()
    apply_all(store, HISTORY)
    data = store.snapshot_bytes()
    for bad, why in [(data[:-3], "cut short"),
                     (msgpack.packb((9, 1, 0, 0, [], [])), "format 9 is not 2"),
                     (data + msgpack.packb((0, [])), "after its end")]:
        with pytest.raises(ValueError, match=why):
            MVCCStore().restore_state(bad)


def test_a_snapshot_of_the_first_format_still_restores() -> None:
    """Format 1 was one tuple: (1, revision, compact, cluster id, base records older
    than the compact revision, change records, leases, members)."""
    store = MVCCStore()
    apply_all(store, [*HISTORY, compact(5)])
    base = [r.as_tuple() for h in store._hist.values() for r in h if r.mod < 5]
    changes = [c.rec.as_tuple() for c in store._changes]
    old = msgpack.packb((1, store.revision, 5, store.cluster_id, base, changes, [], []),
                        use_bin_type=True)
    restored = MVCCStore()
    restored.restore_state(old)
    assert view_all(StoreView(restored)) == view_all(StoreView(store))


# ==================================================================== part 3: the codec
SAMPLES: list[tuple[Op, Message]] = [
    (Op.PUT, put(b"k", b"v", 5, prev_kv=True)),
    (Op.PUT, rpc_pb2.PutRequest()),  # an empty payload
    (Op.DELETE_RANGE, delete(b"a", b"\0", prev_kv=True)),
    (Op.TXN, txn([version_is(b"a", 3)], [put(b"a"), rng(b"b")], [delete(b"c")])),
    (Op.COMPACT, compact(12)),
    (Op.LEASE_GRANT, grant(7, 30)),
    (Op.LEASE_REVOKE, revoke(7)),
    (Op.LEASE_EXPIRE, revoke(7)),
    (Op.LEASE_RENEW, rpc_pb2.LeaseKeepAliveRequest(ID=7)),
    (Op.BARRIER, rpc_pb2.StatusRequest()),
    (Op.MEMBER_PUBLISH, rpc_pb2.Member(ID=1, name="n1", clientURLs=["http://h:2379"])),
    (Op.MEMBER_ADD, rpc_pb2.Member(ID=2, peerURLs=["http://h:2380"])),
    (Op.MEMBER_REMOVE, rpc_pb2.Member(ID=2)),
    (Op.CLUSTER_INIT, rpc_pb2.Member(ID=99)),
]


@pytest.mark.parametrize(("op", "msg"), SAMPLES, ids=[f"{op.name}-{i}" for i, (op, _) in
                                                      enumerate(SAMPLES)])
def test_encode_decode_round_trip(op: Op, msg: Message) -> None:
    assert decode(encode(op, msg)) == (op, msg)


SAMPLE_ENTRY = encode(Op.PUT, put(b"key", b"value", 3))


FLIPS = [(name, raw, pos) for name, raw in (("put", SAMPLE_ENTRY),)
         for pos in range(len(raw))]


@pytest.mark.parametrize(("name", "entry_bytes", "pos"), FLIPS,
                         ids=[f"{name}-{pos}" for name, _, pos in FLIPS])
def test_a_flipped_byte_is_corrupt(name: str, entry_bytes: bytes, pos: int) -> None:
    damaged = bytearray(entry_bytes)
    damaged[pos] ^= 0xFF
    with pytest.raises(CorruptCommand):
        decode(bytes(damaged))


@pytest.mark.parametrize("pos", range(1, len(SAMPLE_ENTRY)))  # the op byte: see below
def test_any_one_bit_flip_in_crc_or_payload_is_corrupt(pos: int) -> None:
    for bit in range(8):
        damaged = bytearray(SAMPLE_ENTRY)
        damaged[pos] ^= 1 << bit
        with pytest.raises(CorruptCommand):
            decode(bytes(damaged))


def test_a_flipped_bit_in_the_operation_byte_is_corrupt() -> None:
    good = encode(Op.LEASE_REVOKE, revoke(7))
    with pytest.raises(CorruptCommand):
        decode(bytes([good[0] ^ 1]) + good[1:])


@pytest.mark.parametrize("entry_bytes", [SAMPLE_ENTRY], ids=["put"])
@pytest.mark.parametrize("cut", [0, 1, 4, 5, 6, 9, 12])
def test_a_truncated_entry_is_corrupt(entry_bytes: bytes, cut: int) -> None:
    with pytest.raises(CorruptCommand):
        decode(entry_bytes[:cut])


def with_crc(op: int, payload: bytes) -> bytes:
    """An entry whose checksum is right for a damaged payload (a writer's bug, not rot)."""
    return struct.pack("<BI", op, zlib.crc32(payload, op)) + payload


@pytest.mark.parametrize("raw", [
    with_crc(0, b""),  # no operation 0
    with_crc(200, b""),  # nor 200
    with_crc(Op.PUT, b"\x0a"),  # a field with no length
    with_crc(Op.PUT, b"\x0a\x05ab"),  # a field longer than the payload
], ids=["op-0", "op-200", "no-length", "short-field"])
def test_an_undecodable_entry_is_corrupt(raw: bytes) -> None:
    with pytest.raises(CorruptCommand):
        decode(raw)


def test_a_damaged_entry_is_never_applied() -> None:
    store = MVCCStore()
    damaged = bytearray(entry(put(b"a")))
    damaged[-1] ^= 1
    with pytest.raises(CorruptCommand):
        store.apply(bytes(damaged))
    assert (store.revision, current(store)) == (1, {})

"""The replicated state machine: an MVCC key-value store with leases, as etcd's.

Every member applies the same commands in the same order (from the Raft log), so
``apply`` must be deterministic: it reads only the command and the current state,
never the clock or randomness. Reads (``range``, ``events_since``) never change state.

Not thread-safe: one thread (the member's event loop, see ``_node.py``) applies and
reads. A read never awaits halfway, so it always sees one revision.

Revisions follow etcd: the store starts at revision 1; each write command that changes
something takes the next revision, shared by all changes of one txn; a key's
``version`` counts its puts since its creation and a delete resets it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aetcd.rpc import kv_pb2, rpc_pb2
from sortedcontainers import SortedList

from raftstore import _errors as err
from raftstore import _snapshot as snapshot
from raftstore._commands import Op, decode

MAX_TXN_OPS = 128
MAX_LEASE_TTL = 9_000_000_000


class Rec:
    """One revision of one key. A tombstone (the key's deletion) has ``version == 0``.

    Records are shared between a key's history and the revision-ordered change list,
    and are never mutated once stored.
    """

    __slots__ = ("create", "key", "lease", "mod", "value", "version")

    def __init__(self, key: bytes, create: int, mod: int, version: int,
                 value: bytes, lease: int) -> None:
        self.key = key
        self.create = create
        self.mod = mod
        self.version = version
        self.value = value
        self.lease = lease

    @property
    def tombstone(self) -> bool:
        return self.version == 0

    def to_kv(self, keys_only: bool = False) -> kv_pb2.KeyValue:
        return kv_pb2.KeyValue(
            key=self.key, create_revision=self.create, mod_revision=self.mod,
            version=self.version, value=b"" if keys_only else self.value, lease=self.lease,
        )

    def as_tuple(self) -> tuple[bytes, int, int, int, bytes, int]:
        return (self.key, self.create, self.mod, self.version, self.value, self.lease)


@dataclass(frozen=True, slots=True)
class Change:
    """One event of a revision: the new record and the one it replaced (None if new)."""

    rec: Rec
    prev: Rec | None

    def to_event(self, with_prev: bool) -> kv_pb2.Event:
        ev = kv_pb2.Event(
            type=kv_pb2.Event.DELETE if self.rec.tombstone else kv_pb2.Event.PUT,
            kv=self.rec.to_kv() if not self.rec.tombstone else kv_pb2.KeyValue(
                key=self.rec.key, mod_revision=self.rec.mod),
        )
        if with_prev and self.prev is not None:
            ev.prev_kv.CopyFrom(self.prev.to_kv())
        return ev


@dataclass(slots=True)
class Lease:
    """A lease as replicated: its id, granted TTL and attached keys."""

    id: int
    ttl: int
    keys: set[bytes] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Member:
    """A cluster member as replicated. ``name``/``client_urls`` are empty until it publishes."""

    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]

    def to_pb(self) -> rpc_pb2.Member:
        return rpc_pb2.Member(ID=self.id, name=self.name, peerURLs=list(self.peer_urls),
                              clientURLs=list(self.client_urls))


@dataclass(slots=True)
class Applied:
    """What applying one command produced: the response (or error) and the changes."""

    result: object
    revision: int
    changes: list[Change]
    lease_touched: tuple[int, ...] = ()
    leases_removed: tuple[int, ...] = ()


def range_end_of(key: bytes, range_end: bytes) -> tuple[bytes, bytes | None]:
    """etcd's key/range_end convention to [lo, hi): hi None means unbounded above.

    Empty range_end: the single key. range_end ``\\0``: every key >= key (and key
    ``\\0`` with range_end ``\\0``: every key).
    """
    if range_end == b"\0":
        return key, None
    return key, range_end


class MVCCStore:
    """The state machine. Not thread-safe: used from one event loop."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.revision = 1
        self.compact_revision = 0
        self._hist: dict[bytes, list[Rec]] = {}
        self._keys: SortedList = SortedList()
        self._changes: list[Change] = []  # in revision order, mod >= compact_revision
        self.leases: dict[int, Lease] = {}
        self.members: dict[int, Member] = {}
        self.cluster_id = 0

    # ------------------------------------------------------------------ reads
    def _visible(self, key: bytes, rev: int) -> Rec | None:
        hist = self._hist.get(key)
        if not hist:
            return None
        if rev >= hist[-1].mod:
            rec = hist[-1]
        else:
            i = bisect_right(hist, rev, key=lambda r: r.mod)
            if i == 0:
                return None
            rec = hist[i - 1]
        return None if rec.tombstone else rec

    def _keys_in(self, lo: bytes, hi: bytes | None, single: bool) -> Iterable[bytes]:
        if single:
            return (lo,) if lo in self._hist else ()
        keys: Iterable[bytes]
        if hi is None:
            keys = self._keys.irange(lo, None)
        elif hi <= lo:
            keys = ()
        else:
            keys = self._keys.irange(lo, hi, inclusive=(True, False))
        return keys

    def live_in(self, key: bytes, range_end: bytes, rev: int = 0) -> Iterator[Rec]:
        """Records visible at ``rev`` (0: now) in etcd's [key, range_end), in key order."""
        rev = rev or self.revision
        lo, hi = range_end_of(key, range_end)
        for k in self._keys_in(lo, hi, single=not range_end):
            rec = self._visible(k, rev)
            if rec is not None:
                yield rec

    def check_read_revision(self, rev: int) -> None:
        """Raise the etcd error for reading at ``rev`` if it is compacted or in the future."""
        if rev > self.revision:
            raise err.FUTURE_REV
        if 0 < rev < self.compact_revision:
            raise err.COMPACTED

    def range(self, req: rpc_pb2.RangeRequest, at: int = 0) -> rpc_pb2.RangeResponse:
        """Serve a Range exactly as etcd 3.4 does (filters, sort, limit, count, more).

        ``at`` (inside a txn) is the revision "now" means, so that a txn's reads see
        its own earlier writes.
        """
        self.check_read_revision(req.revision)
        recs = list(self.live_in(req.key, req.range_end, req.revision or at))
        count = len(recs)
        if req.min_mod_revision:
            recs = [r for r in recs if r.mod >= req.min_mod_revision]
        if req.max_mod_revision:
            recs = [r for r in recs if r.mod <= req.max_mod_revision]
        if req.min_create_revision:
            recs = [r for r in recs if r.create >= req.min_create_revision]
        if req.max_create_revision:
            recs = [r for r in recs if r.create <= req.max_create_revision]
        order = req.sort_order
        if req.sort_target != rpc_pb2.RangeRequest.KEY and order == rpc_pb2.RangeRequest.NONE:
            order = rpc_pb2.RangeRequest.ASCEND
        if order != rpc_pb2.RangeRequest.NONE:
            target = req.sort_target
            keyf = {
                rpc_pb2.RangeRequest.KEY: lambda r: r.key,
                rpc_pb2.RangeRequest.VERSION: lambda r: r.version,
                rpc_pb2.RangeRequest.CREATE: lambda r: r.create,
                rpc_pb2.RangeRequest.MOD: lambda r: r.mod,
                rpc_pb2.RangeRequest.VALUE: lambda r: r.value,
            }[target]
            recs.sort(key=keyf, reverse=order == rpc_pb2.RangeRequest.DESCEND)
        resp = rpc_pb2.RangeResponse(count=count)
        if req.count_only:  # etcd: the full count, no kvs, never `more`
            resp.header.revision = self.revision
            return resp
        if req.limit > 0 and len(recs) > req.limit:
            recs = recs[: req.limit]
            resp.more = True
        resp.kvs.extend(r.to_kv(req.keys_only) for r in recs)
        resp.header.revision = self.revision
        return resp

    def changes_since(self, start: int, limit: int) -> tuple[list[Change], int]:
        """Changes with revision >= ``start``, whole revisions only, about ``limit`` of them.

        Returns the changes and the next revision to ask for. ``start`` must not be
        below the compact revision (callers check).
        """
        ch = self._changes
        i = bisect_right(ch, start - 1, key=lambda c: c.rec.mod)
        j = min(len(ch), i + limit)
        while j < len(ch) and j > i and ch[j].rec.mod == ch[j - 1].rec.mod:
            j += 1
        out = ch[i:j]
        nxt = out[-1].rec.mod + 1 if j < len(ch) else self.revision + 1
        return out, nxt

    def prev_of(self, rec: Rec) -> Rec | None:
        """The live record a change replaced, if history still holds it."""
        hist = self._hist.get(rec.key, [])
        i = bisect_right(hist, rec.mod - 1, key=lambda r: r.mod)
        if i == 0:
            return None
        prev = hist[i - 1]
        return None if prev.tombstone else prev

    def record_count(self) -> int:
        return len(self._keys)

    # ------------------------------------------------------------------ apply
    def apply(self, command: bytes) -> Applied:
        """Apply one committed command. Errors are returned in ``result``, never raised,
        and a command that errs changes nothing."""
        op, msg = decode(command)
        handler = self._handlers[op]
        try:
            return handler(self, msg)
        except err.StoreError as e:
            return Applied(e, self.revision, [])

    # -- KV
    def _put(self, req: rpc_pb2.PutRequest, rev: int, changes: list[Change]) -> rpc_pb2.PutResponse:
        old = self._visible(req.key, rev if changes else self.revision)
        if (req.ignore_value or req.ignore_lease) and old is None:
            raise err.KEY_NOT_FOUND
        value = old.value if req.ignore_value and old else req.value
        lease = old.lease if req.ignore_lease and old else req.lease
        if lease and lease not in self.leases:
            raise err.LEASE_NOT_FOUND
        rec = Rec(req.key, old.create if old else rev, rev, old.version + 1 if old else 1,
                  value, lease)
        self._store(rec, old, changes)
        resp = rpc_pb2.PutResponse()
        if req.prev_kv and old is not None:
            resp.prev_kv.CopyFrom(old.to_kv())
        return resp

    def _delete(self, req: rpc_pb2.DeleteRangeRequest, rev: int,
                changes: list[Change]) -> rpc_pb2.DeleteRangeResponse:
        # inside a txn, see its earlier writes (a second delete of a key deletes nothing)
        victims = list(self.live_in(req.key, req.range_end, rev if changes else 0))
        for old in victims:
            self._store(Rec(old.key, 0, rev, 0, b"", 0), old, changes)
        resp = rpc_pb2.DeleteRangeResponse(deleted=len(victims))
        if req.prev_kv:
            resp.prev_kvs.extend(r.to_kv() for r in victims)
        return resp

    def _store(self, rec: Rec, old: Rec | None, changes: list[Change]) -> None:
        hist = self._hist.get(rec.key)
        if hist is None:
            self._hist[rec.key] = [rec]
            self._keys.add(rec.key)
        else:
            hist.append(rec)
        if old is not None and old.lease and old.lease != rec.lease:
            lease = self.leases.get(old.lease)
            if lease is not None:
                lease.keys.discard(rec.key)
        if rec.lease:
            self.leases[rec.lease].keys.add(rec.key)
        change = Change(rec, old)
        self._changes.append(change)
        changes.append(change)

    def _write(self, body: object) -> Applied:
        """Run a write with the next revision; commit it only if something changed."""
        rev = self.revision + 1
        changes: list[Change] = []
        snapshot = (len(self._changes),)
        try:
            result = body(rev, changes)  # type: ignore[operator]
        except err.StoreError:
            self._rollback(snapshot[0], changes)
            raise
        if changes:
            self.revision = rev
        result.header.revision = self.revision
        return Applied(result, self.revision, changes)

    def _rollback(self, changes_len: int, changes: list[Change]) -> None:
        """Undo the records a failed txn stored (in reverse order)."""
        for ch in reversed(changes):
            hist = self._hist[ch.rec.key]
            hist.pop()
            if not hist:
                del self._hist[ch.rec.key]
                self._keys.remove(ch.rec.key)
            if ch.rec.lease and ch.rec.lease in self.leases:
                self.leases[ch.rec.lease].keys.discard(ch.rec.key)
            if ch.prev is not None and ch.prev.lease and ch.prev.lease in self.leases:
                self.leases[ch.prev.lease].keys.add(ch.rec.key)
        del self._changes[changes_len:]

    def _apply_put(self, req: rpc_pb2.PutRequest) -> Applied:
        return self._write(lambda rev, ch: self._put(req, rev, ch))

    def _apply_delete(self, req: rpc_pb2.DeleteRangeRequest) -> Applied:
        return self._write(lambda rev, ch: self._delete(req, rev, ch))

    def _apply_txn(self, req: rpc_pb2.TxnRequest) -> Applied:
        return self._write(lambda rev, ch: self._txn(req, rev, ch))

    def _txn(self, req: rpc_pb2.TxnRequest, rev: int, changes: list[Change]) -> rpc_pb2.TxnResponse:
        ok = all(self._compare(c) for c in req.compare)
        resp = rpc_pb2.TxnResponse(succeeded=ok)
        for op in (req.success if ok else req.failure):
            r = rpc_pb2.ResponseOp()
            kind = op.WhichOneof("request")
            if kind == "request_range":
                rr = self.range(op.request_range, at=rev if changes else 0)
                r.response_range.CopyFrom(rr)
            elif kind == "request_put":
                r.response_put.CopyFrom(self._put(op.request_put, rev, changes))
            elif kind == "request_delete_range":
                deleted = self._delete(op.request_delete_range, rev, changes)
                r.response_delete_range.CopyFrom(deleted)
            elif kind == "request_txn":
                r.response_txn.CopyFrom(self._txn(op.request_txn, rev, changes))
            resp.responses.append(r)
        return resp

    def read_txn(self, req: rpc_pb2.TxnRequest) -> rpc_pb2.TxnResponse:
        """Evaluate a txn that writes nothing (callers check), without a revision."""
        resp = self._txn(req, self.revision + 1, [])
        resp.header.revision = self.revision
        return resp

    def _compare(self, c: rpc_pb2.Compare) -> bool:
        recs = list(self.live_in(c.key, c.range_end))
        if not recs:
            if c.target == rpc_pb2.Compare.VALUE:
                return False
            recs = [Rec(c.key, 0, 0, 0, b"", 0)]
        return all(_compare_one(c, r) for r in recs)

    def _apply_compact(self, req: rpc_pb2.CompactionRequest) -> Applied:
        rev = req.revision
        if rev > self.revision:
            raise err.FUTURE_REV
        if rev <= self.compact_revision:
            raise err.COMPACTED
        self.compact(rev)
        resp = rpc_pb2.CompactionResponse()
        resp.header.revision = self.revision
        return Applied(resp, self.revision, [])

    def compact(self, rev: int) -> None:
        """Forget history before ``rev``; reads at ``rev`` and later still work."""
        self.compact_revision = rev
        dead: list[bytes] = []
        for key, hist in self._hist.items():
            if hist[0].mod >= rev:
                continue
            i = bisect_right(hist, rev, key=lambda r: r.mod)  # hist[i-1]: latest <= rev
            keep_from = i - 1
            if hist[keep_from].tombstone:
                keep_from = i
            if keep_from >= len(hist):
                dead.append(key)
            elif keep_from > 0:
                # a new list, never a cut: a snapshot being encoded holds the old one
                self._hist[key] = hist[keep_from:]
        for key in dead:
            del self._hist[key]
            self._keys.remove(key)
        j = bisect_right(self._changes, rev - 1, key=lambda c: c.rec.mod)
        del self._changes[:j]
        # The records that changes at ``rev`` itself replaced are gone now: drop them as
        # those changes' prev too, as etcd does (its prev_kv read at rev-1 is compacted)
        # and as a store restored from our snapshot must (the snapshot cannot hold them).
        for k, ch in enumerate(self._changes):
            if ch.rec.mod != rev:
                break
            if ch.prev is not None and ch.prev.mod < rev:
                self._changes[k] = Change(ch.rec, None)

    # -- leases
    def _apply_lease_grant(self, req: rpc_pb2.LeaseGrantRequest) -> Applied:
        if req.ID in self.leases:
            raise err.LEASE_EXISTS
        if req.TTL > MAX_LEASE_TTL:
            raise err.LEASE_TTL_TOO_LARGE
        self.leases[req.ID] = Lease(req.ID, req.TTL)
        resp = rpc_pb2.LeaseGrantResponse(ID=req.ID, TTL=req.TTL)
        resp.header.revision = self.revision
        return Applied(resp, self.revision, [], lease_touched=(req.ID,))

    def _revoke(self, lease_id: int) -> Applied:
        lease = self.leases.get(lease_id)
        if lease is None:
            raise err.LEASE_NOT_FOUND

        def body(rev: int, changes: list[Change]) -> rpc_pb2.LeaseRevokeResponse:
            for key in sorted(lease.keys):
                old = self._visible(key, self.revision)
                if old is not None:
                    self._store(Rec(key, 0, rev, 0, b"", 0), old, changes)
            return rpc_pb2.LeaseRevokeResponse()

        applied = self._write(body)
        del self.leases[lease_id]
        applied.leases_removed = (lease_id,)
        return applied

    def _apply_lease_revoke(self, req: rpc_pb2.LeaseRevokeRequest) -> Applied:
        return self._revoke(req.ID)

    def _apply_lease_expire(self, req: rpc_pb2.LeaseRevokeRequest) -> Applied:
        if req.ID not in self.leases:  # revoked or expired meanwhile: nothing to do
            return Applied(rpc_pb2.LeaseRevokeResponse(), self.revision, [])
        return self._revoke(req.ID)

    def _apply_lease_renew(self, req: rpc_pb2.LeaseKeepAliveRequest) -> Applied:
        lease = self.leases.get(req.ID)
        resp = rpc_pb2.LeaseKeepAliveResponse(ID=req.ID, TTL=lease.ttl if lease else 0)
        resp.header.revision = self.revision
        return Applied(resp, self.revision, [], lease_touched=(req.ID,) if lease else ())

    # -- cluster
    def _apply_barrier(self, _msg: object) -> Applied:
        return Applied(None, self.revision, [])

    def _apply_member_publish(self, m: rpc_pb2.Member) -> Applied:
        prev = self.members.get(m.ID)
        peer = tuple(m.peerURLs) or (prev.peer_urls if prev else ())
        self.members[m.ID] = Member(m.ID, m.name, peer, tuple(m.clientURLs))
        return Applied(None, self.revision, [])

    def _apply_member_add(self, m: rpc_pb2.Member) -> Applied:
        for other in self.members.values():
            if set(other.peer_urls) & set(m.peerURLs):
                raise err.PEER_URL_EXISTS
        self.members[m.ID] = Member(m.ID, "", tuple(m.peerURLs), ())
        return Applied(self.members[m.ID], self.revision, [])

    def _apply_member_remove(self, m: rpc_pb2.Member) -> Applied:
        if m.ID not in self.members:
            raise err.MEMBER_NOT_FOUND
        return Applied(self.members.pop(m.ID), self.revision, [])

    def _apply_cluster_init(self, m: rpc_pb2.Member) -> Applied:
        if not self.cluster_id:
            self.cluster_id = m.ID
        return Applied(None, self.revision, [])

    _handlers = {
        Op.PUT: _apply_put,
        Op.DELETE_RANGE: _apply_delete,
        Op.TXN: _apply_txn,
        Op.COMPACT: _apply_compact,
        Op.LEASE_GRANT: _apply_lease_grant,
        Op.LEASE_REVOKE: _apply_lease_revoke,
        Op.LEASE_EXPIRE: _apply_lease_expire,
        Op.LEASE_RENEW: _apply_lease_renew,
        Op.BARRIER: _apply_barrier,
        Op.MEMBER_PUBLISH: _apply_member_publish,
        Op.MEMBER_ADD: _apply_member_add,
        Op.MEMBER_REMOVE: _apply_member_remove,
        Op.CLUSTER_INIT: _apply_cluster_init,
    }

    # ------------------------------------------------------------------ snapshots
    def snapshot_parts(self, records_per_part: int = 2048) -> Iterator[bytes]:
        """The state as it is now, as msgpack-encoded parts to concatenate (see
        ``restore_state``). The state is captured before this returns; the parts are
        encoded as they are drawn, ``records_per_part`` records at a time, and writes may
        be applied between draws: they are not in the snapshot.

        That holds because a history list only ever grows at its end with later revisions
        (or shrinks there, when a failed txn is rolled back), and compaction replaces the
        lists it shortens instead of cutting them (``compact``)."""
        head = snapshot.Head(
            self.revision, self.compact_revision, self.cluster_id,
            [(lease.id, lease.ttl) for lease in self.leases.values()],
            [(m.id, m.name, m.peer_urls, m.client_urls) for m in self.members.values()])
        return snapshot.encode(head, list(self._hist.values()), list(self._changes),
                               records_per_part)

    def snapshot_bytes(self) -> bytes:
        """The whole snapshot at once (``snapshot_parts`` joined)."""
        return b"".join(self.snapshot_parts())

    def restore_state(self, data: bytes | bytearray) -> None:
        """Replace the whole state with a snapshot's (``snapshot_parts`` joined).
        Raises ValueError, TypeError or msgpack's errors if it does not decode, and then
        the state is unusable: the caller must not go on with it."""
        head, parts = snapshot.read(data)
        self._reset()
        self.revision, self.compact_revision, self.cluster_id = (
            head.revision, head.compact_revision, head.cluster_id)
        for lid, ttl in head.leases:
            self.leases[lid] = Lease(lid, ttl)
        hist = self._hist
        for kind, records in parts:
            if kind == snapshot.BASE:
                for t in records:
                    rec = Rec(*t)
                    hist.setdefault(rec.key, []).append(rec)
                continue
            for t in records:
                rec = Rec(*t)
                h = hist.setdefault(rec.key, [])
                prev = h[-1] if h and not h[-1].tombstone else None
                h.append(rec)
                self._changes.append(Change(rec, prev))
        self._keys = SortedList(hist.keys())
        for key, h in hist.items():
            last = h[-1]
            if not last.tombstone and last.lease and last.lease in self.leases:
                self.leases[last.lease].keys.add(key)
        for mid, name, peers, clients in head.members:
            self.members[mid] = Member(mid, name, tuple(peers), tuple(clients))


def _cmp(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


def _compare_one(c: rpc_pb2.Compare, r: Rec) -> bool:
    t = c.target
    if t == rpc_pb2.Compare.VERSION:
        res = _cmp(r.version, c.version)
    elif t == rpc_pb2.Compare.CREATE:
        res = _cmp(r.create, c.create_revision)
    elif t == rpc_pb2.Compare.MOD:
        res = _cmp(r.mod, c.mod_revision)
    elif t == rpc_pb2.Compare.VALUE:
        res = _cmp(r.value, c.value)
    else:
        res = _cmp(r.lease, c.lease)
    op = c.result
    if op == rpc_pb2.Compare.EQUAL:
        return res == 0
    if op == rpc_pb2.Compare.NOT_EQUAL:
        return res != 0
    if op == rpc_pb2.Compare.GREATER:
        return res > 0
    return res < 0

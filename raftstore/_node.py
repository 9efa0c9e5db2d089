"""One member's Raft node: our Raft core driven on the asyncio loop.

Flow of a write::

    gRPC handler --propose(op, msg)--> core.propose (leader appends; a follower forwards)
      --Ready--> storage.save (fdatasync) --> transport.send --> apply committed entries
      --> MVCCStore.apply --> the proposer's future (matched by origin + request id),
          WatchHub.publish (in log order)

Everything runs on one thread, the event loop: Raft, the state machine and the
services share state without locks, and each step of the Ready loop is synchronous.
The one storage thread runs ``RaftStorage`` calls; the snapshot thread writes snapshot
files, encoded on the loop a slice at a time from a state captured at one index. Neither
thread touches the store.

Entries carry ``origin member id (u64) | request id (u64) | command``: every member
applies every entry, and the member that proposed it answers its client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import itertools
import os
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgpack
import structlog
from google.protobuf.message import Message

from raftstore import _errors as err
from raftstore._commands import CorruptCommand, Op, encode
from raftstore._config import StoreConfig
from raftstore._mvcc import Applied, MVCCStore
from raftstore.raft.core import RaftCore, Role
from raftstore.raft.storage import RaftStorage
from raftstore.raft.transport import PeerTransport
from raftstore.raft.types import (
    ClusterConfig,
    EntryKind,
    HardState,
    Ready,
    Snapshot,
    SnapshotMeta,
)
from raftstore.raft.types import (
    Message as RaftMessage,
)

log = structlog.get_logger("raftstore.node")

EXIT_DAMAGED = 70
_TAG = struct.Struct(">QQ")
READ_TIMEOUT_TICKS = 30
# Tuning knobs, measured on 2 cores (see bench/README.md): one AppendEntries in flight
# per follower batches best; fdatasync on the storage thread beats inline fdatasync on
# throughput (inline is ~0.4 ms better at p50 on an idle cluster).
MAX_INFLIGHT_MESSAGES = int(os.environ.get("NAVARCH_RAFT_INFLIGHT", "1"))
INLINE_SYNC = os.environ.get("NAVARCH_RAFT_INLINE_SYNC", "0") == "1"
# how long encoding a snapshot may hold the loop before it lets requests in (seconds)
SNAPSHOT_SLICE = 0.002
SNAPSHOT_RETRY = 10.0  # seconds after a failed snapshot before the next try


def member_id(token: str, peer_address: str) -> int:
    """A member's 64-bit ID, stable for its peer address within a cluster token."""
    digest = hashlib.sha256(f"{token}/{peer_address}".encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1


def cluster_id(token: str, peers: list[str]) -> int:
    """The cluster's 64-bit ID, from its token and initial peer addresses."""
    digest = hashlib.sha256((token + "|" + ",".join(sorted(peers))).encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1


def _die(message: str, **kw: object) -> None:
    log.critical(message, **kw)
    os._exit(EXIT_DAMAGED)


@dataclass(frozen=True)
class RaftStatus:
    """A moment's view of this member's Raft state."""

    term: int
    is_leader: bool
    commit_index: int
    applied_index: int


class RaftNode:
    """Owns the Raft core, its storage and transport, and the state machine."""

    def __init__(self, config: StoreConfig, raft_dir: Any, store: MVCCStore,
                 loop: asyncio.AbstractEventLoop,
                 on_applied: Callable[[Applied], None],
                 on_restored: Callable[[], None]) -> None:
        self.config = config
        self.store = store
        self.loop = loop
        self._on_applied = on_applied
        self._on_restored = on_restored
        self.token = config.initial_cluster_token
        self.member_id = member_id(self.token, config.peer_address)
        self.local_cluster_id = cluster_id(self.token, [a for _, a in config.initial_cluster])
        self.request_timeout = 5.0 + 2 * config.election_timeout
        self.lease_deadlines: dict[int, float] = {}
        self._stopping = False
        self._pending: dict[int, tuple[asyncio.Future[Applied], float]] = {}
        self._req_ids = itertools.count(1)
        self._read_ids = itertools.count(1)
        self._reads: dict[int, tuple[asyncio.Future[None], int]] = {}  # ctx -> (fut, tick)
        self._read_waiting_apply: list[tuple[int, asyncio.Future[None]]] = []
        self._barrier_next: asyncio.Future[None] | None = None
        self._barrier_inflight = False
        self._ticks = 0
        self.stats: dict[str, int] = dict.fromkeys(
            ("readies", "entries_saved", "messages_sent", "entries_applied"), 0)
        self._wake = asyncio.Event()
        self._leader_known = asyncio.Event()
        self._ready_task: asyncio.Task[None] | None = None
        self._io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="raft-storage")
        self._snap_io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="raft-snapshot")
        self._snapshot_task: asyncio.Task[None] | None = None
        self._snapshot_not_before = 0.0  # after a failed snapshot
        self._snapshot_slot = (0, 1)  # set with the peers (_update_peers)
        self._synced_hs: HardState | None = None  # set from storage below
        self._lazy_hs: HardState | None = None
        self._last_leader = 0
        self._snapshotting = False

        self.storage = RaftStorage.open(raft_dir)
        hs, snap, entries = self.storage.initial_state()
        self._synced_hs = hs
        if snap is not None:
            self._restore_snapshot(snap)
        self._flag_peers = {member_id(self.token, a): a for _, a in config.initial_cluster}
        # A member joining an existing cluster knows no configuration until it applies the
        # one that added it (from the log or a snapshot): it cannot campaign before then.
        # Starting it as a voter of --initial-cluster would let it win an election in a
        # configuration nobody agreed to (found by the randomized core tests).
        voters = () if config.initial_cluster_state == "existing" else tuple(
            sorted(self._flag_peers.items()))
        ticks = max(2, round(config.election_timeout / config.heartbeat_interval))
        self.core = RaftCore(
            self.member_id, ClusterConfig(voters), hs, snap, entries,
            election_ticks=ticks, heartbeat_ticks=1,
            # a small window: under load, entries queue while it is full and go out
            # together when an acknowledgement frees a slot (fewer, larger messages)
            max_inflight=MAX_INFLIGHT_MESSAGES,
            snapshot_source=self._snapshot_for_follower,
        )
        self.transport = PeerTransport(
            self.member_id, config.listen_peer, config.peer_secret or os.urandom(32),
            self.token, self._on_message)
        self._tick_handle: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Listen to peers, then apply what the log already holds and start ticking."""
        await self.transport.start()
        self._update_peers()
        self._ready_task = self.loop.create_task(self._ready_loop())
        self._schedule()
        self._tick_handle = self.loop.call_later(self.config.heartbeat_interval, self._tick)

    def stop(self) -> None:
        """Stop ticking and answering; pending requests fail with "server stopped"."""
        self._stopping = True
        self._wake.set()
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        for fut, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(err.STOPPING)

    async def aclose(self) -> None:
        """Stop, wait for the storage thread, persist the last commit index, close."""
        self.stop()
        if self._ready_task is not None:
            await asyncio.gather(self._ready_task, return_exceptions=True)
        if self._snapshot_task is not None:
            await asyncio.gather(self._snapshot_task, return_exceptions=True)
        self._snap_io.shutdown(wait=True)
        await self.transport.stop()
        await self.loop.run_in_executor(self._io, self._close_storage)
        self._io.shutdown(wait=True)

    def _close_storage(self) -> None:
        if self._lazy_hs is not None and self._lazy_hs != self._synced_hs:
            self.storage.save(self._lazy_hs, [], None)
        self.storage.close()

    def _update_peers(self) -> None:
        """Peers we may talk to: the configuration's voters, and the members named by
        --initial-cluster (a joiner must answer the leader before it knows the config).
        Also this member's snapshot slot, which follows the voters."""
        peers = {**self._flag_peers, **dict(self.core.config.voters)}
        peers.pop(self.member_id, None)
        self.transport.set_peers(peers)
        # (this member's place among the voters, how many there are): see snapshot_due
        ids = sorted(self.core.config.ids | {self.member_id})
        self._snapshot_slot = ids.index(self.member_id), len(ids)

    # ------------------------------------------------------------------ the Ready loop
    def _schedule(self) -> None:
        if not self._stopping:
            self._wake.set()

    def _tick(self) -> None:
        if self._stopping:
            return
        self._ticks += 1
        self.core.tick()
        self._expire_requests()
        self._schedule()
        self._tick_handle = self.loop.call_later(self.config.heartbeat_interval, self._tick)

    def _on_message(self, m: RaftMessage) -> None:
        self.core.step(m)
        self._schedule()

    async def _ready_loop(self) -> None:
        """Drain the core's Ready: persist, send, apply, advance (in that order).

        Persisting runs on the one storage thread; meanwhile the loop keeps taking
        requests and messages into the core, so the next Ready carries all of them:
        one fdatasync and one message per follower for a whole batch (group commit).
        The core is not asked for another Ready before ``advance``.
        """
        while not self._stopping:
            await self._wake.wait()
            # one more turn of the loop first: requests and messages that have already
            # arrived join this Ready instead of each costing a Ready of its own
            await asyncio.sleep(0)
            self._wake.clear()
            while not self._stopping and self.core.has_ready():
                rd = self.core.ready()
                self.stats["readies"] += 1
                self.stats["entries_saved"] += len(rd.entries)
                self.stats["messages_sent"] += len(rd.messages)
                self.stats["entries_applied"] += len(rd.committed)
                # A leader may send before its own write is durable (its copy counts
                # toward commit only after advance); anyone else's messages (acks,
                # votes) must wait for the disk.
                early = self.core.role == Role.LEADER and not _term_or_vote_changed(
                    rd, self._synced_hs)
                if early and rd.messages:
                    self.transport.send(rd.messages)
                if _must_sync(rd, self._synced_hs):
                    if rd.snapshot is None and INLINE_SYNC:
                        # fdatasync costs ~0.1 ms here: cheaper inline than a thread hop
                        self.storage.save(rd.hard_state, rd.entries, None)
                    else:
                        await self.loop.run_in_executor(
                            self._io, self.storage.save, rd.hard_state, rd.entries,
                            rd.snapshot)
                    if rd.hard_state is not None:
                        self._synced_hs = rd.hard_state
                elif rd.hard_state is not None:
                    self._lazy_hs = rd.hard_state  # commit index only: no fsync needed
                if self._stopping:
                    return
                if rd.messages and not early:
                    self.transport.send(rd.messages)
                if rd.snapshot is not None:
                    self._restore_snapshot(rd.snapshot)
                for entry in rd.committed:
                    self._apply_entry(entry.kind, entry.data)
                self.core.advance(rd)
                self._after_ready(rd)

    def _after_ready(self, rd: Ready) -> None:
        if rd.snapshot is not None or any(e.kind == EntryKind.CONFIG for e in rd.committed):
            self._update_peers()
        for rs in rd.read_states:
            entry = self._reads.pop(rs.context, None)
            if entry is None:
                continue
            fut, _ = entry
            if rs.index < 0:
                if not fut.done():
                    fut.set_exception(err.NO_LEADER if self.core.leader == 0
                                      else err.LEADER_CHANGED)
            else:
                self._read_waiting_apply.append((rs.index, fut))
        if self._read_waiting_apply:
            applied = self.core.log.applied
            still = []
            for index, fut in self._read_waiting_apply:
                if index <= applied:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    still.append((index, fut))
            self._read_waiting_apply = still
        if rd.soft_state_changed:
            self._leadership_changed()
        self._maybe_snapshot()

    def _leadership_changed(self) -> None:
        leader = self.core.leader
        if leader == self._last_leader:
            return
        self._last_leader = leader
        if leader:
            self._leader_known.set()
        else:
            self._leader_known.clear()
        if self.core.role == Role.LEADER:
            # a new leader restarts every lease's clock (as etcd's lessor Promote does)
            now = time.monotonic()
            self.lease_deadlines = {
                lid: now + lease.ttl for lid, lease in self.store.leases.items()}
        log.info("leader changed", leader=f"{leader:x}", term=self.core.term,
                 role=self.core.role.name.lower())

    # ------------------------------------------------------------------ applying
    def _apply_entry(self, kind: EntryKind, data: bytes) -> None:
        if kind != EntryKind.NORMAL:
            return
        if len(data) < _TAG.size:
            _die("refusing to apply a damaged log entry: no request tag")
        origin, req_id = _TAG.unpack_from(data)
        try:
            applied = self.store.apply(data[_TAG.size:])
        except CorruptCommand as e:
            _die("refusing to apply a damaged log entry", error=str(e))
            return
        self._after_apply(applied)
        if origin == self.member_id:
            pending = self._pending.pop(req_id, None)
            if pending is not None and not pending[0].done():
                pending[0].set_result(applied)

    def _after_apply(self, applied: Applied) -> None:
        if applied.lease_touched or applied.leases_removed:
            now = time.monotonic()
            for lid in applied.lease_touched:
                lease = self.store.leases.get(lid)
                if lease is not None:
                    self.lease_deadlines[lid] = now + lease.ttl
            for lid in applied.leases_removed:
                self.lease_deadlines.pop(lid, None)
        if applied.changes:
            self._on_applied(applied)

    # ------------------------------------------------------------------ snapshots
    def _maybe_snapshot(self) -> None:
        log_ = self.core.log
        if self._snapshotting or log_.applied < snapshot_due(
                log_.snap_index, self.config.snapshot_count, self._snapshot_slot):
            return
        if time.monotonic() < self._snapshot_not_before:
            return
        index = log_.applied
        term = log_.term(index)
        assert term is not None
        parts = self.store.snapshot_parts()  # the state at ``index``, captured now
        self._snapshotting = True
        self._snapshot_task = self.loop.create_task(
            self._take_snapshot(SnapshotMeta(index, term, self.core.config), parts))

    async def _take_snapshot(self, meta: SnapshotMeta, parts: Iterator[bytes]) -> None:
        """Encode the captured state on the loop a slice at a time, so that requests are
        served between slices (a whole state at once stalled every member for 0.1 s and
        more at 20k keys); then write it on the snapshot thread, while the storage thread
        goes on saving entries. Compacts the in-memory log once the file is durable."""
        try:
            encoded = bytearray()  # one copy of the snapshot, not its parts and their join
            clock = time.perf_counter
            until = clock() + SNAPSHOT_SLICE
            for part in parts:
                encoded += part
                if clock() >= until:
                    await asyncio.sleep(0)
                    if self._stopping:
                        return
                    until = clock() + SNAPSHOT_SLICE
            await self.loop.run_in_executor(self._snap_io, self._save_snapshot, meta, encoded)
        except Exception as e:  # the disk, most likely: try again in a while
            log.error("snapshot failed", error=str(e), index=meta.index)
            self._snapshot_not_before = time.monotonic() + SNAPSHOT_RETRY
            return
        finally:
            self._snapshotting = False
        if not self._stopping:
            self.core.compact(meta.index)
        log.info("snapshot taken", index=meta.index)

    def _save_snapshot(self, meta: SnapshotMeta, encoded: bytearray) -> None:
        self.storage.compact(Snapshot(meta, encoded))

    def _snapshot_for_follower(self) -> Snapshot | None:
        return self.storage.latest_snapshot()  # read from disk: sending one is rare

    def _restore_snapshot(self, snap: Snapshot) -> None:
        try:
            self.store.restore_state(snap.data)
        except (ValueError, TypeError, msgpack.UnpackException) as e:
            _die("refusing to load a damaged snapshot", error=str(e), index=snap.meta.index)
        now = time.monotonic()
        self.lease_deadlines = {lid: now + lease.ttl for lid, lease in self.store.leases.items()}
        self._on_restored()

    # ------------------------------------------------------------------ proposing
    async def propose(self, op: Op, msg: Message) -> Applied:
        """Replicate and apply one command; raise StoreError for etcd-visible failures."""
        if self._stopping:
            raise err.STOPPING
        req_id = next(self._req_ids)
        fut: asyncio.Future[Applied] = self.loop.create_future()
        data = _TAG.pack(self.member_id, req_id) + encode(op, msg)
        if not self.core.propose([data]):
            await self._await_leader()
            if not self.core.propose([data]):
                raise err.NO_LEADER
        self._pending[req_id] = (fut, time.monotonic() + self.request_timeout)
        self._schedule()
        applied = await fut
        if isinstance(applied.result, err.StoreError):
            raise applied.result
        return applied

    async def _await_leader(self) -> None:
        """Wait (up to two election timeouts) until some member is known to lead."""
        if self.core.leader:
            return
        try:
            await asyncio.wait_for(self._leader_known.wait(), 2 * self.config.election_timeout)
        except TimeoutError:
            raise err.NO_LEADER from None

    def _expire_requests(self) -> None:
        now = time.monotonic()
        expired = [r for r, (_, deadline) in self._pending.items() if deadline <= now]
        for r in expired:
            fut, _ = self._pending.pop(r)
            if not fut.done():
                fut.set_exception(err.TIMEOUT)
        stale = [c for c, (_, t) in self._reads.items() if self._ticks - t > READ_TIMEOUT_TICKS]
        for c in stale:
            read_fut, _ = self._reads.pop(c)
            if not read_fut.done():
                read_fut.set_exception(err.TIMEOUT)

    async def read_barrier(self) -> None:
        """Return once this member has applied everything committed before the call
        (ReadIndex, Raft thesis §6.4). Concurrent reads share one request to the leader."""
        for attempt in (1, 2):
            if self._barrier_next is None:
                self._barrier_next = self.loop.create_future()
            fut = self._barrier_next
            if not self._barrier_inflight:
                self._launch_barrier()
            try:
                await fut
                return
            except err.StoreError as e:
                if attempt == 2 or e not in (err.NO_LEADER, err.LEADER_CHANGED):
                    raise
                await self._await_leader()

    def _launch_barrier(self) -> None:
        fut, self._barrier_next = self._barrier_next, None
        if fut is None:
            return
        self._barrier_inflight = True
        ctx = next(self._read_ids)
        inner: asyncio.Future[None] = self.loop.create_future()
        self._reads[ctx] = (inner, self._ticks)
        self.core.read_index(ctx)
        self._schedule()

        def finished(f: asyncio.Future[None]) -> None:
            self._barrier_inflight = False
            if not fut.done():
                if f.exception() is not None:
                    fut.set_exception(f.exception())  # type: ignore[arg-type]
                else:
                    fut.set_result(None)
            if self._barrier_next is not None:
                self._launch_barrier()

        inner.add_done_callback(finished)

    # ------------------------------------------------------------------ membership
    async def _change_config(self, voters: dict[int, str], wanted: Callable[[], bool]) -> None:
        if not self.core.propose_config(ClusterConfig(tuple(sorted(voters.items())))):
            raise err.NO_LEADER
        self._schedule()
        deadline = time.monotonic() + self.request_timeout
        while not wanted():
            if time.monotonic() > deadline:
                raise err.TIMEOUT
            await asyncio.sleep(self.config.heartbeat_interval)

    async def add_node(self, address: str) -> None:
        mid = member_id(self.token, address)
        voters = dict(self.core.config.voters)
        voters[mid] = address
        await self._change_config(voters, lambda: mid in self.core.config.ids)

    async def remove_node(self, address: str) -> None:
        mid = member_id(self.token, address)
        voters = {i: a for i, a in self.core.config.voters if i != mid}
        await self._change_config(voters, lambda: mid not in self.core.config.ids)

    # ------------------------------------------------------------------ status
    def status(self) -> RaftStatus:
        c = self.core
        return RaftStatus(
            term=c.term,
            is_leader=c.role == Role.LEADER,
            commit_index=c.log.committed,
            applied_index=c.log.applied,
        )

    def term(self) -> int:
        return self.core.term

    def leader_member_id(self) -> int:
        return self.core.leader

    def cluster_id(self) -> int:
        return self.store.cluster_id or self.local_cluster_id

    def raft_nodes(self) -> list[str]:
        """Peer addresses of the current Raft configuration, this member included."""
        return sorted(a for _, a in self.core.config.voters)

    def size_bytes(self) -> int:
        return self.storage.size_bytes()


def _term_or_vote_changed(rd: Ready, synced: HardState | None) -> bool:
    hs = rd.hard_state
    if hs is None:
        return False
    return synced is None or (hs.term, hs.vote) != (synced.term, synced.vote)


def _must_sync(rd: Ready, synced: HardState | None) -> bool:
    """fdatasync is needed for new entries, a snapshot, or a new term or vote (Raft's
    persistent state); a commit index alone may be lost and relearned (as etcd's
    MustSync)."""
    return bool(rd.entries) or rd.snapshot is not None or _term_or_vote_changed(rd, synced)


def snapshot_due(snap_index: int, count: int, slot: tuple[int, int]) -> int:
    """The applied index at which a member whose last snapshot is at ``snap_index`` takes
    the next one: about ``count`` entries later (between half and one and a half times
    ``count``), at an index congruent to its own phase modulo ``count``. The phases of
    the ``n`` voters are ``count / n`` apart, so that members do not all encode a
    snapshot at once: on a small machine their CPU bursts would add up."""
    place, n = slot
    phase = place * count // n
    earliest = snap_index + count // 2
    return earliest + (phase - earliest) % count

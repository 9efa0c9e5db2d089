"""One member's Raft node: pysyncobj on its own thread, bridged to asyncio.

Flow of a write::

    gRPC handler (asyncio) --propose(op, msg)--> SyncObj thread: log, replicate, commit
        --apply(entry) under store.lock--> Applied --to_loop (doorbell)--> future + watchers

Contracts:
- ``MVCCStore`` is touched only under ``store.lock``: applies on the Raft thread,
  reads on the asyncio thread.
- ``on_applied`` is called on the asyncio thread, once per applied entry that changed
  keys or leases, in log order (``to_loop`` is FIFO).
- The member stops (exit code 70) rather than apply a damaged entry or load a damaged
  snapshot: serving wrong data is worse than not serving.

pysyncobj keeps its Raft state in name-mangled attributes; ``RaftStatus`` reads them
(ints and references, read atomically under the GIL) and nothing else does.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from aetcd.rpc import rpc_pb2
from google.protobuf.message import Message
from pysyncobj import SyncObj, SyncObjConf, replicated
from pysyncobj.config import FAIL_REASON

from raftstore import _errors as err
from raftstore._commands import CorruptCommand, Op, encode, encode_batch
from raftstore._config import StoreConfig
from raftstore._datadir import DataDir, SnapshotError, read_snapshot, write_snapshot
from raftstore._mvcc import Applied, MVCCStore

log = structlog.get_logger("raftstore.node")

EXIT_DAMAGED = 70
MAX_BATCH_BYTES = 48 * 1024   # below pysyncobj's 64 KiB message split
MAX_BATCH_COMMANDS = 256
MAX_INFLIGHT_ENTRIES = int(os.environ.get("RS_INFLIGHT", "2"))      # proposals awaiting commit before new ones are held back
_LEADER_STATE = 2  # pysyncobj's _RAFT_STATE.LEADER


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


class _Replica(SyncObj):  # type: ignore[misc]
    """The SyncObj subclass: one replicated method that applies a log entry."""

    def __init__(self, apply: Callable[[bytes], Applied | list[Applied]], self_addr: str, others: list[str],
                 conf: SyncObjConf) -> None:
        self._apply_fn = apply
        super().__init__(self_addr, others, conf)

    @replicated  # type: ignore[misc]
    def apply_entry(self, entry: bytes) -> Applied | list[Applied]:
        return self._apply_fn(entry)


@dataclass(frozen=True)
class RaftStatus:
    """A moment's view of this member's Raft state."""

    term: int
    leader: str | None
    is_leader: bool
    commit_index: int
    applied_index: int


class RaftNode:
    """Owns the SyncObj and the state machine; proposes commands from asyncio."""

    def __init__(self, config: StoreConfig, datadir: DataDir, store: MVCCStore,
                 loop: asyncio.AbstractEventLoop,
                 on_applied: Callable[[Applied], None],
                 on_restored: Callable[[], None]) -> None:
        self.config = config
        self.store = store
        self.loop = loop
        self._datadir = datadir
        self._on_applied = on_applied
        self._on_restored = on_restored
        self.loaded = threading.Event()
        self.request_timeout = 5.0 + 2 * config.election_timeout
        self.token = config.initial_cluster_token
        self.member_id = member_id(self.token, config.peer_address)
        self.local_cluster_id = cluster_id(self.token, [a for _, a in config.initial_cluster])
        # leader-side lease clocks (monotonic deadlines); not replicated
        self.lease_deadlines: dict[int, float] = {}
        self._leader_since_term = -1
        self._barrier_next: asyncio.Future[None] | None = None
        self._barrier_inflight = False
        self._stopping = False
        self._outbox: list[tuple[bytes, asyncio.Future[Applied]]] = []
        self._outbox_bytes = 0
        self._flush_scheduled = False
        self._inflight = 0
        self.stats_entries = 0
        self.stats_commands = 0
        self._to_loop: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = (
            collections.deque())
        self._doorbell = False
        host, port = config.listen_peer
        conf = SyncObjConf(
            journalFile=str(datadir.journal),
            fullDumpFile=str(datadir.snapshot),
            password=config.peer_secret or os.urandom(32),
            bindAddress=f"{host}:{port}",
            appendEntriesUseBatch=False,  # send at once: latency over batching
            appendEntriesPeriod=config.heartbeat_interval,
            raftMinTimeout=config.election_timeout,
            raftMaxTimeout=2 * config.election_timeout,
            connectionTimeout=max(3.5, 3 * config.election_timeout),
            connectionRetryTime=min(1.0, config.election_timeout),
            leaderFallbackTimeout=max(30.0, 10 * config.election_timeout),
            logCompactionMinEntries=config.snapshot_count,
            logCompactionMinTime=3600,
            logCompactionSplit=False,
            useFork=False,
            serializer=self._save_snapshot,
            deserializer=self._load_snapshot,
            dynamicMembershipChange=True,
            commandsWaitLeader=True,
            onStateChanged=self._raft_state_changed,
        )
        self._replica = _Replica(self._apply, config.peer_address, config.other_peers, conf)
        self._replica.addOnTickCallback(self._first_tick)

    # ------------------------------------------------------------ Raft thread side
    def _first_tick(self) -> None:
        if not self.loaded.is_set():
            self.loaded.set()

    def _apply(self, entry: bytes) -> Applied | list[Applied]:
        with self.store.lock:
            try:
                result = self.store.apply(entry)
            except CorruptCommand as e:
                _die("refusing to apply a damaged log entry; the journal is corrupt",
                     error=str(e), journal=str(self._datadir.journal))
                raise  # unreachable
        for applied in result if isinstance(result, list) else (result,):
            self._after_apply(applied)
        return result

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
            self.to_loop(self._on_applied, applied)

    def to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on the event loop, in call order (Raft thread -> asyncio).

        A doorbell instead of one ``call_soon_threadsafe`` per call: the loop is woken at
        most once per drain, however many calls queue up meanwhile. (Each wake-up is a
        syscall plus a GIL hand-off, which dominated the Raft thread's time.)
        """
        self._to_loop.append((fn, args))
        if not self._doorbell:
            self._doorbell = True
            self.loop.call_soon_threadsafe(self._drain_to_loop)

    def _drain_to_loop(self) -> None:
        self._doorbell = False  # before draining: a call queued from now on rings again
        q = self._to_loop
        while q:
            fn, args = q.popleft()
            fn(*args)

    def _save_snapshot(self, filename: str, raft_data: Any) -> None:
        with self.store.lock:
            state = self.store.snapshot_state()
        write_snapshot(filename, state, raft_data)

    def _load_snapshot(self, filename: str) -> Any:
        try:
            state, raft_data = read_snapshot(filename)
            with self.store.lock:
                self.store.restore_state(state)
                now = time.monotonic()
                self.lease_deadlines = {
                    lid: now + lease.ttl for lid, lease in self.store.leases.items()}
        except (SnapshotError, ValueError, pickle.UnpicklingError) as e:
            _die("refusing to load a damaged snapshot", error=str(e), snapshot=filename)
            raise
        self.to_loop(self._on_restored)
        return raft_data

    def _raft_state_changed(self, old: int, new: int) -> None:
        if new == _LEADER_STATE:
            # A new leader restarts every lease's clock (as etcd's lessor Promote does).
            now = time.monotonic()
            with self.store.lock:
                self.lease_deadlines = {
                    lid: now + lease.ttl for lid, lease in self.store.leases.items()}
        log.info("raft state changed", old=old, new=new, term=self.status().term)

    # ------------------------------------------------------------ asyncio side
    def status(self) -> RaftStatus:
        r = self._replica
        leader = getattr(r, "_SyncObj__raftLeader", None)
        return RaftStatus(
            term=getattr(r, "_SyncObj__raftCurrentTerm", 0),
            leader=leader.address if leader is not None else None,
            is_leader=getattr(r, "_SyncObj__raftState", 0) == _LEADER_STATE,
            commit_index=getattr(r, "_SyncObj__raftCommitIndex", 0),
            applied_index=getattr(r, "_SyncObj__raftLastApplied", 0),
        )

    def leader_member_id(self) -> int:
        st = self.status()
        return member_id(self.token, st.leader) if st.leader else 0

    def cluster_id(self) -> int:
        return self.store.cluster_id or self.local_cluster_id

    def raft_nodes(self) -> list[str]:
        """Peer addresses of the current Raft configuration, this member included."""
        others = getattr(self._replica, "_SyncObj__otherNodes", set())
        return sorted([self.config.peer_address, *(n.address for n in others)])

    async def propose(self, op: Op, msg: Message) -> Applied:
        """Replicate and apply one command; raise StoreError for etcd-visible failures.

        Commands proposed in the same event-loop iteration share one log entry (group
        commit): one round of Raft messages and one journal write for all of them.
        """
        if self._stopping:
            raise err.STOPPING
        fut: asyncio.Future[Applied] = self.loop.create_future()
        entry = encode(op, msg)
        self._outbox.append((entry, fut))
        self._outbox_bytes += len(entry)
        full = self._outbox_bytes >= MAX_BATCH_BYTES or len(self._outbox) >= MAX_BATCH_COMMANDS
        if full:
            self._flush()
        elif not self._flush_scheduled and self._inflight < MAX_INFLIGHT_ENTRIES:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        applied = await fut  # failed with TIMEOUT by its entry's timer, if it comes to that
        if isinstance(applied.result, err.StoreError):
            raise applied.result
        return applied

    def _flush(self) -> None:
        """Propose everything in the outbox as one entry.

        While MAX_INFLIGHT_ENTRIES entries await commit, new commands wait in the outbox
        and go together when one commits: batches grow with load, idle latency is unchanged.
        """
        self._flush_scheduled = False
        batch, self._outbox, self._outbox_bytes = self._outbox, [], 0
        if not batch:
            return
        futs = [f for _, f in batch]
        self.stats_entries += 1
        self.stats_commands += len(batch)
        entry = batch[0][0] if len(batch) == 1 else encode_batch([e for e, _ in batch])
        self._inflight += 1
        released = False

        def release(timed_out: bool = False) -> None:
            # once per entry: on its callback, or when its requests have timed out
            # (pysyncobj may never call back for an entry lost in a leader change)
            nonlocal released
            if released:
                return
            released = True
            timer.cancel()
            if timed_out:
                for fut in futs:
                    if not fut.done():
                        fut.set_exception(err.TIMEOUT)
            self._inflight -= 1
            if self._outbox and not self._flush_scheduled:
                self._flush_scheduled = True
                self.loop.call_soon(self._flush)

        timer = self.loop.call_later(self.request_timeout, release, True)

        def settle(res: Applied | list[Applied] | None, reason: int) -> None:
            release()
            results = res if isinstance(res, list) else [res] * len(futs)
            for fut, one in zip(futs, results, strict=True):
                if fut.done():
                    continue
                if reason == FAIL_REASON.SUCCESS:
                    fut.set_result(one)  # type: ignore[arg-type]
                else:
                    fut.set_exception(_fail_reason_error(reason))

        def callback(res: Applied | list[Applied] | None, reason: int) -> None:
            self.to_loop(settle, res, reason)

        self._replica.apply_entry(entry, callback=callback)

    async def read_barrier(self) -> None:
        """Return once this member has applied every write committed before the call.

        Reads share barriers: one barrier entry in the log serves every read that
        arrived before it was proposed (ReadIndex through the log).
        """
        if self._barrier_next is None:
            self._barrier_next = self.loop.create_future()
        fut = self._barrier_next
        if not self._barrier_inflight:
            self._launch_barrier()
        await fut

    def _launch_barrier(self) -> None:
        fut, self._barrier_next = self._barrier_next, None
        if fut is None:
            return
        self._barrier_inflight = True

        async def run() -> None:
            try:
                await self.propose(Op.BARRIER, _BARRIER_MSG)
            except err.StoreError as e:
                if not fut.done():
                    fut.set_exception(e)
            else:
                if not fut.done():
                    fut.set_result(None)
            finally:
                self._barrier_inflight = False
                if self._barrier_next is not None:
                    self._launch_barrier()

        self.loop.create_task(run())

    def add_node(self, address: str) -> asyncio.Future[None]:
        return self._membership(self._replica.addNodeToCluster, address)

    def remove_node(self, address: str) -> asyncio.Future[None]:
        return self._membership(self._replica.removeNodeFromCluster, address)

    def _membership(self, fn: Callable[..., None], address: str) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = self.loop.create_future()

        def settle(reason: int) -> None:
            if fut.done():
                return
            if reason == FAIL_REASON.SUCCESS:
                fut.set_result(None)
            else:
                fut.set_exception(_fail_reason_error(reason))

        fn(address, callback=lambda _res, reason: self.loop.call_soon_threadsafe(settle, reason))
        return fut

    def stop(self) -> None:
        """Stop the Raft thread; the journal is flushed to its file."""
        self._stopping = True
        self._replica.destroy()


_BARRIER_MSG = rpc_pb2.StatusRequest()


def _fail_reason_error(reason: int) -> err.StoreError:
    if reason == FAIL_REASON.QUEUE_FULL:
        return err.TOO_MANY_REQUESTS
    if reason in (FAIL_REASON.MISSING_LEADER, FAIL_REASON.NOT_LEADER):
        return err.NO_LEADER
    if reason in (FAIL_REASON.DISCARDED, FAIL_REASON.LEADER_CHANGED):
        return err.LEADER_CHANGED
    if reason == FAIL_REASON.REQUEST_DENIED:
        return err.StoreError(grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: request denied")
    return err.StoreError(grpc.StatusCode.UNKNOWN, f"raft failure reason {reason}")

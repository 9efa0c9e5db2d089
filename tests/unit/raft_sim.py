"""A deterministic in-memory cluster for the Raft core (after etcd-io/raft's test network).

Flow of one delivery::

    Network.queue --(drop? cut? isolated?)--> core.step(msg) --> Sim.process(node):
      while core.has_ready(): rd = core.ready()
        DurableStore.save(rd)            # what survives crash(node)
        Network.send(rd.messages)        # msgpack round trip: nothing is shared by reference
                                         # (a leader may send before saving: see process)
        apply rd.snapshot, rd.committed  # SimNode.applied; a snapshot every K entries
        record rd.read_states
        core.advance(rd)
      SafetyChecker.after_step(sim)

Contracts:

- Everything random comes from one ``random.Random(seed)``: a run is a function of its
  seed and the calls made on the ``Sim``.
- ``crash(i)`` throws away the core and the applied state and rebuilds both from the
  node's ``DurableStore`` only (a snapshot, then the committed log is replayed).
- The ``SafetyChecker`` (raft_safety.py) runs on every persist, apply and step and
  raises ``SafetyViolation`` (with the seed and the recent trace) as soon as one of
  Raft's safety properties (Figure 3 of the paper) fails.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable, Iterable
from typing import Any

import msgpack

from raftstore.raft.core import RaftCore, Role
from raftstore.raft.types import (
    ClusterConfig,
    Entry,
    EntryKind,
    HardState,
    Message,
    MsgType,
    Ready,
    Snapshot,
    SnapshotMeta,
)
from tests.unit.raft_safety import SafetyChecker, SafetyViolation

# What a state machine records for each applied log entry: (term, kind, data).
Applied = tuple[int, int, bytes]


def config_of(ids: Iterable[int]) -> ClusterConfig:
    """A ClusterConfig with a made-up address per node id."""
    return ClusterConfig(tuple(sorted((i, f"10.0.0.{i}:2380") for i in ids)))


def encode_applied(applied: list[Applied]) -> bytes:
    packed: bytes = msgpack.packb([list(a) for a in applied], use_bin_type=True)
    return packed


def decode_applied(data: bytes) -> list[Applied]:
    return [(int(t), int(k), bytes(d)) for t, k, d in msgpack.unpackb(data, raw=False)]


def describe(m: Message) -> str:
    """A one-line summary of a message for traces."""
    s = f"{m.type.name} {m.frm}->{m.to} t{m.term}"
    if m.type in (MsgType.APP, MsgType.APP_RESP, MsgType.VOTE, MsgType.PRE_VOTE):
        s += f" i{m.index} lt{m.log_term}"
    if m.entries:
        s += f" e[{m.entries[0].index}..{m.entries[-1].index}]"
    if m.type in (MsgType.APP, MsgType.HEARTBEAT):
        s += f" c{m.commit}"
    if m.reject:
        s += f" REJECT(hint {m.reject_hint})"
    if m.context:
        s += f" ctx{m.context}"
    if m.snapshot is not None:
        s += f" snap@{m.snapshot.meta.index}t{m.snapshot.meta.term}"
    return s


class NotReached(AssertionError):
    """``run_until`` gave up: a liveness failure (the message carries the trace)."""


class DurableStore:
    """What survives a crash: hard state, the last snapshot, the log after it.

    ``save`` follows the Ready contract: a snapshot replaces the whole log, then entries
    overwrite the log from their first index, then the hard state is written.
    """

    def __init__(self, hard_state: HardState | None = None, snapshot: Snapshot | None = None,
                 entries: list[Entry] | None = None) -> None:
        self.hard_state = hard_state or HardState()
        self.snapshot = snapshot
        self.entries: list[Entry] = list(entries or [])

    def snap_index(self) -> int:
        return self.snapshot.meta.index if self.snapshot else 0

    def snap_term(self) -> int:
        return self.snapshot.meta.term if self.snapshot else 0

    def last_index(self) -> int:
        return self.entries[-1].index if self.entries else self.snap_index()

    def term(self, index: int) -> int | None:
        if index == self.snap_index():
            return self.snap_term()
        k = index - self.snap_index() - 1
        if 0 <= k < len(self.entries):
            return self.entries[k].term
        return None

    def save(self, rd: Ready) -> None:
        if rd.snapshot is not None:
            self.snapshot = rd.snapshot
            self.entries = []
        if rd.entries:
            keep = rd.entries[0].index - self.snap_index() - 1
            if not 0 <= keep <= len(self.entries):
                raise SafetyViolation(
                    f"Ready entries start at {rd.entries[0].index}, durable log is "
                    f"({self.snap_index()}, {self.last_index()}]")
            del self.entries[keep:]
            self.entries.extend(rd.entries)
        if rd.hard_state is not None:
            self.hard_state = rd.hard_state

    def compact(self, snapshot: Snapshot) -> None:
        """The state machine took ``snapshot``: it replaces the log up to its index."""
        self.entries = [e for e in self.entries if e.index > snapshot.meta.index]
        self.snapshot = snapshot


class SimNode:
    """One member: its durable store, its (volatile) core and state machine."""

    def __init__(self, node_id: int, boot_config: ClusterConfig, store: DurableStore) -> None:
        self.id = node_id
        self.boot_config = boot_config
        self.store = store
        self.core: RaftCore
        self.applied: list[Applied] = []        # volatile: rebuilt on crash
        self.reads: dict[int, int] = {}          # read context -> resolved index (-1: failed)
        self.snapshots_installed = 0
        self.crashes = 0
        self.crash_before_write = False          # crash at the next Ready, before the write

    def applied_index(self) -> int:
        return len(self.applied)

    def applied_data(self) -> list[bytes]:
        """The NORMAL entries' data, in order: what a client would see."""
        return [d for _, k, d in self.applied if k == EntryKind.NORMAL]


class Network:
    """Messages in flight, with loss, duplication, reordering and partitions."""

    def __init__(self, rng: random.Random, drop: float = 0.0, dup: float = 0.0,
                 reorder: bool = False) -> None:
        self.rng = rng
        self.drop = drop
        self.dup = dup
        self.reorder = reorder
        self.queue: collections.deque[tuple[int, int, bytes]] = collections.deque()
        self.cut_links: set[frozenset[int]] = set()
        self.isolated: set[int] = set()
        # extra drop rules: return True to drop the message
        self.filters: list[Callable[[Message], bool]] = []
        self.sent = 0
        self.dropped = 0

    def send(self, m: Message) -> None:
        self.sent += 1
        self.queue.append((m.frm, m.to, msgpack.packb(m.to_wire(), use_bin_type=True)))

    def connected(self, a: int, b: int) -> bool:
        if a == b:
            return True
        return (a not in self.isolated and b not in self.isolated
                and frozenset((a, b)) not in self.cut_links)

    def pop(self) -> Message | None:
        """The next message to deliver, or None if it was lost (or nothing is in flight)."""
        if not self.queue:
            return None
        if self.reorder and len(self.queue) > 1:
            k = self.rng.randrange(len(self.queue))
            self.queue.rotate(-k)
            item = self.queue.popleft()
            self.queue.rotate(k)
        else:
            item = self.queue.popleft()
        frm, to, wire = item
        if self.dup and self.rng.random() < self.dup:
            self.queue.append(item)  # delivered again later
        if not self.connected(frm, to) or (self.drop and self.rng.random() < self.drop):
            self.dropped += 1
            return None
        m = Message.from_wire(msgpack.unpackb(wire, raw=False))
        if any(f(m) for f in self.filters):
            self.dropped += 1
            return None
        return m

    def take(self, pred: Callable[[Message], bool]) -> list[Message]:
        """Remove the messages in flight that match ``pred`` and return them (decoded)."""
        taken: list[Message] = []
        kept: collections.deque[tuple[int, int, bytes]] = collections.deque()
        for item in self.queue:
            m = Message.from_wire(msgpack.unpackb(item[2], raw=False))
            if pred(m):
                taken.append(m)
            else:
                kept.append(item)
        self.queue = kept
        return taken

    def drop_next(self, pred: Callable[[Message], bool], count: int = 1) -> None:
        """Lose the next ``count`` messages that match ``pred``."""
        left = [count]

        def rule(m: Message) -> bool:
            if left[0] > 0 and pred(m):
                left[0] -= 1
                return True
            return False
        self.filters.append(rule)


class Sim:
    """N Raft cores, their durable stores and state machines, and a network between them.

    Scheduling (``step``): deliver one message in flight if there is one, else tick every
    node (so a tick is one "round trip" of time). Fault injection: ``drop``, ``dup``,
    ``reorder`` on the network; ``cut``/``isolate``/``partition``/``heal``; ``crash``.
    """

    def __init__(self, n: int = 3, seed: int = 0, *, election_ticks: int = 10,
                 snapshot_every: int = 0, drop: float = 0.0, dup: float = 0.0,
                 reorder: bool = False, pre_vote: bool = True, check_quorum: bool = True,
                 max_msg_bytes: int = 1 << 20, max_inflight: int = 256,
                 early_leader_send: bool = False, lazy_commit: bool = False,
                 trace_len: int = 400) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.net = Network(self.rng, drop, dup, reorder)
        self.core_options: dict[str, Any] = dict(
            election_ticks=election_ticks, pre_vote=pre_vote, check_quorum=check_quorum,
            max_msg_bytes=max_msg_bytes, max_inflight=max_inflight)
        self.snapshot_every = snapshot_every
        self.early_leader_send = early_leader_send
        self.lazy_commit = lazy_commit
        self.trace: collections.deque[str] = collections.deque(maxlen=trace_len)
        self.checker = SafetyChecker(self)
        self.nodes: dict[int, SimNode] = {}
        self.steps = 0
        self.ticks = 0
        self._next_ctx = 0
        self._next_data = 0
        config = config_of(range(1, n + 1))
        for i in range(1, n + 1):
            self.add_node(i, config)

    # ------------------------------------------------------------------ nodes
    def add_node(self, node_id: int, boot_config: ClusterConfig,
                 store: DurableStore | None = None) -> SimNode:
        """Start a member (a fresh one, or one with a crafted durable store)."""
        node = SimNode(node_id, boot_config, store or DurableStore())
        self.nodes[node_id] = node
        self.checker.register_store(node)
        self._boot(node)
        return node

    def remove_node(self, node_id: int) -> None:
        """Stop simulating a member for good (after it was removed from the cluster)."""
        del self.nodes[node_id]
        self.checker.leader_tail.pop(node_id, None)
        self.note(f"remove node {node_id}")

    def _boot(self, node: SimNode) -> None:
        st = node.store
        node.core = RaftCore(
            node.id, node.boot_config, st.hard_state, st.snapshot, list(st.entries),
            rng=random.Random(self.rng.getrandbits(64)),
            snapshot_source=lambda: node.store.snapshot,
            **self.core_options)
        node.applied = decode_applied(st.snapshot.data) if st.snapshot else []
        self.checker.on_crash(node)
        self.process(node.id)

    def crash(self, node_id: int) -> None:
        """Lose everything but the durable store, and restart from it."""
        node = self.nodes[node_id]
        node.crashes += 1
        self.note(f"CRASH {node_id} (durable: {node.store.hard_state}, log "
                  f"({node.store.snap_index()}, {node.store.last_index()}])")
        self._boot(node)

    def core(self, node_id: int) -> RaftCore:
        return self.nodes[node_id].core

    # ------------------------------------------------------------------ the Ready loop
    def process(self, node_id: int) -> None:
        """Drain the node's Ready: persist, send, apply, advance (the documented order).

        With ``early_leader_send``, a leader whose term and vote are already durable
        sends before it writes (as raftstore/_node.py does); with ``lazy_commit``, a
        Ready whose only change is the commit index writes nothing (as _node.py: the
        commit index is relearned after a crash). ``crash_before_write`` on a node
        crashes it at its next Ready after any early send, before the write.
        """
        node = self.nodes[node_id]
        core = node.core
        while core.has_ready():
            rd = core.ready()
            new_term_or_vote = rd.hard_state is not None and (
                (rd.hard_state.term, rd.hard_state.vote)
                != (node.store.hard_state.term, node.store.hard_state.vote))
            early = (self.early_leader_send and core.role == Role.LEADER
                     and not new_term_or_vote)
            if early:
                for m in rd.messages:
                    self.net.send(m)
            if node.crash_before_write:
                node.crash_before_write = False
                self.note(f"node {node_id} crashes before writing its Ready "
                          f"({len(rd.entries)} entries, {len(rd.messages) if early else 0} "
                          f"messages already sent)")
                self.crash(node_id)
                return
            if rd.entries or rd.snapshot is not None or new_term_or_vote or not self.lazy_commit:
                node.store.save(rd)
            self.checker.on_persist(node, rd)
            if not early:
                for m in rd.messages:
                    self.net.send(m)
            if rd.snapshot is not None:
                applied = decode_applied(rd.snapshot.data)
                if len(applied) != rd.snapshot.meta.index:
                    raise SafetyViolation(f"snapshot at {rd.snapshot.meta.index} holds "
                                          f"{len(applied)} entries")
                self.checker.on_snapshot_applied(node, applied)
                node.applied = applied
                node.snapshots_installed += 1
                self.note(f"node {node_id} installed snapshot@{rd.snapshot.meta.index}")
            for e in rd.committed:
                rec = (e.term, int(e.kind), e.data)
                self.checker.on_apply(node, e.index, rec)
                node.applied.append(rec)
            for rs in rd.read_states:
                self.checker.on_read_state(node, rs.context, rs.index)
                node.reads[rs.context] = rs.index
            core.advance(rd)
            self._maybe_snapshot(node)

    def _maybe_snapshot(self, node: SimNode) -> None:
        k = self.snapshot_every
        if not k or node.applied_index() - node.store.snap_index() < k:
            return
        index = node.applied_index()
        term = node.core.log.term(index)
        assert term is not None
        snap = Snapshot(SnapshotMeta(index, term, node.core.config),
                        encode_applied(node.applied))
        node.store.compact(snap)
        node.core.compact(index)

    # ------------------------------------------------------------------ inputs
    def tick(self, node_id: int | None = None) -> None:
        """One heartbeat interval passes on one node, or on every node."""
        ids = [node_id] if node_id is not None else list(self.nodes)
        if node_id is None:
            self.ticks += 1
        for i in ids:
            self.nodes[i].core.tick()
            self.process(i)

    def deliver_one(self) -> bool:
        """Deliver (or lose) one message in flight; False if nothing was in flight."""
        if not self.net.queue:
            return False
        m = self.net.pop()
        if m is not None and m.to in self.nodes:
            self.note(describe(m))
            self.nodes[m.to].core.step(m)
            self.process(m.to)
        return True

    def deliver(self, m: Message) -> None:
        """Deliver one given message now (for hand-made orderings and duplicates)."""
        self.note("hand-delivered " + describe(m))
        self.nodes[m.to].core.step(m)
        self.process(m.to)
        self.checker.after_step()

    def deliver_all(self, max_msgs: int = 100_000) -> None:
        """Deliver until nothing is in flight (including what the deliveries send)."""
        for _ in range(max_msgs):
            if not self.deliver_one():
                return
            self.checker.after_step()
        raise AssertionError(f"network never went quiet (seed {self.seed})")

    def propose(self, node_id: int, data: bytes | None = None) -> bytes:
        """Propose one NORMAL entry at ``node_id``; returns its (unique) data."""
        if data is None:
            self._next_data += 1
            data = b"v%d" % self._next_data
        ok = self.nodes[node_id].core.propose([data])
        self.note(f"propose {data!r} at {node_id}: {ok}")
        self.process(node_id)
        self.checker.after_step()
        return data

    def propose_config(self, node_id: int, ids: Iterable[int]) -> bool:
        config = config_of(ids)
        ok = self.nodes[node_id].core.propose_config(config)
        self.note(f"propose config {sorted(config.ids)} at {node_id}: {ok}")
        self.process(node_id)
        return ok

    def read_index(self, node_id: int) -> int:
        """Ask ``node_id`` for a read index; returns the context to look up in ``reads``."""
        self._next_ctx += 1
        ctx = self._next_ctx
        self.checker.on_read_requested(ctx)
        self.note(f"read_index ctx{ctx} at {node_id}")
        self.nodes[node_id].core.read_index(ctx)
        self.process(node_id)
        return ctx

    # ------------------------------------------------------------------ faults
    def cut(self, a: int, b: int) -> None:
        self.net.cut_links.add(frozenset((a, b)))
        self.note(f"cut {a}-{b}")

    def isolate(self, node_id: int) -> None:
        self.net.isolated.add(node_id)
        self.note(f"isolate {node_id}")

    def partition(self, *groups: Iterable[int]) -> None:
        """Cut every link between different groups."""
        gs = [set(g) for g in groups]
        for x, ga in enumerate(gs):
            for gb in gs[x + 1:]:
                for a in ga:
                    for b in gb:
                        self.net.cut_links.add(frozenset((a, b)))
        self.note(f"partition {[sorted(g) for g in gs]}")

    def heal(self) -> None:
        self.net.cut_links.clear()
        self.net.isolated.clear()
        self.net.filters.clear()
        self.note("heal")

    # ------------------------------------------------------------------ driving
    def step(self) -> None:
        """Deliver one message if any is in flight, else tick every node."""
        self.steps += 1
        if not self.deliver_one():
            self.tick()
        self.checker.after_step()

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def run_until(self, pred: Callable[[], bool], max_steps: int = 20_000,
                  what: str = "condition") -> int:
        """Step until ``pred()``; returns the steps taken, fails with the trace if never."""
        for n in range(max_steps):
            if pred():
                return n
            self.step()
        if pred():
            return max_steps
        raise NotReached(f"{what} not reached within {max_steps} steps\n{self.report()}")

    def run_ticks(self, ticks: int) -> None:
        """Run until ``ticks`` more rounds of ticks have passed."""
        end = self.ticks + ticks
        while self.ticks < end:
            self.step()

    # ------------------------------------------------------------------ queries
    def leaders(self) -> list[int]:
        return [i for i, n in self.nodes.items() if n.core.role == Role.LEADER]

    def leader(self) -> int | None:
        """The leader of the highest term among the nodes that think they lead."""
        ls = self.leaders()
        return max(ls, key=lambda i: self.nodes[i].core.term) if ls else None

    def ready_leader(self, among: Iterable[int] | None = None) -> int | None:
        """A leader that has committed an entry of its own term (so it can serve reads)."""
        ids = set(among) if among is not None else set(self.nodes)
        for i in self.leaders():
            c = self.nodes[i].core
            if i in ids and c.log.term(c.log.committed) == c.term:
                return i
        return None

    def wait_leader(self, among: Iterable[int] | None = None, max_steps: int = 20_000) -> int:
        ids = list(among) if among is not None else None
        self.run_until(lambda: self.ready_leader(ids) is not None, max_steps, "a leader")
        leader = self.ready_leader(ids)
        assert leader is not None
        return leader

    def all_applied(self, ids: Iterable[int] | None = None) -> bool:
        """A leader exists and every node in ``ids`` applied its whole log."""
        ids = list(ids) if ids is not None else list(self.nodes)
        lead = self.leader()
        if lead is None:
            return False
        last = self.nodes[lead].core.log.last_index()
        return all(self.nodes[i].applied_index() == last for i in ids)

    def durable_log(self, node_id: int) -> list[tuple[int, int]]:
        """(index, term) of the node's durable log after its snapshot."""
        return [(e.index, e.term) for e in self.nodes[node_id].store.entries]

    def note(self, event: str) -> None:
        self.trace.append(f"[{self.steps}] {event}")

    def report(self) -> str:
        lines = [f"seed {self.seed}, step {self.steps}, tick {self.ticks}"]
        for i, n in sorted(self.nodes.items()):
            c = n.core
            lines.append(
                f"  node {i}: {c.role.name} term {c.term} vote {c.vote} leader {c.leader} "
                f"log ({c.log.snap_index}, {c.log.last_index()}] commit {c.log.committed} "
                f"applied {n.applied_index()} config {sorted(c.config.ids)}")
        lines.append("trace (oldest first):")
        lines.extend(f"  {t}" for t in self.trace)
        return "\n".join(lines)

"""Raft's safety properties (Figure 3 of the paper), checked incrementally on a ``Sim``.

The ``Sim`` calls ``on_persist`` after each durable write, ``on_apply`` /
``on_snapshot_applied`` as its state machines advance, ``on_crash`` after a restart, the
``on_read_*`` hooks for ReadIndex, and ``after_step`` after every step. Each check is
incremental, so that every step of every test can afford all of them:

- Election Safety: the leader of each term, as first seen, is the only one ever seen.
- Leader Append-Only: a leader's last entry at one step is still in its log at the next.
- Log Matching: every (index, term) ever persisted anywhere names one entry with one
  predecessor term. By induction on the index, two logs that share an (index, term) are
  then identical up to it -- the property itself, without comparing logs pairwise.
- Leader Completeness: a new leader holds every entry seen committed in an earlier term.
- State Machine Safety: every applied sequence is a prefix of the longest one applied.
- Commit indexes never go back on a node, nor in its durable hard state; a restarted node
  starts from exactly its durable commit, which never points past its durable log.
- ReadIndex: a read resolves at or above the highest commit seen when it was requested.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from raftstore.raft.core import Role
from raftstore.raft.types import Ready

if TYPE_CHECKING:
    from tests.unit.raft_sim import Applied, Sim, SimNode


class SafetyViolation(AssertionError):
    """One of Raft's safety properties failed."""


class SafetyChecker:
    """Raft's safety properties, checked as the run goes (see the module docstring)."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.leaders: dict[int, int] = {}                          # term -> leader
        self.entries: dict[tuple[int, int], tuple[int, int, bytes]] = {}  # (i,t)->(prev t, k, d)
        self.committed: dict[int, int] = {}                        # index -> term
        self.commit_term: dict[int, int] = {}                      # index -> term it was seen
        self.max_commit = 0
        self.canonical: list[Applied] = []                         # the longest applied seq
        self.last_commit: dict[int, int] = {}
        self.durable_commit: dict[int, int] = {}
        self.leader_tail: dict[int, tuple[int, int, int]] = {}      # node -> (term, idx, t)
        self.read_floor: dict[int, int] = {}                       # read ctx -> floor

    def fail(self, what: str) -> NoReturn:
        raise SafetyViolation(f"{what}\n{self.sim.report()}")

    # -- Log Matching: an (index, term) names one entry, with one predecessor term
    def on_persist(self, node: SimNode, rd: Ready) -> None:
        st = node.store
        if rd.snapshot is not None:
            meta = rd.snapshot.meta
            self._check_committed(meta.index, meta.term, node.core.term, f"snapshot@{node.id}")
        if rd.entries:
            prev = st.term(rd.entries[0].index - 1)
            for e in rd.entries:
                if prev is None:
                    self.fail(f"node {node.id} persisted {e} without its predecessor")
                want = (prev, int(e.kind), e.data)
                got = self.entries.setdefault((e.index, e.term), want)
                if got != want:
                    self.fail(f"Log Matching: node {node.id} persisted ({e.index}, t{e.term}) "
                              f"as {want}, another log has {got}")
                prev = e.term
        hs = st.hard_state
        if hs.commit < self.durable_commit.get(node.id, 0):
            self.fail(f"node {node.id}: durable commit went back from "
                      f"{self.durable_commit[node.id]} to {hs.commit}")
        self.durable_commit[node.id] = hs.commit
        if hs.commit > st.last_index():
            self.fail(f"node {node.id}: durable commit {hs.commit} is past its durable log "
                      f"(last {st.last_index()})")

    def register_store(self, node: SimNode) -> None:
        """Crafted logs (Figure 7, 8) enter the Log Matching map too."""
        prev = node.store.snap_term()
        for e in node.store.entries:
            want = (prev, int(e.kind), e.data)
            got = self.entries.setdefault((e.index, e.term), want)
            if got != want:
                self.fail(f"crafted log of node {node.id} disagrees at ({e.index}, t{e.term})")
            prev = e.term

    # -- State Machine Safety: every applied sequence is a prefix of the longest one
    def _check_committed(self, index: int, term: int, at_term: int, who: str) -> None:
        if index == 0:
            return
        got = self.committed.setdefault(index, term)
        if got != term:
            self.fail(f"{who}: index {index} committed with term {term}, earlier with {got}")
        self.commit_term[index] = min(self.commit_term.get(index, at_term), at_term)
        self.max_commit = max(self.max_commit, index)

    def on_apply(self, node: SimNode, index: int, rec: Applied) -> None:
        if index != len(node.applied) + 1:
            self.fail(f"node {node.id} applied index {index} after {len(node.applied)}")
        if index <= len(self.canonical):
            if self.canonical[index - 1] != rec:
                self.fail(f"State Machine Safety: node {node.id} applied {rec} at {index}, "
                          f"another node applied {self.canonical[index - 1]}")
        else:
            self.canonical.append(rec)
        self._check_committed(index, rec[0], node.core.term, f"apply@{node.id}")

    def on_snapshot_applied(self, node: SimNode, applied: list[Applied]) -> None:
        for k, rec in enumerate(applied):
            if k < len(self.canonical):
                if self.canonical[k] != rec:
                    self.fail(f"State Machine Safety: snapshot on node {node.id} has {rec} at "
                              f"{k + 1}, another node applied {self.canonical[k]}")
            else:
                self.canonical.append(rec)

    # -- ReadIndex: a read point covers every write committed before the read began
    def on_read_requested(self, ctx: int) -> None:
        self.read_floor[ctx] = self.max_commit

    def on_read_state(self, node: SimNode, ctx: int, index: int) -> None:
        floor = self.read_floor.get(ctx)
        if floor is not None and index >= 0 and index < floor:
            self.fail(f"ReadIndex: node {node.id} read {ctx} resolved at {index}, but "
                      f"{floor} was committed before the read began")

    # -- after every step
    def on_crash(self, node: SimNode) -> None:
        core = node.core
        want = max(min(node.store.hard_state.commit, node.store.last_index()),
                   node.store.snap_index())
        if core.log.committed != want:
            self.fail(f"node {node.id} restarted with commit {core.log.committed}, "
                      f"durable commit is {want}")
        self.last_commit[node.id] = core.log.committed
        self.leader_tail.pop(node.id, None)

    def after_step(self) -> None:
        for node in self.sim.nodes.values():
            core = node.core
            c = core.log.committed
            last = self.last_commit.get(node.id, 0)
            if c < last:
                self.fail(f"node {node.id}: commit index went back from {last} to {c}")
            for j in range(max(last + 1, core.log.snap_index + 1), c + 1):
                t = core.log.term(j)
                assert t is not None
                self._check_committed(j, t, core.term, f"commit@{node.id}")
            self.last_commit[node.id] = c
            if core.role == Role.LEADER:
                self._check_leader(node)
            else:
                self.leader_tail.pop(node.id, None)

    def _check_leader(self, node: SimNode) -> None:
        core = node.core
        other = self.leaders.setdefault(core.term, node.id)
        if other != node.id:
            self.fail(f"Election Safety: nodes {other} and {node.id} both lead term {core.term}")
        tail = self.leader_tail.get(node.id)
        if tail is None or tail[0] != core.term:
            # Leader Completeness: entries committed in earlier terms are in the new leader
            for i, t in self.committed.items():
                if self.commit_term[i] >= core.term or i <= core.log.snap_index:
                    continue
                if core.log.term(i) != t:
                    self.fail(f"Leader Completeness: new leader {node.id} (term {core.term}) "
                              f"has term {core.log.term(i)} at {i}, committed with term {t}")
        elif tail[1] > core.log.snap_index and core.log.term(tail[1]) != tail[2]:
            # Leader Append-Only
            self.fail(f"Leader Append-Only: leader {node.id} changed entry {tail[1]} "
                      f"(term {tail[2]} -> {core.log.term(tail[1])})")
        self.leader_tail[node.id] = (core.term, core.log.last_index(), core.log.last_term())

"""Randomized safety tests of the Raft core: many seeded schedules of faults on the ``Sim``.

Two profiles, each a table of weighted actions:

- ``BROAD`` (200 seeds x 300 steps): each seed picks a cluster (3 or 5 nodes, timeouts,
  snapshot interval, entries per message, pipeline depth, pre-vote and check-quorum on or
  off, loss/duplication/reordering rates, and whether a node's Ready handling takes
  raftstore/_node.py's two liberties: a leader sending before its own write, a commit
  index not written on its own) and mixes deliveries, ticks of single nodes, election
  timers firing, chosen message losses, proposals and reads anywhere, crashes (of one
  node, of every node, of a node that stepped a message but has not handled its Ready,
  of a leader between its early send and its write), membership changes, isolations,
  cut links, partitions and heals.
- ``CHURN`` (40 seeds x 3000 steps): three nodes, one entry per message, constant
  isolation and healing and early election timeouts: leaders come and go before they
  replicate, which is what Figure 8-shaped histories need (found by mutation testing:
  this profile catches a leader that commits earlier-term entries by counting replicas,
  which the broad one practically never does).

``raft_safety.SafetyChecker`` checks Election Safety, Leader Append-Only, Log Matching,
Leader Completeness, State Machine Safety, commit-index monotonicity and ReadIndex after
every step. Then the faults stop and the members must converge (liveness). A failure
names the seed, the node states and the recent trace; ``run_profile(profile, seed)``
replays it exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from raftstore.raft.types import ClusterConfig
from tests.unit.raft_safety import SafetyViolation
from tests.unit.raft_sim import NotReached, Sim

Action = Callable[[Sim, random.Random], None]


# ------------------------------------------------------------------ actions
def step(sim: Sim, rng: random.Random) -> None:
    sim.step()


def tick_one(sim: Sim, rng: random.Random) -> None:
    sim.tick(rng.choice(sorted(sim.nodes)))


def timeout_now(sim: Sim, rng: random.Random) -> None:
    """A node's election timer fires now (clock skew): it campaigns."""
    node = rng.choice(sorted(sim.nodes))
    sim.note(f"election timeout at {node}")
    sim.core(node).campaign()
    sim.process(node)


def lose_one(sim: Sim, rng: random.Random) -> None:
    """Lose one message in flight, chosen by the scheduler rather than by a rate."""
    q = sim.net.queue
    if q:
        k = rng.randrange(len(q))
        q.rotate(-k)
        frm, to, _ = q.popleft()
        q.rotate(k)
        sim.note(f"lost a message {frm}->{to}")


def propose(sim: Sim, rng: random.Random) -> None:
    sim.propose(rng.choice(sorted(sim.nodes)))


def read(sim: Sim, rng: random.Random) -> None:
    sim.read_index(rng.choice(sorted(sim.nodes)))


def crash_one(sim: Sim, rng: random.Random) -> None:
    sim.crash(rng.choice(sorted(sim.nodes)))


def crash_all(sim: Sim, rng: random.Random) -> None:
    for i in sorted(sim.nodes):
        sim.crash(i)


def crash_before_ready(sim: Sim, rng: random.Random) -> None:
    """Deliver one message, then crash its receiver before it persists anything."""
    m = sim.net.pop()
    if m is None or m.to not in sim.nodes:
        return
    sim.note(f"(then crash before its Ready) {m.type.name} {m.frm}->{m.to}")
    sim.core(m.to).step(m)
    sim.crash(m.to)


def crash_leader_before_write(sim: Sim, rng: random.Random) -> None:
    """A proposal reaches the leader, which sends it on (if it may send early) and then
    crashes before its own write is durable."""
    lead = sim.leader()
    if lead is not None:
        sim.nodes[lead].crash_before_write = True
        sim.propose(lead)


def change_membership(sim: Sim, rng: random.Random) -> None:
    """Add a spare id or remove a member, one at a time, at the current leader. A removed
    node keeps running, and may be added back later with its old log.

    A new node starts with an empty configuration (not a voter until it applies the
    entry that adds it). Starting it with the new voter set instead -- before that set
    is committed, or when the change never happens -- lets it win an election by votes
    that are no majority of the real configuration: BROAD seeds 1718 and 1992 (of the
    first 2200) then break Leader Completeness."""
    lead = sim.leader()
    if lead is None:
        return
    members = set(sim.core(lead).config.ids)
    spare = [i for i in range(1, 7) if i not in members]
    if len(members) <= 3 or (len(members) < 5 and rng.random() < 0.5):
        new = spare[0]
        if new not in sim.nodes:  # a joiner knows no configuration: it learns it (etcd)
            sim.add_node(new, ClusterConfig())
        sim.propose_config(lead, members | {new})
    else:
        sim.propose_config(lead, members - {rng.choice(sorted(members))})


def isolate_one(sim: Sim, rng: random.Random) -> None:
    sim.isolate(rng.choice(sorted(sim.nodes)))


def isolate_only_one(sim: Sim, rng: random.Random) -> None:
    """Heal, then isolate one node: at most one node is cut off at a time."""
    sim.heal()
    sim.isolate(rng.choice(sorted(sim.nodes)))


def cut_link(sim: Sim, rng: random.Random) -> None:
    a, b = rng.sample(sorted(sim.nodes), 2)
    sim.cut(a, b)


def partition(sim: Sim, rng: random.Random) -> None:
    ids = sorted(sim.nodes)
    group = rng.sample(ids, rng.randrange(1, len(ids)))
    sim.partition(group, [i for i in ids if i not in group])


def heal(sim: Sim, rng: random.Random) -> None:
    sim.heal()


# ------------------------------------------------------------------ profiles
@dataclass(frozen=True)
class Profile:
    """How to build a cluster for a seed, and the weighted actions of its storm."""

    name: str
    steps: int
    cluster: Callable[[int, random.Random], Sim]
    actions: tuple[tuple[Action, float], ...]


def broad_cluster(seed: int, rng: random.Random) -> Sim:
    return Sim(rng.choice([3, 3, 5]), seed, election_ticks=rng.choice([3, 5, 10]),
               snapshot_every=rng.choice([0, 3, 8]), drop=rng.choice([0.0, 0.05, 0.2]),
               dup=rng.choice([0.0, 0.0, 0.1]), reorder=rng.random() < 0.5,
               max_msg_bytes=rng.choice([1, 1 << 20]), max_inflight=rng.choice([1, 3, 256]),
               pre_vote=rng.random() < 0.8, check_quorum=rng.random() < 0.8,
               early_leader_send=rng.random() < 0.5, lazy_commit=rng.random() < 0.5)


def churn_cluster(seed: int, rng: random.Random) -> Sim:
    options: dict[str, Any] = dict(
        pre_vote=rng.random() < 0.3, check_quorum=rng.random() < 0.3,
        early_leader_send=rng.random() < 0.5, lazy_commit=rng.random() < 0.5)
    return Sim(3, seed, election_ticks=3, max_msg_bytes=1,
               snapshot_every=rng.choice([0, 0, 5]), reorder=rng.random() < 0.5, **options)


BROAD = Profile("broad", 300, broad_cluster, (
    (step, 55), (tick_one, 9), (timeout_now, 2), (lose_one, 2), (propose, 12), (read, 3),
    (crash_one, 3), (crash_before_ready, 1), (crash_leader_before_write, 1),
    (crash_all, 0.5), (change_membership, 1.5),
    (isolate_one, 3), (cut_link, 2), (partition, 2), (heal, 4),
))
CHURN = Profile("churn", 3000, churn_cluster, (
    (step, 60), (propose, 10), (heal, 12), (isolate_only_one, 12), (timeout_now, 6),
    (crash_one, 0.5), (crash_leader_before_write, 0.5), (read, 1),
))


def run_profile(profile: Profile, seed: int) -> Sim:
    """Build the seed's cluster, run the storm, then require convergence."""
    rng = random.Random(seed * 7919 + len(profile.name))
    sim = profile.cluster(seed, rng)
    actions = [a for a, _ in profile.actions]
    weights = [w for _, w in profile.actions]
    try:
        for _ in range(profile.steps):
            rng.choices(actions, weights)[0](sim, rng)
            sim.checker.after_step()
        converge(sim)
    except (SafetyViolation, NotReached) as e:
        raise type(e)(f"profile {profile.name}, seed {seed}: {e}") from None
    except Exception as e:  # the core itself blew up: name the seed and show the trace
        raise AssertionError(f"profile {profile.name}, seed {seed}: "
                             f"{type(e).__name__}: {e}\n{sim.report()}") from e
    return sim


def converge(sim: Sim) -> None:
    """Stop the faults; then every member of the leader's configuration must apply the
    whole log (liveness after the storm). Removed nodes keep running."""
    sim.heal()
    sim.net.drop = sim.net.dup = 0.0
    lead = sim.wait_leader(max_steps=10_000)
    sim.propose(lead)

    def members_applied() -> bool:
        lead = sim.leader()
        return lead is not None and sim.all_applied(
            i for i in sim.core(lead).config.ids if i in sim.nodes)
    sim.run_until(members_applied, 10_000, "convergence after the faults stopped")


@pytest.mark.parametrize("seed", range(200))
def test_randomized_safety(seed: int) -> None:
    """Figure 3's properties hold after every step of a random schedule: "Election Safety",
    "Leader Append-Only", "Log Matching", "Leader Completeness", "State Machine Safety";
    commit indexes never go back (but a restart starts from the durable one); every
    ReadIndex is at least the commit index known anywhere when the read began."""
    run_profile(BROAD, seed)


@pytest.mark.parametrize("seed", range(40))
def test_randomized_safety_under_leader_churn(seed: int) -> None:
    """The same properties while leaders come and go before they replicate: "a leader
    cannot immediately conclude that an entry from a previous term is committed once it
    is stored on a majority of servers" (§5.4.2, Figure 8)."""
    run_profile(CHURN, seed)

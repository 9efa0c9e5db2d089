"""The linearizability checker on known histories, then on large generated ones.

Notation in the tables: ``W(c, v, t0, t1)`` is client c writing v during [t0, t1];
``t1 = U`` means the outcome is unknown (timeout, crash). Intervals that merely touch
count as concurrent.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Hashable
from typing import Any

import pytest

from tests.store.linearizability import (
    UNKNOWN,
    Operation,
    Register,
    RevisionedRegister,
    Verdict,
    check_history,
    check_per_key,
    revision_conflicts,
    validate,
)

U = UNKNOWN


def R(c: int, out: Any, t0: float, t1: float, key: Hashable = None) -> Operation:
    return Operation(c, "read", None, out, t0, t1, key)


def W(c: int, v: Any, t0: float, t1: float, out: Any = None, key: Hashable = None
      ) -> Operation:
    return Operation(c, "write", v, out, t0, t1, key)


def CAS(c: int, expected: Any, new: Any, ok: bool | None, t0: float, t1: float) -> Operation:
    return Operation(c, "cas", (expected, new), ok, t0, t1)


REGISTER_CASES = [
    # (name, history, linearizable?)
    ("empty", [], True),
    ("read of the initial value", [R(1, None, 0, 1)], True),
    ("sequential write then read", [W(1, 1, 0, 1), R(2, 1, 2, 3)], True),
    ("stale read after a newer write returned",
     [W(1, 1, 0, 1), W(1, 2, 2, 3), R(2, 1, 4, 5)], False),
    ("lost write: acknowledged, then read as absent", [W(1, 1, 0, 1), R(2, None, 2, 3)], False),
    ("phantom value never written", [W(1, 1, 0, 1), R(2, 7, 2, 3)], False),
    ("read concurrent with a write sees the old value",
     [W(1, 1, 0, 10), R(2, None, 1, 2), R(2, 1, 3, 4)], True),
    ("read concurrent with a write sees the new value",
     [W(1, 1, 0, 10), R(2, 1, 1, 2), R(3, None, 1.5, 2.5)], True),
    ("reads concurrent with a write cannot go back in time",
     [W(1, 1, 0, 10), R(2, 1, 1, 2), R(2, None, 3, 4)], False),
    ("touching intervals count as concurrent", [W(1, 1, 0, 1), R(2, None, 1, 2)], True),
    ("observers disagree on the order of two concurrent writes",
     [W(1, 1, 0, 10), W(2, 2, 0, 10), R(3, 1, 1, 2), R(3, 2, 3, 4),
      R(4, 2, 1, 2), R(4, 1, 3, 4)], False),
    ("observers agree on the order of two concurrent writes",
     [W(1, 1, 0, 10), W(2, 2, 0, 10), R(3, 1, 1, 2), R(3, 2, 3, 4),
      R(4, 1, 1, 2), R(4, 2, 3, 4)], True),
    ("cas succeeds on the current value",
     [W(1, 0, 0, 1), CAS(2, 0, 5, True, 2, 3), R(1, 5, 4, 5)], True),
    ("cas fails on another value", [W(1, 0, 0, 1), CAS(2, 3, 5, False, 2, 3), R(1, 0, 4, 5)],
     True),
    ("cas reports failure although the value matched",
     [W(1, 0, 0, 1), CAS(2, 0, 5, False, 2, 3)], False),
    ("cas reports success although the value differed",
     [W(1, 0, 0, 1), CAS(2, 3, 5, True, 2, 3)], False),
    ("two sequential cas from the same value both succeed",
     [W(1, 0, 0, 1), CAS(2, 0, 5, True, 2, 3), CAS(3, 0, 6, True, 4, 5)], False),
    ("two concurrent cas from the same value both succeed",
     [W(1, 0, 0, 1), CAS(2, 0, 5, True, 2, 6), CAS(3, 0, 6, True, 3, 7)], False),
    ("two concurrent cas from the same value: one wins",
     [W(1, 0, 0, 1), CAS(2, 0, 5, False, 2, 6), CAS(3, 0, 6, True, 3, 7), R(1, 6, 8, 9)],
     True),
    ("cas succeeded but its value was never visible",
     [W(1, 0, 0, 1), CAS(2, 0, 5, True, 2, 3), R(1, 0, 4, 5)], False),
    ("chained cas across clients",
     [W(1, 0, 0, 1), CAS(2, 0, 1, True, 2, 3), CAS(3, 1, 2, True, 4, 5),
      CAS(1, 1, 3, False, 6, 7), R(2, 2, 8, 9)], True),
    ("unknown-outcome write that later appears", [W(1, 1, 0, U), R(2, 1, 5, 6)], True),
    ("unknown-outcome write that never appears",
     [W(1, 1, 0, U), R(2, None, 5, 6), R(2, None, 7, 8)], True),
    ("unknown-outcome write appearing late, after reads missed it",
     [W(1, 1, 0, U), R(2, None, 5, 6), R(2, 1, 7, 8)], True),
    ("unknown-outcome write appears, then vanishes",
     [W(1, 1, 0, U), R(2, 1, 2, 3), R(2, None, 4, 5)], False),
    ("unknown-outcome write seen before it was called",
     [R(2, 1, 0, 1), W(1, 1, 2, U)], False),
    ("unknown-outcome write overwritten by a later write, then resurfacing",
     [W(1, 1, 0, U), R(2, 1, 2, 3), W(2, 2, 4, 5), R(3, 1, 6, 7)], False),
    ("unknown-outcome write may land after a later acknowledged one",
     [W(1, 1, 0, U), W(2, 2, 4, 5), R(3, 1, 6, 7)], True),
    ("a client goes on after an unknown outcome",
     [W(1, 1, 0, U), W(1, 2, 1, 2), R(1, 2, 3, 4), R(1, 1, 5, 6)], True),
    ("unknown-outcome cas that took effect", [W(1, 0, 0, 1), CAS(2, 0, 5, None, 2, U),
                                              R(1, 5, 4, 5)], True),
    ("unknown-outcome cas that did not take effect",
     [W(1, 0, 0, 1), CAS(2, 0, 5, None, 2, U), R(1, 0, 4, 5), W(1, 7, 6, 7), R(1, 7, 8, 9)],
     True),
    ("unknown-outcome cas whose compare could not hold",
     [W(1, 0, 0, 1), CAS(2, 3, 5, None, 2, U), R(1, 5, 4, 5)], False),
    ("unknown-outcome read constrains nothing",
     [W(1, 1, 0, 1), R(2, 99, 2, U), R(2, 1, 3, 4)], True),
]


@pytest.mark.parametrize(("history", "linearizable"),
                         [pytest.param(h, ok, id=name) for name, h, ok in REGISTER_CASES])
def test_register_histories(history: list[Operation], linearizable: bool) -> None:
    result = check_history(history, Register())
    assert result.ok is linearizable, result.explain()
    if linearizable:
        placed = {id(op) for op in result.linearization}
        assert len(placed) == len(result.linearization)
        assert placed >= {id(op) for op in history if not op.unknown}
        assert placed <= {id(op) for op in history}
    else:
        assert result.verdict is Verdict.NOT_LINEARIZABLE
        assert result.blocked in history


def test_register_witness_respects_real_time() -> None:
    history = [W(1, 1, 0, 10), W(2, 2, 0, 10), R(3, 1, 1, 2), R(3, 2, 3, 4)]
    order = check_history(history, Register()).linearization
    assert [(o.op, o.input, o.output) for o in order] == [
        ("write", 1, None), ("read", None, 1), ("write", 2, None), ("read", None, 2)]


def test_register_with_initial_value() -> None:
    assert check_history([R(1, 0, 0, 1)], Register(initial=0)).ok
    assert not check_history([R(1, None, 0, 1)], Register(initial=0)).ok


def Rv(c: int, value: Any, rev: int, t0: float, t1: float) -> Operation:
    return Operation(c, "read", None, (value, rev), t0, t1)


def Wv(c: int, value: Any, rev: int | None, t0: float, t1: float) -> Operation:
    return Operation(c, "write", value, rev, t0, t1)


def CASv(c: int, target: str, expected: Any, new: Any, out: tuple[bool, int | None] | None,
         t0: float, t1: float) -> Operation:
    return Operation(c, "cas", (target, expected, new), out, t0, t1)


REVISIONED_CASES = [
    ("absent key reads (None, 0)", [Rv(1, None, 0, 0, 1)], True),
    ("read returns the write's revision", [Wv(1, "a", 5, 0, 1), Rv(2, "a", 5, 2, 3)], True),
    ("read returns another revision for the same write",
     [Wv(1, "a", 5, 0, 1), Rv(2, "a", 6, 2, 3)], False),
    ("revisions of one key go backwards", [Wv(1, "a", 5, 0, 1), Wv(1, "b", 4, 2, 3)], False),
    ("revision reused by a later write", [Wv(1, "a", 5, 0, 1), Wv(1, "b", 5, 2, 3)], False),
    ("mod_revision cas on the current revision",
     [Wv(1, "a", 5, 0, 1), CASv(2, "mod_revision", 5, "b", (True, 6), 2, 3),
      Rv(1, "b", 6, 4, 5)], True),
    ("mod_revision cas succeeds on a stale revision",
     [Wv(1, "a", 5, 0, 1), Wv(1, "b", 7, 2, 3), CASv(2, "mod_revision", 5, "c", (True, 8), 4, 5)],
     False),
    ("mod_revision cas fails on the current revision",
     [Wv(1, "a", 5, 0, 1), CASv(2, "mod_revision", 5, "c", (False, None), 2, 3)], False),
    ("create-if-absent: mod_revision 0 on an absent key",
     [CASv(1, "mod_revision", 0, "a", (True, 3), 0, 1), Rv(2, "a", 3, 2, 3)], True),
    ("value cas on an absent key cannot succeed",
     [CASv(1, "value", None, "a", (True, 3), 0, 1)], False),
    ("value cas on the current value",
     [Wv(1, "a", 5, 0, 1), CASv(2, "value", "a", "b", (True, 9), 2, 3), Rv(3, "b", 9, 4, 5)],
     True),
    ("value cas succeeding twice from one value",
     [Wv(1, "a", 5, 0, 1), CASv(2, "value", "a", "b", (True, 9), 2, 3),
      CASv(3, "value", "a", "c", (True, 11), 4, 5)], False),
    ("unknown write's revision is learned from a read, then used by a cas",
     [Wv(1, "a", None, 0, U), Rv(2, "a", 7, 2, 3),
      CASv(2, "mod_revision", 7, "b", (True, 8), 4, 5), Rv(3, "b", 8, 6, 7)], True),
    ("unknown write read with two different revisions",
     [Wv(1, "a", None, 0, U), Rv(2, "a", 7, 2, 3), Rv(2, "a", 8, 4, 5)], False),
    ("unknown write's revision must exceed the known one",
     [Wv(1, "a", 5, 0, 1), Wv(1, "b", None, 2, U), Rv(2, "b", 4, 3, 4)], False),
    ("unknown mod_revision cas on an unknown revision: took effect",
     [Wv(1, "a", None, 0, U), CASv(2, "mod_revision", 7, "b", None, 1, U), Rv(3, "b", 9, 5, 6)],
     True),
    ("unknown mod_revision cas on an unknown revision: took effect later",
     [Wv(1, "a", None, 0, U), CASv(2, "mod_revision", 7, "b", None, 1, U),
      Rv(3, "a", 7, 5, 6), Rv(3, "b", 9, 7, 8)], True),
    ("unknown mod_revision cas on an unknown revision: compare could not hold",
     [Wv(1, "a", None, 0, U), CASv(2, "mod_revision", 7, "b", None, 1, U),
      Rv(3, "a", 6, 5, 6), Rv(3, "b", 9, 7, 8)], False),
    ("unknown mod_revision cas undone",
     [Wv(1, "a", None, 0, U), CASv(2, "mod_revision", 7, "b", None, 1, U),
      Rv(3, "b", 9, 5, 6), Rv(3, "a", 7, 7, 8)], False),
]


@pytest.mark.parametrize(("history", "linearizable"),
                         [pytest.param(h, ok, id=name) for name, h, ok in REVISIONED_CASES])
def test_revisioned_register_histories(history: list[Operation], linearizable: bool) -> None:
    result = check_history(history, RevisionedRegister())
    assert result.ok is linearizable, result.explain()


def test_known_revisions_are_not_given_to_unknown_writes() -> None:
    # On x, an unknown-outcome write could have made revision 5 for the cas to match;
    # but the history shows revision 5 was the put of q on y.
    history = [
        Operation(1, "write", "a", None, 0, U, key="x"),
        Operation(1, "cas", ("mod_revision", 5, "c"), (True, 9), 2, 3, key="x"),
        Operation(2, "write", "q", 5, 0, 1, key="y"),
    ]
    assert check_per_key(history, RevisionedRegister()).ok
    result = check_per_key(history, RevisionedRegister.for_history(history))
    assert [r.key for r in result.failures] == ["x"]


def test_revision_conflicts_across_keys() -> None:
    history = [
        Operation(1, "write", "a", 5, 0, 1, key="x"),
        Operation(2, "write", "b", 5, 0, 1, key="y"),  # the same revision twice
        Operation(3, "read", None, ("a", 5), 2, 3, key="x"),
        Operation(3, "cas", ("value", "a", "c"), (True, 6), 4, 5, key="x"),
        Operation(4, "write", "d", None, 0, U, key="y"),
    ]
    assert check_per_key(history, RevisionedRegister()).ok  # each key alone is fine
    assert revision_conflicts(history) == ["revision 5 is both 'x'='a' and 'y'='b'"]
    assert revision_conflicts(history[2:]) == []


BLIND = "unmentioned unknown-outcome write"


@pytest.mark.parametrize(("model", "op", "label"), [
    pytest.param(Register(), W(2, 3, 0, U), None, id="Register: no history, no classes"),
    pytest.param(Register.for_history([W(1, 1, 0, 1), R(3, 3, 2, 3)]), W(2, 3, 0, U), None,
                 id="Register: value read"),
    pytest.param(Register.for_history([CAS(1, 3, 4, True, 0, 1)]), W(2, 3, 0, U), None,
                 id="Register: value compared"),
    pytest.param(Register.for_history([W(1, 1, 0, 1)]), W(2, 3, 0, U), BLIND,
                 id="Register: unmentioned"),
    pytest.param(Register.for_history([W(1, 1, 0, 1)]), W(2, 3, 0, 1), None,
                 id="Register: known outcome"),
    pytest.param(RevisionedRegister(), Wv(2, "a", None, 0, U), None,
                 id="Revisioned: no history, no classes"),
    pytest.param(RevisionedRegister.for_history([Rv(1, "a", 4, 0, 1)]),
                 Wv(2, "a", None, 0, U), None, id="Revisioned: value read"),
    pytest.param(RevisionedRegister.for_history([Rv(1, "b", 4, 0, 1)]),
                 Wv(2, "a", None, 0, U), BLIND, id="Revisioned: unmentioned"),
])
def test_interchangeable_operations(model: Any, op: Operation, label: Any) -> None:
    assert model.interchangeable(op) == label


def test_per_key_checks_keys_independently() -> None:
    history = [
        W(1, 1, 0, 1, key="x"), W(2, 1, 0, 1, key="y"),
        R(1, 1, 2, 3, key="x"), R(2, None, 2, 3, key="z"),
        W(1, 2, 4, 5, key="y"), R(2, 1, 6, 7, key="y"),  # stale on y only
    ]
    result = check_per_key(history, Register())
    assert not result.ok
    assert [r.key for r in result.failures] == ["y"]
    assert {r.key for r in result.results} == {"x", "y", "z"}
    assert "key 'y'" in result.explain()


def test_per_key_does_not_mix_keys() -> None:
    # On one register this would be a lost write; on two keys it is fine.
    history = [W(1, 1, 0, 1, key="x"), R(2, None, 2, 3, key="y")]
    assert check_per_key(history, Register()).ok
    assert not check_history(history, Register()).ok


def test_explanation_names_prefix_state_and_blocked_operation() -> None:
    w1, w2, stale = W(1, 1, 0, 1), W(1, 2, 2, 3), R(2, 1, 4, 5)
    result = check_history([w1, w2, stale], Register())
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    assert result.linearization == (w1, w2)
    assert result.states == ("value 2",)
    assert result.blocked == stale
    text = result.explain()
    assert "longest linearizable prefix: 2 operations" in text
    assert "value 2" in text
    assert str(stale) in text


def test_explanation_lists_the_open_operations() -> None:
    w, r1, r2 = W(1, 5, 0, 1), R(2, 7, 2, 4), R(3, 8, 3, 5)
    result = check_history([w, r1, r2], Register())
    assert result.blocked == r1
    assert set(result.pending) == {r1, r2}
    assert str(r2) in result.explain()


@pytest.mark.parametrize(("history", "message"), [
    ([W(1, 1, 2, 1)], "returns before it is called"),
    ([W(1, 1, 0, 2), R(1, 1, 1, 3)], "overlapping"),
])
def test_malformed_histories_are_rejected(history: list[Operation], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate(history)
    with pytest.raises(ValueError, match=message):
        check_history(history, Register())


def test_unknown_operation_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="delete"):
        check_history([Operation(1, "delete", None, None, 0, 1)], Register())


def test_search_budget_gives_unknown_verdict() -> None:
    history, _ = generate_history(random.Random(1), ops=200, clients=5, keys=1)
    result = check_history(history, RevisionedRegister(), max_steps=10)
    assert result.verdict is Verdict.UNKNOWN
    assert not result.ok
    assert "budget" in result.explain()


# -- generated histories ----------------------------------------------------------------


def generate_history(rng: random.Random, ops: int, clients: int, keys: int,
                     unknown_rate: float = 0.02
                     ) -> tuple[list[Operation], dict[int, tuple[str, int]]]:
    """A linearizable etcd-like history, and stale answers some of its reads could give.

    Each client runs operations back to back with random durations; each takes effect at
    a random point inside its interval (unknown-outcome ones: maybe never), applied to a
    simulated store with a global revision counter. The second map sends the index of a
    read to an older value of its key, which a write that returned before the read was
    called had already overwritten.
    """
    planned: list[tuple[float, int, str, str, float, float]] = []
    for c in range(clients):
        t = rng.uniform(0, 1)
        for _ in range(ops // clients + (1 if c < ops % clients else 0)):
            call, ret = t, t + rng.uniform(0.1, 3.0)
            kind = rng.choices(["read", "write", "cas"], [5, 3, 2])[0]
            unknown = kind != "read" and rng.random() < unknown_rate
            effect = rng.uniform(call, ret) if not unknown or rng.random() < 0.5 else UNKNOWN
            planned.append((effect, c, kind, f"k{rng.randrange(keys)}", call,
                            UNKNOWN if unknown else ret))
            t = ret + rng.uniform(0, 0.5)
    store: dict[str, tuple[str, int]] = {}
    writes: dict[str, list[tuple[str, int, float]]] = {}  # key -> (value, rev, returned)
    revision = 1
    history: list[Operation] = []
    stale: dict[int, tuple[str, int]] = {}  # id(read) -> stale answer
    for n, (effect, c, kind, key, call, ret) in enumerate(sorted(planned)):
        cur_value, cur_rev = store.get(key, (None, 0))
        if kind == "read":
            history.append(Operation(c, "read", None, (cur_value, cur_rev), call, ret, key))
            older = writes.get(key, [])
            overwritten = [w for w, after in itertools.pairwise(older) if after[2] < call]
            if overwritten:
                stale[id(history[-1])] = overwritten[-1][:2]
            continue
        value = f"v{n}"
        if kind == "write":
            op_in: Any = value
            applies = True
        elif rng.random() < 0.5:
            expected = cur_rev if rng.random() < 0.7 else max(cur_rev - 1, 0)
            op_in = ("mod_revision", expected, value)
            applies = expected == cur_rev
        else:
            expected_v = cur_value if rng.random() < 0.7 else "nope"
            op_in = ("value", expected_v, value)
            applies = cur_value is not None and expected_v == cur_value
        took_effect = applies and effect != UNKNOWN
        if took_effect:
            revision += 1
            store[key] = (value, revision)
            writes.setdefault(key, []).append((value, revision, ret))
        out: Any = revision if kind == "write" else (
            (True, revision) if took_effect else (False, None))
        history.append(Operation(c, kind, op_in, out, call, ret, key))
    history.sort(key=lambda o: o.call)
    return history, {i: stale[id(op)] for i, op in enumerate(history) if id(op) in stale}


@pytest.mark.parametrize("seed", range(5))
def test_generated_histories_are_linearizable(seed: int) -> None:
    history, _ = generate_history(random.Random(seed), ops=400, clients=5, keys=3,
                                  unknown_rate=0.05)
    result = check_per_key(history, RevisionedRegister())
    assert result.ok, result.explain()


@pytest.mark.parametrize(("keys", "unknown_rate"), [
    pytest.param(10, 0.02, id="10 keys"),
    pytest.param(1, 0.02, id="1 key"),
    pytest.param(1, 0.1, id="1 key, 10% unknown outcomes"),
])
def test_2000_operations_of_5_clients_check_fast(keys: int, unknown_rate: float) -> None:
    history, stale = generate_history(random.Random(42), ops=2000, clients=5, keys=keys,
                                      unknown_rate=unknown_rate)
    assert len(history) == 2000
    assert sum(op.unknown for op in history) >= 2000 * unknown_rate / 4  # writes only
    started = time.perf_counter()
    result = check_per_key(history, RevisionedRegister.for_history(history))
    elapsed = time.perf_counter() - started
    assert result.ok, result.explain()
    assert elapsed < 3.0, f"checking 2000 operations on {keys} keys took {elapsed:.2f}s"

    # The same history with one late read turned stale must be rejected, as quickly.
    i = max(stale)
    read = history[i]
    broken = list(history)
    broken[i] = Operation(read.client, "read", None, stale[i], read.call, read.ret, read.key)
    started = time.perf_counter()
    result = check_per_key(broken, RevisionedRegister.for_history(broken))
    elapsed = time.perf_counter() - started
    assert not result.ok
    assert [r.key for r in result.failures] == [read.key]
    assert result.failures[0].blocked == broken[i]
    assert elapsed < 3.0, f"rejecting 2000 operations on {keys} keys took {elapsed:.2f}s"


# -- the search against brute force on small histories ------------------------------------


def brute_force_linearizable(history: list[Operation], model: Any) -> bool:
    """Try every order: each known-outcome operation placed, unknown-outcome ones or not."""
    ops = [op for op in history if not (op.unknown and model.read_only(op))]
    known = frozenset(i for i, op in enumerate(ops) if not op.unknown)

    def extend(placed: frozenset[int], states: frozenset[Any]) -> bool:
        if known <= placed:
            return True
        for i, op in enumerate(ops):
            if i in placed or any(j not in placed and ops[j].ret < op.call
                                  for j in range(len(ops))):
                continue
            after = frozenset(s2 for s in states for s2 in model.step(s, op))
            if after and extend(placed | {i}, after):
                return True
        return False

    return extend(frozenset(), frozenset((model.init(),)))


def small_register_history(rng: random.Random) -> list[Operation]:
    """A few operations of 2-3 clients on values 1-3 (repeats allowed), outputs simulated
    and then, half the time, one of them changed."""
    planned: list[tuple[float, int, str, int, float]] = []
    for c in range(rng.randint(2, 3)):
        t = rng.randint(0, 3)
        for _ in range(rng.randint(1, 3)):
            call, ret = t, t + rng.randint(1, 6)
            kind = rng.choice(["read", "write", "cas"])
            unknown = rng.random() < 0.3
            effect = call + rng.random() * (ret - call)
            if unknown and kind != "read" and rng.random() < 0.4:
                effect = math.inf
            planned.append((effect, c, kind, call, UNKNOWN if unknown else ret))
            t = ret + rng.randint(0, 2)
    value: Any = None
    history = []
    for effect, c, kind, call, returned in sorted(planned):
        if kind == "read":
            history.append(Operation(c, "read", None, value, call, returned))
        elif kind == "write":
            v = rng.randint(1, 3)
            if effect != math.inf:
                value = v
            history.append(Operation(c, "write", v, None, call, returned))
        else:
            expected, new = rng.choice([None, 1, 2, 3]), rng.randint(1, 3)
            swapped = value == expected and effect != math.inf
            if swapped:
                value = new
            history.append(Operation(c, "cas", (expected, new), swapped, call, returned))
    if rng.random() < 0.5:
        i = rng.randrange(len(history))
        op = history[i]
        if op.op == "read":
            history[i] = Operation(op.client, "read", None, rng.choice([None, 1, 2, 3]),
                                   op.call, op.ret)
        elif op.op == "cas":
            history[i] = Operation(op.client, "cas", op.input, not op.output, op.call, op.ret)
    return history


def small_revisioned_history(rng: random.Random) -> list[Operation]:
    """A generated etcd-like history of 4-8 operations, perturbed half the time."""
    history, _ = generate_history(rng, ops=rng.randint(4, 8), clients=rng.randint(2, 3),
                                  keys=1, unknown_rate=0.3)
    if rng.random() < 0.5:
        i = rng.randrange(len(history))
        op = history[i]
        if op.op == "read":
            value, rev = op.output
            out = rng.choice([(value, rev + 1), (None, 0), ("v0", 2), (value, max(rev - 1, 0))])
            history[i] = Operation(op.client, "read", None, out, op.call, op.ret, op.key)
        elif op.op == "cas" and not op.unknown:
            out = (False, None) if op.output[0] else (True, 100)
            history[i] = Operation(op.client, "cas", op.input, out, op.call, op.ret, op.key)
        elif op.op == "write" and not op.unknown:
            history[i] = Operation(op.client, "write", op.input, max(op.output - 2, 0),
                                   op.call, op.ret, op.key)
    return history


@pytest.mark.parametrize("make_model", [
    pytest.param(lambda h: Register(), id="Register"),
    pytest.param(lambda h: Register.for_history(h), id="Register.for_history"),
])
def test_search_agrees_with_brute_force_register(make_model: Any) -> None:
    rng = random.Random(2024)
    verdicts = {True: 0, False: 0}
    for _ in range(1500):
        history = small_register_history(rng)
        model = make_model(history)
        expected = brute_force_linearizable(history, model)
        result = check_history(history, model)
        assert result.ok is expected, (history, result.explain())
        verdicts[expected] += 1
    assert min(verdicts.values()) > 150, verdicts  # both verdicts well represented


@pytest.mark.parametrize("make_model", [
    pytest.param(lambda h: RevisionedRegister(), id="RevisionedRegister"),
    pytest.param(lambda h: RevisionedRegister.for_history(h), id="for_history"),
])
def test_search_agrees_with_brute_force_revisioned(make_model: Any) -> None:
    rng = random.Random(7)
    verdicts = {True: 0, False: 0}
    for _ in range(1500):
        history = small_revisioned_history(rng)
        model = make_model(history)
        expected = brute_force_linearizable(history, model)
        result = check_history(history, model)
        assert result.ok is expected, (history, result.explain())
        verdicts[expected] += 1
    assert min(verdicts.values()) > 150, verdicts

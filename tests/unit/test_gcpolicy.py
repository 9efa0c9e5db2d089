"""The daemons' garbage collection policy (navarch/_gcpolicy.py): survivors of a full
collection are frozen; a thaw collects what died while frozen."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from navarch import _eventloop as eventloop
from navarch import _gcpolicy as gcpolicy


class Node:
    """Something that can take part in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> tuple[Node, weakref.ref[Node]]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(a)


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_full_collection_freezes_its_survivors_out_of_the_next_ones() -> None:
    async def main() -> tuple[int, int, int]:
        policy = gcpolicy.FreezeSurvivors(thaw_interval=3600)
        policy.start()
        try:
            survivor = Node()
            gc.collect()
            frozen = gc.get_freeze_count()
            still_tracked = any(o is survivor for o in gc.get_objects())
            return policy.freezes, frozen, int(still_tracked)
        finally:
            policy.stop()

    freezes, frozen, still_tracked = asyncio.run(main())
    assert freezes == 1
    assert frozen > 0
    assert still_tracked == 0  # a full collection no longer walks it
    assert gc.get_freeze_count() == 0  # stop thaws


def test_cyclic_garbage_that_dies_while_frozen_is_freed_by_the_thaw() -> None:
    async def main() -> tuple[bool, bool]:
        policy = gcpolicy.FreezeSurvivors(thaw_interval=0.05)
        policy.start()
        try:
            head, ref = cycle()
            gc.collect()  # the cycle survives (it is alive) and is frozen
            del head
            gc.collect()  # frozen: not collected, although it is garbage now
            alive_while_frozen = ref() is not None
            await policy.thawed.wait()
            return alive_while_frozen, ref() is None
        finally:
            policy.stop()

    alive_while_frozen, freed = asyncio.run(main())
    assert alive_while_frozen
    assert freed


def test_non_cyclic_objects_are_freed_at_once_even_frozen() -> None:
    async def main() -> bool:
        policy = gcpolicy.FreezeSurvivors(thaw_interval=3600)
        policy.start()
        try:
            node = Node()
            ref = weakref.ref(node)
            gc.collect()
            assert gc.get_freeze_count() > 0
            del node
            return ref() is None
        finally:
            policy.stop()

    assert asyncio.run(main())


def test_the_daemons_run_it_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    async def freezes_after_a_full_collection() -> bool:
        gc.collect()
        return gc.get_freeze_count() > 0

    monkeypatch.delenv(gcpolicy.ENV, raising=False)
    assert eventloop.run(freezes_after_a_full_collection())
    assert gc.get_freeze_count() == 0
    monkeypatch.setenv(gcpolicy.ENV, "0")
    assert not eventloop.run(freezes_after_a_full_collection())


def test_a_bad_setting_names_the_variable_and_the_values(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gcpolicy.ENV, "yes")
    with pytest.raises(SystemExit) as exc:
        eventloop.run(asyncio.sleep(0))
    assert str(exc.value) == "NAVARCH_GC_FREEZE='yes': accepted values are 0 and 1"

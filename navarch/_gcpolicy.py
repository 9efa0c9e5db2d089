"""How the daemons keep garbage collection from stalling their event loop.

CPython's full collection walks every tracked object with the loop stopped. An API
server holding 20k pods in its watch cache has about 90k of them, and on the 2-core
machine each full collection took 50-90 ms of CPU, every 2-4 s under load: the worst
latencies of watch delivery were these pauses (bench/README.md).

The policy: after each full collection, freeze its survivors (``gc.freeze``), so the
next full collections walk only what was allocated since; every ``thaw_interval``
seconds, unfreeze and collect once, so that cyclic garbage which died while frozen is
freed after all (one full pause per interval instead of one every few seconds).
Objects that form no cycles are freed by refcounting, frozen or not: freezing only
delays the freeing of cyclic garbage, by at most ``thaw_interval``.

``NAVARCH_GC_FREEZE=0`` turns it off, to compare or to rule it out.
"""

from __future__ import annotations

import asyncio
import gc
import os
from typing import Any

ENV = "NAVARCH_GC_FREEZE"
THAW_INTERVAL = 600.0
OLDEST = 2  # the generation a full collection collects


def enabled() -> bool:
    """Whether $NAVARCH_GC_FREEZE allows the policy (default yes; "0" or "1")."""
    value = os.environ.get(ENV, "1").strip()
    if value not in ("0", "1"):
        raise SystemExit(f"{ENV}={value!r}: accepted values are 0 and 1")
    return value == "1"


class FreezeSurvivors:
    """The policy, on one event loop: :meth:`start` it there, :meth:`stop` it on exit."""

    def __init__(self, thaw_interval: float = THAW_INTERVAL) -> None:
        self.thaw_interval = thaw_interval
        self.freezes = 0
        self.thaws = 0
        self._timer: asyncio.TimerHandle | None = None
        self.thawed = asyncio.Event()  # set at each thaw

    def start(self) -> None:
        gc.callbacks.append(self._after_collection)
        self._timer = asyncio.get_running_loop().call_later(self.thaw_interval, self._thaw)

    def stop(self) -> None:
        if self._after_collection in gc.callbacks:
            gc.callbacks.remove(self._after_collection)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        gc.unfreeze()

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        # Called by the collector when it is done with its lists: freezing only moves
        # every generation's objects to the permanent one.
        if phase == "stop" and info["generation"] == OLDEST:
            gc.freeze()
            self.freezes += 1

    def _thaw(self) -> None:
        gc.unfreeze()
        gc.collect()  # survivors are frozen again by _after_collection
        self.thaws += 1
        self.thawed.set()
        self._timer = asyncio.get_running_loop().call_later(self.thaw_interval, self._thaw)

"""The event loop every Navarch daemon runs on: uvloop, unless asked otherwise.

Every daemon is one asyncio process whose throughput is bounded by the CPU its event
loop and grpc.aio spend per call. uvloop (libuv under asyncio's API) runs the same code
with less of it: measured on a 2-core machine, a do-nothing grpc.aio etcd server spends
about 20 % less CPU per call, and raftstore takes about 15 % more puts a second
(bench/README.md). ``NAVARCH_EVENT_LOOP=asyncio`` selects the standard loop, to compare
or to rule uvloop out when chasing a bug.

uvloop opens datagram endpoints only for IP sockets, so a daemon that talks netlink
through pyroute2's asyncio API (``navarch proxy``) runs on the standard loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from navarch import _gcpolicy as gcpolicy

T = TypeVar("T")

ENV = "NAVARCH_EVENT_LOOP"
CHOICES = ("uvloop", "asyncio")


def loop_kind() -> str:
    """``uvloop`` or ``asyncio``, from $NAVARCH_EVENT_LOOP (default uvloop)."""
    kind = os.environ.get(ENV, "uvloop").strip().lower() or "uvloop"
    if kind not in CHOICES:
        raise SystemExit(f"{ENV}={kind!r}: accepted values are {', '.join(CHOICES)}")
    return kind


def run(main: Coroutine[Any, Any, T], *, allow_uvloop: bool = True) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_kind` names (asyncio's own when
    ``allow_uvloop`` is false), with the garbage collection policy of ``_gcpolicy``
    unless $NAVARCH_GC_FREEZE turns it off."""
    try:
        kind = loop_kind()
        freeze = gcpolicy.enabled()
    except SystemExit:
        main.close()  # never started: no "was never awaited" warning
        raise
    if freeze:
        main = _with_gc_policy(main)
    if kind == "uvloop" and allow_uvloop:
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


async def _with_gc_policy(main: Coroutine[Any, Any, T]) -> T:
    policy = gcpolicy.FreezeSurvivors()
    policy.start()
    try:
        return await main
    finally:
        policy.stop()

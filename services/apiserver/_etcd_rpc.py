"""How storage.EtcdStore talks gRPC: the channel, what a failed attempt means, backoff.

The words matched here are etcd's (rpctypes; raftstore/_errors.py repeats them verbatim)
and gRPC core's; both are stable because etcd's own clients match on them too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import time
from collections.abc import Sequence
from typing import Literal

import grpc

__all__ = ["CHANNEL_OPTIONS", "ERR_COMPACTED", "ERR_FUTURE_REV", "METADATA", "Budget",
           "Verdict", "channel_target", "member_sick", "verdict"]

ERR_COMPACTED = "required revision has been compacted"
ERR_FUTURE_REV = "required revision is a future revision"
# The member refused before proposing: the request was not applied.
_NOT_APPLIED = ("etcdserver: no leader", "etcdserver: too many requests",
                "raft proposal dropped")
# The member answers but cannot serve: another member should be tried.
_MEMBER_SICK = ("etcdserver: no leader", "etcdserver: request timed out")
# gRPC core's words for a call that never left this process (no connection).
_NOT_SENT = "failed to connect to all addresses"
_TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
              grpc.StatusCode.CANCELLED)

CHANNEL_OPTIONS = (
    ("grpc.lb_policy_name", "pick_first"),
    ("grpc.max_receive_message_length", -1),  # a LIST answer can be far above 4 MiB
    ("grpc.max_send_message_length", -1),     # the member enforces its own request limit
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
)
"""One connection at a time, to the first member that accepts, in the target's order."""

METADATA = (("hasleader", "true"),)
"""Asks etcd to refuse a request, and end a watch, while the member has no leader."""

Verdict = Literal["retry", "ambiguous", "fatal"]


def verdict(e: grpc.aio.AioRpcError, write: bool) -> Verdict:
    """What a failed attempt means: worth retrying, a write of unknown outcome, or final."""
    details = e.details() or ""
    if _NOT_SENT in details or any(m in details for m in _NOT_APPLIED):
        return "retry"
    if e.code() not in _TRANSIENT:
        return "fatal"
    return "ambiguous" if write else "retry"


def member_sick(e: grpc.aio.AioRpcError) -> bool:
    """The member answered that it cannot serve, or did not answer in time."""
    details = e.details() or ""
    return (e.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            or any(m in details for m in _MEMBER_SICK))


def channel_target(endpoints: Sequence[str]) -> str:
    """The target "ipv4:h1:p1,h2:p2,…" for "host:port" endpoints; host names are
    resolved (IPv4) now. ValueError names a malformed or unresolvable endpoint."""
    if not endpoints:
        raise ValueError("the store needs at least one endpoint (host:port)")
    addresses = []
    for ep in endpoints:
        host, sep, port = ep.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"store endpoint {ep!r}: expected host:port, e.g. 127.0.0.1:2379")
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            try:
                host = str(socket.getaddrinfo(host, int(port), socket.AF_INET)[0][4][0])
            except OSError as e:
                raise ValueError(f"store endpoint {ep!r}: cannot resolve {host!r} to an "
                                 f"IPv4 address: {e}") from e
        addresses.append(f"{host}:{port}")
    return "ipv4:" + ",".join(addresses)


class Budget:
    """Exponential backoff with jitter (50 ms doubling to 1 s), bounded by ``total`` s."""

    def __init__(self, total: float, rng: random.Random) -> None:
        self.deadline = time.monotonic() + total
        self.delay = 0.05
        self.rng = rng

    def left(self) -> float:
        """Seconds left."""
        return self.deadline - time.monotonic()

    async def wait(self) -> bool:
        """Sleep before the next attempt; False (at once) when the budget cannot cover it."""
        pause = self.delay * (0.5 + self.rng.random())
        if pause >= self.left():
            return False
        await asyncio.sleep(pause)
        self.delay = min(self.delay * 2, 1.0)
        return True

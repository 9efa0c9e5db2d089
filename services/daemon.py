"""What the control-plane daemons share: flags, the gRPC server (health, reflection, a
debug service), Prometheus metrics, leader election and shutdown.

Flow of ``run_daemon``::

    connect to the API server ─▶ serve gRPC (health NOT_SERVING for the component)
        ─▶ campaign for the Lease (--leader-elect) ─▶ leader: health SERVING, lead(client)
        ◀─ leadership lost: lead() cancelled, health NOT_SERVING, campaign again
    SIGTERM/SIGINT: lead() cancelled, the lease released, the server stopped

Contracts: ``lead`` starts from nothing each time it is called (fresh informers, fresh
caches), so state built under an earlier term never leaks into the next one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from navarch import _eventloop as eventloop

__all__ = ["DaemonConfig", "add_daemon_arguments", "leader_status", "run_daemon",
           "run_until_signal", "run_until_stopped"]

log = structlog.get_logger("navarch.daemon")


class ConfigError(ValueError):
    """A flag value that cannot be used; the message names the flag."""


@dataclass(frozen=True)
class DaemonConfig:
    """Flags every control-plane daemon takes."""

    server: str  # the API server, HOST:PORT ("" = the SDK's default resolution)
    listen: str  # gRPC health + debug service
    metrics_listen: str = ""
    leader_elect: bool = True
    lease_name: str = ""
    lease_namespace: str = "kube-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    identity: str = ""

    @classmethod
    def from_args(cls, args: argparse.Namespace, component: str) -> DaemonConfig:
        """Validate the parsed flags of ``add_daemon_arguments``."""
        from services.apiserver.config import host_port

        host_port("--listen", args.listen)
        if args.metrics_listen:
            host_port("--metrics-listen", args.metrics_listen)
        if not 0 < args.retry_period < args.renew_deadline < args.lease_duration:
            raise ConfigError("--leader-elect-retry-period < --leader-elect-renew-deadline < "
                              "--leader-elect-lease-duration must hold (all in seconds), got "
                              f"{args.retry_period:g}, {args.renew_deadline:g}, "
                              f"{args.lease_duration:g}")
        identity = args.identity or (
            f"{socket.gethostname()}_{os.getpid()}_{secrets.token_hex(4)}")
        return cls(args.server, args.listen, args.metrics_listen, args.leader_elect,
                   args.lease_name or f"navarch-{component}", args.lease_namespace,
                   args.lease_duration, args.renew_deadline, args.retry_period, identity)


def add_daemon_arguments(p: argparse.ArgumentParser, component: str, listen: str) -> None:
    """The flags every control-plane daemon takes."""
    p.add_argument("--server", default="",
                   help="the API server, HOST:PORT (default: $NAVARCH_SERVER, then the "
                   "navctl config file)")
    p.add_argument("--listen", default=listen,
                   help="HOST:PORT for gRPC health checking and the debug service")
    p.add_argument("--metrics-listen", default="",
                   help="HOST:PORT to serve Prometheus metrics on (off when empty)")
    p.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                   help="run active/standby: lead only while holding the Lease")
    p.add_argument("--lease-name", default="",
                   help=f"the Lease to elect the leader with (default navarch-{component})")
    p.add_argument("--lease-namespace", default="kube-system",
                   help="the namespace of that Lease")
    p.add_argument("--leader-elect-lease-duration", dest="lease_duration", type=float,
                   default=15.0, help="seconds a standby waits after the leader's last "
                   "renewal before taking over")
    p.add_argument("--leader-elect-renew-deadline", dest="renew_deadline", type=float,
                   default=10.0, help="seconds the leader keeps trying to renew before it "
                   "steps down")
    p.add_argument("--leader-elect-retry-period", dest="retry_period", type=float,
                   default=2.0, help="seconds between election attempts and renewals")
    p.add_argument("--identity", default="",
                   help="this replica's identity in the election (default host_pid_random)")


Lead = Callable[..., Awaitable[None]]


def leader_status(config: DaemonConfig, elector: Any) -> Any:
    """The election state for a debug service (``navarch.v1.LeaderStatus``); without
    leader election this replica always leads."""
    from navarch.v1 import control_pb2

    return control_pb2.LeaderStatus(
        identity=config.identity,
        leader=bool(elector.is_leader) if elector is not None else True,
        leader_identity=elector.leader if elector is not None else config.identity,
        lease=f"{config.lease_namespace}/{config.lease_name}")


async def run_daemon(component: str, config: DaemonConfig, *, services: Sequence[str],
                     add_services: Callable[[grpc.aio.Server], None],
                     lead: Lead, stop: asyncio.Event,
                     on_election: Callable[[object], None] | None = None) -> None:
    """Serve health/reflection/debug on ``config.listen`` and run ``lead(client)`` while
    leading, until ``stop`` is set. ``services`` are the full names of the debug services
    added by ``add_services``; health reports them SERVING only while leading."""
    import navarch
    from navarch._leaderelection import LeaderElectionConfig, LeaderElector

    server = grpc.aio.server()
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    add_services(server)
    reflection.enable_server_reflection(
        (*services, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    server.add_insecure_port(config.listen)
    if config.metrics_listen:
        from prometheus_client import start_http_server

        from services.apiserver.config import host_port
        host, port = host_port("--metrics-listen", config.metrics_listen)
        start_http_server(port, addr=host)
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)

    async def set_leading(leading: bool) -> None:
        status = (health_pb2.HealthCheckResponse.SERVING if leading
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for name in services:
            await health_servicer.set(name, status)

    await set_leading(False)
    client = navarch.Client(config.server or None)

    async def leading() -> None:
        await set_leading(True)
        try:
            await lead(client)
        finally:
            await set_leading(False)

    if config.leader_elect:
        elector = LeaderElector(
            client.leases(config.lease_namespace),
            LeaderElectionConfig(config.lease_name, config.identity, config.lease_namespace,
                                 config.lease_duration, config.renew_deadline,
                                 config.retry_period))
        if on_election is not None:
            on_election(elector)
        main = asyncio.create_task(elector.run(leading), name=f"{component}-election")
    else:
        main = asyncio.create_task(leading(), name=f"{component}-lead")
    log.info(f"{component} started", listen=config.listen, identity=config.identity,
             leader_elect=config.leader_elect)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if main.done() and main.exception() is not None:
            raise main.exception()  # type: ignore[misc]
    finally:
        log.info(f"{component} stopping")
        for task in (main, stopper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await health_servicer.enter_graceful_shutdown()
        await server.stop(grace=1.0)
        await client.close()


async def run_until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event,
                            name: str) -> None:
    """Run ``work`` until it ends (its error is raised) or ``stop`` is set; either way it
    is cancelled and awaited before this returns."""
    main = asyncio.create_task(work, name=name)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if main.done():
            main.result()
    finally:
        for task in (main, stopper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # raised above
                await task


def run_until_signal(main: Callable[[asyncio.Event], Awaitable[None]], *,
                     allow_uvloop: bool = True) -> int:
    """Run ``main(stop)`` with ``stop`` set by SIGTERM or SIGINT; the exit status.
    ``allow_uvloop=False`` keeps asyncio's own loop (navarch/_eventloop.py says why)."""
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    eventloop.run(runner(), allow_uvloop=allow_uvloop)
    return 0

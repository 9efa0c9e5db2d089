"""``navarch simnodes``: parse the flags, serve gRPC health, run the hollow kubelets.

No leader election: every replica serves its own nodes. Health ("" and
``navarch.v1.SimNodes``) says SERVING once every node is registered, NOT_SERVING before.
SIGTERM/SIGINT stop the heartbeats and pod handling; the Nodes and Leases stay, as a
stopped kubelet's would, and the node lifecycle controller takes it from there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.daemon import ConfigError, run_until_signal

from .agent import SimNodes
from .config import SimConfig, add_arguments

__all__ = ["SERVICE", "add_arguments", "main", "serve"]

SERVICE = "navarch.v1.SimNodes"  # a health service name only: no RPCs of its own

log = structlog.get_logger("navarch.simnodes")


async def serve(cfg: SimConfig, server_address: str, listen: str, stop: asyncio.Event
                ) -> None:
    """Serve health on ``listen`` and run the nodes against ``server_address`` until
    ``stop`` is set."""
    import navarch

    server = grpc.aio.server()
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    server.add_insecure_port(listen)
    await server.start()
    for name in ("", SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    client = navarch.Client(server_address or None)
    sim = SimNodes(client, cfg)

    async def registered() -> None:
        for name in ("", SERVICE):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    main = asyncio.create_task(sim.run(registered), name="simnodes")
    stopper = asyncio.create_task(stop.wait())
    log.info("simnodes started", listen=listen, count=cfg.count, prefix=cfg.name_prefix)
    try:
        await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if main.done() and main.exception() is not None:
            raise main.exception()  # type: ignore[misc]
    finally:
        log.info("simnodes stopping: heartbeats stop, nodes stay", **sim.stats)
        for task in (main, stopper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await health_servicer.enter_graceful_shutdown()
        await server.stop(grace=1.0)
        await client.close()


def main(args: argparse.Namespace) -> int:
    """Run ``navarch simnodes`` until SIGTERM/SIGINT; the exit status."""
    from services.apiserver.config import host_port

    try:
        cfg = SimConfig.from_args(args)
        host_port("--listen", args.listen)
    except (ConfigError, ValueError) as exc:
        print(f"navarch simnodes: {exc}", file=sys.stderr)
        return 2
    return run_until_signal(lambda stop: serve(cfg, args.server, args.listen, stop))

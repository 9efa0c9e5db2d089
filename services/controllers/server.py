"""``navarch controllers``: flags, the Controllers debug service, and the daemon loop."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import grpc

from navarch.v1 import control_pb2, control_pb2_grpc
from services.daemon import (
    ConfigError,
    DaemonConfig,
    add_daemon_arguments,
    leader_status,
    run_daemon,
)

from .manager import CONTROLLERS, ControllerManager, enabled_controllers

__all__ = ["add_arguments", "main"]

SERVICE = "navarch.v1.Controllers"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``navarch controllers``."""
    add_daemon_arguments(p, "controller-manager", "127.0.0.1:10257")
    p.add_argument("--controllers", default="*",
                   help="comma-separated controllers to run: '*' for all, '-name' to "
                   "disable one; known: " + ", ".join(CONTROLLERS))
    p.add_argument("--node-monitor-grace-period", type=float, default=40.0,
                   help="seconds without a node heartbeat before its Ready condition "
                   "becomes Unknown")
    p.add_argument("--default-not-ready-toleration-seconds", type=int, default=300,
                   help="tolerationSeconds added to pods for the not-ready and unreachable "
                   "NoExecute taints when they do not set their own")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16",
                   help="CIDR pod networks are carved from (one podCIDR per node)")
    p.add_argument("--node-cidr-mask-size", type=int, default=24,
                   help="prefix length of each node's podCIDR")
    p.add_argument("--horizontal-pod-autoscaler-sync-period", type=float, default=15.0,
                   help="seconds between HPA evaluations")
    p.add_argument("--horizontal-pod-autoscaler-downscale-stabilization", type=float,
                   default=300.0, help="seconds of recommendations a scale-down looks back "
                   "over (the highest wins)")
    p.add_argument("--horizontal-pod-autoscaler-tolerance", type=float, default=0.1,
                   help="ratio of current to target utilisation within which no scaling "
                   "happens")


def options_of(args: argparse.Namespace) -> dict[str, Any]:
    """Per-controller settings from the flags (keys read by the controllers)."""
    import ipaddress

    try:
        cidr = ipaddress.ip_network(args.cluster_cidr)
    except ValueError as exc:
        raise ConfigError(f"--cluster-cidr: {exc}") from None
    if not cidr.prefixlen <= args.node_cidr_mask_size <= cidr.max_prefixlen:
        raise ConfigError(f"--node-cidr-mask-size: must be between {cidr.prefixlen} and "
                          f"{cidr.max_prefixlen} for --cluster-cidr {cidr}")
    return {
        "node_monitor_grace_period": args.node_monitor_grace_period,
        "default_toleration_seconds": args.default_not_ready_toleration_seconds,
        "cluster_cidr": str(cidr),
        "node_cidr_mask_size": args.node_cidr_mask_size,
        "hpa_sync_period": args.horizontal_pod_autoscaler_sync_period,
        "hpa_downscale_stabilization": args.horizontal_pod_autoscaler_downscale_stabilization,
        "hpa_tolerance": args.horizontal_pod_autoscaler_tolerance,
    }


class ControllersService(control_pb2_grpc.ControllersServicer):
    """The debug surface: election state and every controller's queue."""

    def __init__(self, manager: ControllerManager, config: DaemonConfig) -> None:
        self.manager = manager
        self.config = config
        self.elector: Any = None

    async def Status(self, request: control_pb2.ControllersStatusRequest,
                     context: grpc.aio.ServicerContext[Any, Any]
                     ) -> control_pb2.ControllersStatus:
        election = leader_status(self.config, self.elector)
        out = control_pb2.ControllersStatus(election=election)
        for c in self.manager.controllers:
            out.controllers.add(name=c.name, queue_depth=len(c.queue), delayed=c.queue.delayed,
                                reconciles=c.stats.reconciles, errors=c.stats.errors,
                                last_error=c.stats.last_error)
        return out


def main(args: argparse.Namespace) -> int:
    """Run ``navarch controllers`` until SIGTERM/SIGINT; the exit status."""
    from services.daemon import run_until_signal

    try:
        config = DaemonConfig.from_args(args, "controller-manager")
        names = enabled_controllers(args.controllers)
        options = options_of(args)
    except (ConfigError, ValueError) as exc:
        print(f"navarch controllers: {exc}", file=sys.stderr)
        return 2
    manager = ControllerManager(names, options=options, identity=config.identity)
    service = ControllersService(manager, config)

    def on_election(elector: object) -> None:
        service.elector = elector

    async def serve(stop: asyncio.Event) -> None:
        await run_daemon(
            "controller-manager", config, services=(SERVICE,),
            add_services=lambda s: control_pb2_grpc.add_ControllersServicer_to_server(  # type: ignore[no-untyped-call]
                service, s),
            lead=manager.run, stop=stop, on_election=on_election)

    return run_until_signal(serve)

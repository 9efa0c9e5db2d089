"""``navarch scheduler``: flags, the Scheduler debug service (Explain, Status) and the
daemon loop (active/standby through the Lease ``kube-system/navarch-scheduler``)."""

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

from .explain import explain
from .framework import PodInfo
from .scheduler import Scheduler, SchedulerOptions

__all__ = ["SchedulerService", "add_arguments", "main"]

SERVICE = "navarch.v1.Scheduler"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``navarch scheduler``."""
    add_daemon_arguments(p, "scheduler", "127.0.0.1:10259")
    p.add_argument("--scheduler-name", default="default-scheduler",
                   help="schedule only pods whose spec.schedulerName is this")
    p.add_argument("--percentage-of-nodes-to-score", type=int, default=0,
                   help="share of nodes (percent) to find feasible before scoring; 0 for "
                   "Kubernetes' adaptive default (50%% - nodes/125, at least 5%%)")
    p.add_argument("--bind-concurrency", type=int, default=256,
                   help="binds in flight at most")
    p.add_argument("--disable-preemption", action="store_true",
                   help="never evict lower-priority pods to make room")


def options_of(args: argparse.Namespace) -> SchedulerOptions:
    """SchedulerOptions from the flags."""
    if not 0 <= args.percentage_of_nodes_to_score <= 100:
        raise ConfigError("--percentage-of-nodes-to-score: must be between 0 and 100")
    if args.bind_concurrency < 1:
        raise ConfigError("--bind-concurrency: must be at least 1")
    return SchedulerOptions(args.scheduler_name, args.percentage_of_nodes_to_score,
                            args.bind_concurrency, not args.disable_preemption)


class SchedulerService(control_pb2_grpc.SchedulerServicer):
    """Explain and Status over the scheduler of the current leadership term."""

    def __init__(self, options: SchedulerOptions, config: DaemonConfig) -> None:
        self.options = options
        self.config = config
        self.scheduler: Scheduler | None = None
        self.elector: Any = None

    async def Explain(self, request: control_pb2.ExplainRequest,
                      context: grpc.aio.ServicerContext[Any, Any]
                      ) -> control_pb2.ExplainResponse:
        s = self.scheduler
        if s is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                "this replica is not leading: ask the leader")
            raise AssertionError  # abort raises
        if request.HasField("pod"):
            pod = request.pod
            pod.metadata.namespace = pod.metadata.namespace or "default"
        else:
            found = s.pods.get(request.name, request.namespace or "default")
            if found is None:
                await context.abort(grpc.StatusCode.NOT_FOUND,
                                    f'pods "{request.name}" not found in namespace '
                                    f'"{request.namespace or "default"}"')
                raise AssertionError
            pod = found
        nodes = s.cache.node_list()
        return explain(s.algorithm, PodInfo.of(pod), nodes, s.cache.cycle_state())

    async def Status(self, request: control_pb2.SchedulerStatusRequest,
                     context: grpc.aio.ServicerContext[Any, Any]
                     ) -> control_pb2.SchedulerStatus:
        election = leader_status(self.config, self.elector)
        out = control_pb2.SchedulerStatus(election=election,
                                          scheduler_name=self.options.scheduler_name)
        s = self.scheduler
        if s is not None:
            out.active_pods = s.queue.active_count
            out.backoff_pods = s.queue.backoff_count
            out.unschedulable_pods = s.queue.unschedulable_count
            out.nodes = len(s.cache.node_list())
            out.bound = s.bound
        return out

    async def lead(self, client: Any) -> None:
        """One leadership term: a fresh Scheduler until cancelled."""
        scheduler = Scheduler(client, self.options)
        self.scheduler = scheduler
        try:
            await scheduler.run()
        finally:
            self.scheduler = None


def main(args: argparse.Namespace) -> int:
    """Run ``navarch scheduler`` until SIGTERM/SIGINT; the exit status."""
    from services.daemon import run_until_signal

    try:
        config = DaemonConfig.from_args(args, "scheduler")
        options = options_of(args)
    except (ConfigError, ValueError) as exc:
        print(f"navarch scheduler: {exc}", file=sys.stderr)
        return 2
    service = SchedulerService(options, config)

    def on_election(elector: object) -> None:
        service.elector = elector

    async def serve(stop: asyncio.Event) -> None:
        await run_daemon(
            "scheduler", config, services=(SERVICE,),
            add_services=lambda s: control_pb2_grpc.add_SchedulerServicer_to_server(  # type: ignore[no-untyped-call]
                service, s),
            lead=service.lead, stop=stop, on_election=on_election)

    return run_until_signal(serve)

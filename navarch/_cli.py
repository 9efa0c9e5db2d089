"""The ``navarch`` command: one subcommand per daemon, plus ``up``/``down`` for a local cluster."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from navarch._log import configure_logging


def _add_store(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from raftstore._config import add_store_arguments

    p = sub.add_parser(
        "store",
        help="run one member of the Raft-replicated, etcd-v3-compatible store",
        description="Run one raftstore member. Clients speak the etcd v3 gRPC API to "
        "--listen-client; members replicate over --listen-peer.",
    )
    add_store_arguments(p)
    p.set_defaults(func=_run_store)


def _run_store(args: argparse.Namespace) -> int:
    from raftstore._config import ConfigError, StoreConfig
    from raftstore._server import run_store

    try:
        config = StoreConfig.from_args(args)
    except ConfigError as e:
        print(f"navarch store: {e}", file=sys.stderr)
        return 2
    return run_store(config)


def _add_apiserver(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from services.apiserver.config import add_arguments

    p = sub.add_parser(
        "apiserver",
        help="run an API server: the only door to the store",
        description="Serve the navarch.v1 Resources and Discovery gRPC services over a store "
        "that speaks the etcd v3 API (raftstore or etcd).",
    )
    add_arguments(p)
    p.set_defaults(func=_run_apiserver)


def _run_apiserver(args: argparse.Namespace) -> int:
    from services.apiserver.config import ApiServerConfig, ConfigError
    from services.apiserver.server import run

    try:
        config = ApiServerConfig.from_args(args)
    except ConfigError as e:
        print(f"navarch apiserver: {e}", file=sys.stderr)
        return 2
    return run(config)


def _add_controllers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from services.controllers.server import add_arguments

    p = sub.add_parser(
        "controllers",
        help="run the controller manager: the reconcile loops of every workload kind",
        description="Run ReplicaSet, Deployment, Endpoints, node, Namespace, garbage "
        "collection, DaemonSet, Job, CronJob, StatefulSet and HPA controllers, "
        "active/standby through a Lease.",
    )
    add_arguments(p)
    p.set_defaults(func=_run_controllers)


def _run_controllers(args: argparse.Namespace) -> int:
    from services.controllers.server import main as run

    return run(args)


def _add_simnodes(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from services.simnodes.config import add_arguments

    p = sub.add_parser(
        "simnodes",
        help="run simulated nodes (hollow kubelets) that run pods without containers",
        description="Register N simulated nodes, renew their leases, and mark pods bound to "
        "them Running and Ready, honouring deletion and grace periods.",
    )
    add_arguments(p)
    p.set_defaults(func=_run_simnodes)


def _run_simnodes(args: argparse.Namespace) -> int:
    from services.simnodes.server import main as run

    return run(args)


def _add_scheduler(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from services.scheduler.server import add_arguments

    p = sub.add_parser(
        "scheduler",
        help="run the scheduler: bind pending pods to nodes",
        description="Place pending pods onto nodes (filter, score, bind), active/standby "
        "through a Lease.",
    )
    add_arguments(p)
    p.set_defaults(func=_run_scheduler)


def _run_scheduler(args: argparse.Namespace) -> int:
    from services.scheduler.server import main as run

    return run(args)


def _add_agent(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from node_agent.config import add_arguments

    p = sub.add_parser(
        "agent",
        help="run a node agent: run the pods bound to this node through containerd",
        description="The kubelet: register the node, run its pods through containerd's "
        "CRI, probe them, report their status, serve their logs, exec and stats.",
    )
    add_arguments(p)
    p.set_defaults(func=_run_agent)


def _run_agent(args: argparse.Namespace) -> int:
    from node_agent.agent import run
    from node_agent.config import AgentConfig, ConfigError

    try:
        cfg = AgentConfig.from_args(args)
    except ConfigError as exc:
        raise SystemExit(f"navarch agent: {exc}") from None
    return run(cfg)


def _add_proxy(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from netproxy.proxy import add_arguments

    p = sub.add_parser(
        "proxy",
        help="run a node's service proxy: Services in nftables, routes to other nodes' pods",
        description="The kube-proxy: program ClusterIPs, NodePorts and load balancing over "
        "ready endpoints in an nftables table through netlink, and route pods between nodes.",
    )
    add_arguments(p)
    p.set_defaults(func=_run_proxy)


def _run_proxy(args: argparse.Namespace) -> int:
    from netproxy.proxy import ConfigError, ProxyConfig, run

    try:
        cfg = ProxyConfig.from_args(args)
    except ConfigError as exc:
        raise SystemExit(f"navarch proxy: {exc}") from None
    return run(cfg)


def _add_dns(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from services.dns.server import add_arguments

    p = sub.add_parser(
        "dns",
        help="run the cluster DNS server: Services and pods by name",
        description="Answer Kubernetes' DNS-based service discovery names (<svc>.<ns>.svc."
        "<domain>, SRV, pod and reverse records) from Services and Endpoints, over UDP and "
        "TCP; forward other names to --upstream.",
    )
    add_arguments(p)
    p.set_defaults(func=_run_dns)


def _run_dns(args: argparse.Namespace) -> int:
    from services.dns.server import main as run

    return run(args)


def _add_local(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from deploy import local

    for name, func, help_ in (
        ("up", local.cmd_up, "start a local cluster on this machine and leave it running"),
        ("down", local.cmd_down, "stop the local cluster and remove everything it made"),
        ("status", local.cmd_status, "show the local cluster's processes and nodes"),
        ("images", local.cmd_images, "list the images the local registry serves"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--run-dir", default=".run", help="where pids, logs and data live")
        if name == "up":
            local.add_up_arguments(p)
        if name == "images":
            p.add_argument("--registry", default="",
                           help="HOST:PORT of the registry (default: the local cluster's)")
        p.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``navarch`` command."""
    parser = argparse.ArgumentParser(prog="navarch", description=__doc__)
    parser.add_argument("--log-level", default="info", help="debug, info, warning or error")
    parser.add_argument(
        "--log-format", choices=("auto", "json", "console"), default="auto",
        help="log format (auto: JSON unless stderr is a terminal)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_store(sub)
    _add_apiserver(sub)
    _add_controllers(sub)
    _add_scheduler(sub)
    _add_simnodes(sub)
    _add_agent(sub)
    _add_proxy(sub)
    _add_dns(sub)
    _add_local(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``navarch`` console script."""
    args = build_parser().parse_args(argv)
    json = {"auto": None, "json": True, "console": False}[args.log_format]
    configure_logging(args.log_level, json=json)
    result: int = args.func(args)
    return result

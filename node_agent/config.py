"""The flags of ``navarch agent``, checked into one frozen ``AgentConfig``.

Contract: a bad flag raises ``ConfigError`` naming the flag, the value and what would be
accepted, before anything is registered or started.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from navarch._names import dns1123_subdomain
from navarch._quantity import QuantityError, parse_quantity
from services.daemon import ConfigError
from services.simnodes.config import TaintSpec, parse_labels, parse_taints

__all__ = ["AgentConfig", "ConfigError", "add_arguments"]


@dataclass(frozen=True)
class AgentConfig:
    """What one node agent manages and how often it reports."""

    server: str
    node_name: str
    node_ip: str
    cri_socket: Path
    root_dir: Path
    cni_conf_dir: Path
    cgroup_root: str = "/navarch"
    listen: str = "127.0.0.1:10250"
    pod_cidr: str = ""
    cluster_dns: tuple[str, ...] = ()
    cpu: str = ""  # capacity override; "" = the host's
    memory: str = ""
    max_pods: int = 110
    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[TaintSpec, ...] = ()
    lease_duration: int = 40
    heartbeat_interval: float = 10.0  # Lease renewals
    status_interval: float = 60.0  # full Node status (sooner when something changes)
    relist_interval: float = 1.0  # how often CRI is asked what changed (kubelet's PLEG)
    resync_interval: float = 60.0  # every pod is synced at least this often (kubelet: 1m)
    workers: int = 8  # pods synced at once
    metrics_listen: str = ""
    pod_metrics_interval: float = 15.0  # PodMetrics for the HPA (0: none)

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AgentConfig:
        """Check the flags of ``add_arguments``; ConfigError names the first bad one."""
        from services.apiserver.config import host_port

        name = args.node_name or socket.gethostname().lower()
        problems = dns1123_subdomain(name)
        if problems:
            raise ConfigError(f"--node-name {name!r}: {problems[0]}")
        try:
            ipaddress.ip_address(args.node_ip)
        except ValueError:
            raise ConfigError(f"--node-ip: {args.node_ip!r} is not an IP address") from None
        host_port("--listen", args.listen)
        if args.pod_cidr:
            try:
                ipaddress.IPv4Network(args.pod_cidr)
            except ValueError as exc:
                raise ConfigError(f"--pod-cidr: {exc}") from None
        for flag, text in (("--cpu", args.cpu), ("--memory", args.memory)):
            if not text:
                continue
            try:
                if parse_quantity(text).milli_value() <= 0:
                    raise ConfigError(f"{flag}: must be more than 0, got {text!r}")
            except QuantityError as exc:
                raise ConfigError(f"{flag}: {exc}") from None
        if args.max_pods <= 0:
            raise ConfigError(f"--max-pods: must be more than 0, got {args.max_pods}")
        if not 0 <= args.pod_metrics_interval < float("inf"):
            raise ConfigError("--pod-metrics-interval: seconds, 0 (none) or more, got "
                              f"{args.pod_metrics_interval}")
        dns = tuple(s for s in args.cluster_dns.split(",") if s)
        for server in dns:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise ConfigError(f"--cluster-dns: {server!r} is not an IP address") from None
        if not args.cgroup_root.startswith("/"):
            raise ConfigError(f"--cgroup-root: must be an absolute cgroup path such as "
                              f"/navarch, got {args.cgroup_root!r}")
        root = Path(args.root_dir).resolve()
        return cls(
            server=args.server, node_name=name, node_ip=args.node_ip,
            cri_socket=Path(args.cri_socket), root_dir=root,
            cni_conf_dir=Path(args.cni_conf_dir) if args.cni_conf_dir else root / "cni",
            cgroup_root=args.cgroup_root.rstrip("/") or "/navarch", listen=args.listen,
            pod_cidr=args.pod_cidr, cluster_dns=dns, cpu=args.cpu, memory=args.memory,
            max_pods=args.max_pods, labels=parse_labels(args.labels),
            taints=parse_taints(args.taints), lease_duration=args.lease_duration,
            heartbeat_interval=args.heartbeat_interval,
            status_interval=args.status_interval, relist_interval=args.relist_interval,
            resync_interval=args.resync_interval, workers=args.workers,
            metrics_listen=args.metrics_listen, pod_metrics_interval=args.pod_metrics_interval)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``navarch agent``."""
    p.add_argument("--server", default="", help="the API server, HOST:PORT")
    p.add_argument("--node-name", default="", help="this node's name (default: hostname)")
    p.add_argument("--node-ip", required=True, help="this node's InternalIP")
    p.add_argument("--cri-socket", required=True, help="containerd's CRI socket")
    p.add_argument("--root-dir", required=True,
                   help="where pod volumes, logs and the agent's state live")
    p.add_argument("--cni-conf-dir", default="",
                   help="containerd's CNI conf_dir, where the agent writes the pod network "
                        "config once the node has a pod CIDR (default: ROOT/cni)")
    p.add_argument("--cgroup-root", default="/navarch",
                   help="cgroup under which pods live (one per node on a shared machine)")
    p.add_argument("--listen", default="127.0.0.1:10250",
                   help="the node service (logs, exec, stats) and health, HOST:PORT")
    p.add_argument("--pod-cidr", default="",
                   help="pod range when no node IPAM assigns spec.podCIDR")
    p.add_argument("--cluster-dns", default="",
                   help="comma-separated DNS server IPs for ClusterFirst pods")
    p.add_argument("--cpu", default="", help="cpu capacity to report (default: the host's)")
    p.add_argument("--memory", default="",
                   help="memory capacity to report (default: the host's)")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--labels", default="", help="node labels, k=v,k2=v2")
    p.add_argument("--taints", default="", help="node taints, key[=value]:Effect,…")
    p.add_argument("--lease-duration", type=int, default=40)
    p.add_argument("--heartbeat-interval", type=float, default=10.0,
                   help="seconds between node Lease renewals")
    p.add_argument("--status-interval", type=float, default=60.0,
                   help="seconds between full node status reports")
    p.add_argument("--relist-interval", type=float, default=1.0,
                   help="seconds between CRI relists that notice container changes")
    p.add_argument("--resync-interval", type=float, default=60.0,
                   help="every pod is synced at least this often")
    p.add_argument("--workers", type=int, default=8, help="pods synced at once")
    p.add_argument("--metrics-listen", default="", help="Prometheus metrics, HOST:PORT")
    p.add_argument("--pod-metrics-interval", type=float, default=15.0,
                   help="seconds between PodMetrics (metrics.k8s.io) of the running pods, "
                        "which the HorizontalPodAutoscaler reads; 0: none")

"""The flags of ``navarch simnodes``, parsed and checked into one frozen ``SimConfig``.

Contract: every bad flag raises ``ConfigError`` whose message names the flag, the bad
value and what would be accepted; nothing is registered before the flags are valid.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from navarch._names import dns1123_subdomain, label_value, qualified_name
from navarch._quantity import QuantityError, parse_quantity
from services.daemon import ConfigError

__all__ = ["ConfigError", "SimConfig", "TaintSpec", "add_arguments", "parse_images",
           "parse_labels", "parse_taints"]

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


@dataclass(frozen=True)
class TaintSpec:
    """One ``--taints`` entry: ``key[=value]:Effect``."""

    key: str
    value: str
    effect: str


@dataclass(frozen=True)
class SimConfig:
    """What ``navarch simnodes`` simulates, and how often it reports."""

    count: int = 1
    name_prefix: str = "sim-"
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[TaintSpec, ...] = ()
    zones: int = 1
    images: tuple[str, ...] = ()
    startup_delay: float = 0.5
    stop_delay: float = 0.2  # a pod's simulated shutdown, capped by its grace period
    heartbeat_interval: float = 10.0
    status_interval: float = 60.0
    lease_duration: int = 40
    pod_metrics: bool = False
    pod_metrics_interval: float = 15.0
    concurrency: int = 128  # API writes in flight (registration, renewals, pod status)

    def node_name(self, index: int) -> str:
        """The name of the ``index``-th node: the prefix and four digits (sim-0000)."""
        return f"{self.name_prefix}{index:04d}"

    def node_names(self) -> list[str]:
        """The names of every node of this process, in index order."""
        return [self.node_name(i) for i in range(self.count)]

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SimConfig:
        """Check the flags of ``add_arguments``; ConfigError names the first bad one."""
        if args.count < 0:
            raise ConfigError(f"--count: must be 0 or more, got {args.count}")
        problems = dns1123_subdomain(f"{args.name_prefix}{max(args.count - 1, 0):04d}")
        if problems:
            raise ConfigError(f"--name-prefix {args.name_prefix!r}: node names would be "
                              f"invalid: {problems[0]}")
        for flag, text in (("--cpu", args.cpu), ("--memory", args.memory)):
            try:
                if parse_quantity(text).milli_value() <= 0:
                    raise ConfigError(f"{flag}: must be more than 0, got {text!r}")
            except QuantityError as exc:
                raise ConfigError(f"{flag}: {exc}") from None
        if args.pods <= 0:
            raise ConfigError(f"--pods: must be more than 0, got {args.pods}")
        if args.zones <= 0:
            raise ConfigError(f"--zones: must be 1 or more, got {args.zones}")
        for flag, value in (("--startup-delay", args.startup_delay),):
            if value < 0:
                raise ConfigError(f"{flag}: must be 0 or more seconds, got {value:g}")
        for flag, value in (("--heartbeat-interval", args.heartbeat_interval),
                            ("--status-interval", args.status_interval),
                            ("--pod-metrics-interval", args.pod_metrics_interval)):
            if value <= 0:
                raise ConfigError(f"{flag}: must be more than 0 seconds, got {value:g}")
        if args.concurrency <= 0:
            raise ConfigError(f"--concurrency: must be more than 0, got {args.concurrency}")
        return cls(count=args.count, name_prefix=args.name_prefix, cpu=args.cpu,
                   memory=args.memory, pods=args.pods, labels=parse_labels(args.labels),
                   taints=parse_taints(args.taints), zones=args.zones,
                   images=parse_images(args.images), startup_delay=args.startup_delay,
                   heartbeat_interval=args.heartbeat_interval,
                   status_interval=args.status_interval, pod_metrics=args.pod_metrics,
                   pod_metrics_interval=args.pod_metrics_interval,
                   concurrency=args.concurrency)


def _items(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_labels(text: str) -> tuple[tuple[str, str], ...]:
    """``k=v,k2=v2`` as pairs, in order; ConfigError for a missing ``=`` or a bad key or
    value (label rules: a qualified name, a value of at most 63 characters)."""
    out: list[tuple[str, str]] = []
    for item in _items(text):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--labels: {item!r} has no '=': use key=value, like "
                              "disk=ssd,rack=r1")
        key, value = key.strip(), value.strip()
        problems = qualified_name(key)
        if problems:
            raise ConfigError(f"--labels: key {key!r}: {problems[0]}")
        problems = label_value(value)
        if problems:
            raise ConfigError(f"--labels: value {value!r} of {key!r}: {problems[0]}")
        out.append((key, value))
    return tuple(out)


def parse_taints(text: str) -> tuple[TaintSpec, ...]:
    """``key=value:Effect,key:Effect`` as taints (kubectl taint's syntax); ConfigError for
    a missing or unknown effect or a bad key or value."""
    out: list[TaintSpec] = []
    for item in _items(text):
        head, sep, effect = item.rpartition(":")
        if not sep or not head:
            raise ConfigError(f"--taints: {item!r} has no effect: use key=value:Effect or "
                              f"key:Effect, Effect one of {', '.join(TAINT_EFFECTS)}")
        if effect not in TAINT_EFFECTS:
            raise ConfigError(f"--taints: {item!r}: unknown effect {effect!r}; use one of "
                              f"{', '.join(TAINT_EFFECTS)}")
        key, _, value = head.partition("=")
        problems = qualified_name(key)
        if problems:
            raise ConfigError(f"--taints: key {key!r}: {problems[0]}")
        problems = label_value(value)
        if problems:
            raise ConfigError(f"--taints: value {value!r} of {key!r}: {problems[0]}")
        out.append(TaintSpec(key, value, effect))
    return tuple(out)


def parse_images(text: str) -> tuple[str, ...]:
    """Comma-separated image names (``nginx:1.25,busybox``) as reported in
    node.status.images; ConfigError for one with whitespace inside."""
    names = _items(text)
    for name in names:
        if any(c.isspace() for c in name):
            raise ConfigError(f"--images: {name!r} contains whitespace; give image names "
                              "separated by commas, like nginx:1.25,busybox")
    return tuple(names)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``navarch simnodes``."""
    p.add_argument("--server", default="",
                   help="the API server, HOST:PORT (default: $NAVARCH_SERVER, then the "
                   "navctl config file)")
    p.add_argument("--listen", default="127.0.0.1:10250",
                   help="HOST:PORT for gRPC health checking (SERVING once every node is "
                   "registered)")
    p.add_argument("--count", type=int, default=1, help="how many nodes to simulate")
    p.add_argument("--name-prefix", default="sim-",
                   help="node names are this prefix and four digits (sim-0000, sim-0001…)")
    p.add_argument("--cpu", default="4", help="cpu capacity of each node")
    p.add_argument("--memory", default="16Gi", help="memory capacity of each node")
    p.add_argument("--pods", type=int, default=110, help="pod capacity of each node")
    p.add_argument("--labels", default="",
                   help="labels added to every node, k=v,k2=v2 (hostname, os and zone "
                   "labels are always set)")
    p.add_argument("--zones", type=int, default=1,
                   help="nodes are spread round-robin over zones zone-0…zone-(N-1) "
                   "(label topology.kubernetes.io/zone)")
    p.add_argument("--taints", default="",
                   help="taints of every node, key=value:Effect,key:Effect")
    p.add_argument("--images", default="",
                   help="image names every node reports as present (node.status.images)")
    p.add_argument("--startup-delay", type=float, default=0.5,
                   help="seconds before a pod bound to a node is Running and Ready")
    p.add_argument("--heartbeat-interval", type=float, default=10.0,
                   help="seconds between renewals of each node's Lease")
    p.add_argument("--status-interval", type=float, default=60.0,
                   help="seconds between refreshes of each node's Ready condition")
    p.add_argument("--pod-metrics", action=argparse.BooleanOptionalAction, default=False,
                   help="publish PodMetrics (metrics.k8s.io) for running pods, from the "
                   "annotation simnodes.navarch.io/cpu-usage or 10%% of requests")
    p.add_argument("--pod-metrics-interval", type=float, default=15.0,
                   help="seconds between PodMetrics updates (metrics-server's resolution)")
    p.add_argument("--concurrency", type=int, default=128,
                   help="API writes in flight at once")

"""``navarch apiserver`` flags and their validation (no heavy imports: the ``navarch``
command builds its parser from this module for every subcommand)."""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from .auth import TokenFileError, read_token_file

__all__ = ["AUTHORIZATION_MODES", "ApiServerConfig", "ConfigError", "add_arguments", "host_port"]


class ConfigError(ValueError):
    """A flag value that cannot be used; the message names the flag."""


@dataclass(frozen=True)
class ApiServerConfig:
    """Everything ``navarch apiserver`` is told on its command line."""

    store_endpoints: tuple[str, ...]
    listen: str = "127.0.0.1:6443"
    service_cluster_ip_range: str = "10.96.0.0/12"
    service_node_port_range: tuple[int, int] = (30000, 32767)
    watch_bookmark_interval: float = 60.0
    compaction_interval: float = 300.0
    metrics_listen: str = ""
    watch_cache_size: int = 10_000
    advertise_address: str = ""
    endpoint_reconciler_type: str = "lease"
    authorization_modes: tuple[str, ...] = ("AlwaysAllow",)
    token_auth_file: str = ""
    anonymous_auth: bool = True
    encryption_provider_config: str = ""

    def advertised(self) -> tuple[str, int] | None:
        """(IP, port) this server publishes in the ``kubernetes`` Service's Endpoints:
        ``--advertise-address`` with the port of its ``--listen`` entry (else the first
        entry's); without the flag, the first ``--listen`` host that is an IP neither
        loopback nor unspecified. None when there is none (loopback cannot be published)."""
        listens = [host_port("--listen", a) for a in self.listen.split(",")]
        if self.advertise_address:
            ports = [port for host, port in listens if _bare(host) == self.advertise_address]
            return self.advertise_address, (ports or [listens[0][1]])[0]
        for host, port in listens:
            try:
                ip = ipaddress.ip_address(_bare(host))
            except ValueError:
                continue
            if not (ip.is_loopback or ip.is_unspecified):
                return str(ip), port
        return None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ApiServerConfig:
        """Validate parsed flags."""
        endpoints = tuple(e.strip() for e in args.store_endpoints.split(",") if e.strip())
        if not endpoints:
            raise ConfigError("--store-endpoints: give at least one HOST:PORT")
        for e in endpoints:
            host_port("--store-endpoints", e)
        for address in args.listen.split(","):
            host_port("--listen", address)
        try:
            ipaddress.ip_network(args.service_cluster_ip_range)
        except ValueError as exc:
            raise ConfigError(f"--service-cluster-ip-range: {exc}") from None
        low, sep, high = args.service_node_port_range.partition("-")
        if not (sep and low.isdigit() and high.isdigit() and 0 < int(low) <= int(high) < 65536):
            raise ConfigError("--service-node-port-range: expected LOW-HIGH, e.g. 30000-32767")
        if args.metrics_listen:
            host_port("--metrics-listen", args.metrics_listen)
        if args.watch_cache_size < 1:
            raise ConfigError("--watch-cache-size: must be at least 1")
        advertise = args.advertise_address.strip()
        if advertise:
            try:
                ip = ipaddress.ip_address(advertise)
            except ValueError:
                raise ConfigError(f"--advertise-address: expected an IP address, got "
                                  f"{advertise!r}") from None
            if ip.is_loopback or ip.is_unspecified:
                raise ConfigError(f"--advertise-address: {advertise} cannot be reached from "
                                  "pods: give an address that is neither loopback nor "
                                  "unspecified")
            advertise = str(ip)
        if args.endpoint_reconciler_type not in ("lease", "none"):
            raise ConfigError("--endpoint-reconciler-type: expected lease or none, got "
                              f"{args.endpoint_reconciler_type!r}")
        modes = tuple(m.strip() for m in args.authorization_mode.split(",") if m.strip())
        if not modes:
            raise ConfigError("--authorization-mode: give at least one of "
                              + ", ".join(AUTHORIZATION_MODES))
        for mode in modes:
            if mode not in AUTHORIZATION_MODES:
                raise ConfigError(f"--authorization-mode: unknown mode {mode!r}; supported: "
                                  + ", ".join(AUTHORIZATION_MODES))
        if len(set(modes)) != len(modes):
            raise ConfigError("--authorization-mode: a mode is given twice")
        if args.anonymous_auth not in ("true", "false"):
            raise ConfigError(f"--anonymous-auth: expected true or false, got "
                              f"{args.anonymous_auth!r}")
        if args.token_auth_file:
            try:
                read_token_file(Path(args.token_auth_file))
            except TokenFileError as exc:
                raise ConfigError(f"--token-auth-file: {exc}") from None
        elif args.anonymous_auth == "false":
            raise ConfigError("--anonymous-auth=false needs --token-auth-file: no request "
                              "could authenticate")
        if args.encryption_provider_config:
            from .encryption import EncryptionConfigError, load_config

            try:
                load_config(Path(args.encryption_provider_config))
            except EncryptionConfigError as exc:
                raise ConfigError(f"--encryption-provider-config: {exc}") from None
        return cls(endpoints, args.listen, args.service_cluster_ip_range,
                   (int(low), int(high)), args.watch_bookmark_interval,
                   args.compaction_interval, args.metrics_listen, args.watch_cache_size,
                   advertise, args.endpoint_reconciler_type, modes, args.token_auth_file,
                   args.anonymous_auth == "true", args.encryption_provider_config)


AUTHORIZATION_MODES = ("AlwaysAllow", "AlwaysDeny", "RBAC")


def _bare(host: str) -> str:
    """``host`` without the brackets of an IPv6 literal."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def host_port(flag: str, value: str) -> tuple[str, int]:
    """(host, port) of a HOST:PORT flag value; ConfigError naming the flag otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{flag}: expected HOST:PORT, got {value!r}")
    return host, int(port)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``navarch apiserver``."""
    p.add_argument("--store-endpoints", required=True,
                   help="comma-separated HOST:PORT client endpoints of the store "
                   "(raftstore or etcd)")
    p.add_argument("--listen", default="127.0.0.1:6443",
                   help="HOST:PORT to serve gRPC on; several, comma-separated (the local "
                   "cluster adds its node bridge's address, for the agents)")
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/12",
                   help="CIDR ClusterIPs are allocated from")
    p.add_argument("--service-node-port-range", default="30000-32767",
                   help="LOW-HIGH range NodePorts are allocated from")
    p.add_argument("--watch-bookmark-interval", type=float, default=60.0,
                   help="seconds between BOOKMARK events on quiet watches that ask for them")
    p.add_argument("--compaction-interval", type=float, default=300.0,
                   help="seconds of store history kept; 0 never compacts")
    p.add_argument("--watch-cache-size", type=int, default=10_000,
                   help="recent changes kept per resource for watches to resume from")
    p.add_argument("--metrics-listen", default="",
                   help="HOST:PORT to serve Prometheus metrics on (off when empty)")
    p.add_argument("--advertise-address", default="",
                   help="IP address published in the default/kubernetes Service's "
                   "Endpoints, for pods to reach this server (default: the first --listen "
                   "address that is not loopback)")
    p.add_argument("--endpoint-reconciler-type", default="lease",
                   help="lease: API servers keep default/kubernetes's Endpoints to the live "
                   "ones, each renewing a Lease in kube-system; none: leave them alone")
    p.add_argument("--authorization-mode", default="AlwaysAllow",
                   help="comma-separated authorizers tried in order: AlwaysAllow (the "
                   "default), AlwaysDeny, RBAC (roles and bindings; members of "
                   "system:masters may do everything)")
    p.add_argument("--token-auth-file", default="",
                   help="Kubernetes' static token file (CSV: token,user,uid,\"groups\"): "
                   "requests carrying 'authorization: Bearer TOKEN' are that user")
    p.add_argument("--anonymous-auth", default="true",
                   help="true: requests without a token are system:anonymous (group "
                   "system:unauthenticated); false: they are refused")
    p.add_argument("--encryption-provider-config", default="",
                   help="Kubernetes' EncryptionConfiguration file: which resources are "
                   "encrypted in the store (aesgcm, aescbc; identity reads plaintext)")

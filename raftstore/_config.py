"""Command-line configuration of one raftstore member."""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_REQUEST_BYTES = 1536 * 1024  # 1.5 MiB, etcd's default
DEFAULT_TOKEN = "navarch-raftstore"


class ConfigError(ValueError):
    """A flag has a value the store cannot run with; the message names the flag."""


def parse_hostport(flag: str, value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (IPv4, ``[IPv6]``, a name); ConfigError naming ``flag`` if not."""
    for scheme in ("http://", "https://"):
        if value.startswith(scheme):
            value = value[len(scheme):]
    host, sep, port_s = value.rpartition(":")
    if not sep or not host or not port_s.isdigit():
        raise ConfigError(f"{flag}: {value!r} is not HOST:PORT (for example 127.0.0.1:2379)")
    port = int(port_s)
    if not 0 < port < 65536:
        raise ConfigError(f"{flag}: port {port} is outside 1-65535")
    host = host.strip("[]")
    return host, port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class StoreConfig:
    """Everything one member needs to start. Immutable once parsed."""

    name: str
    data_dir: Path
    listen_client: tuple[str, int]
    advertise_client: tuple[str, int]
    listen_peer: tuple[str, int]
    initial_cluster: tuple[tuple[str, str], ...]  # (name, "host:port") in the given order
    initial_cluster_state: str = "new"
    initial_cluster_token: str = DEFAULT_TOKEN
    peer_secret: bytes | None = None
    heartbeat_interval: float = 0.1
    election_timeout: float = 1.0
    snapshot_count: int = 10000
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    progress_notify_interval: float = 600.0

    @property
    def peer_address(self) -> str:
        """This member's address as its peers know it (its entry in --initial-cluster)."""
        return dict(self.initial_cluster)[self.name]

    @property
    def other_peers(self) -> list[str]:
        """Peer addresses of the other initial members."""
        return [addr for name, addr in self.initial_cluster if name != self.name]

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> StoreConfig:
        """Validate parsed flags; every problem raises ConfigError naming its flag."""
        name = args.name
        if not name or any(c in name for c in "=,"):
            raise ConfigError(f"--name: {name!r} must be non-empty and contain no '=' or ','")
        members: list[tuple[str, str]] = []
        raw = args.initial_cluster or f"{name}={args.listen_peer}"
        for item in raw.split(","):
            mname, sep, addr = item.strip().partition("=")
            if not sep or not mname:
                raise ConfigError(
                    f"--initial-cluster: {item!r} is not NAME=HOST:PORT "
                    "(for example s1=127.0.0.1:2380,s2=127.0.0.1:2381)"
                )
            host, port = parse_hostport("--initial-cluster", addr)
            if not _is_ip(host):
                raise ConfigError(
                    f"--initial-cluster: peer address {addr!r} must be an IP address, "
                    "since members identify each other by it"
                )
            if any(m == mname for m, _ in members):
                raise ConfigError(f"--initial-cluster: member name {mname!r} appears twice")
            members.append((mname, f"{host}:{port}"))
        if name not in dict(members):
            raise ConfigError(f"--initial-cluster: has no entry for this member's --name {name!r}")
        addrs = [a for _, a in members]
        if len(set(addrs)) != len(addrs):
            raise ConfigError("--initial-cluster: two members share one peer address")
        if args.initial_cluster_state not in ("new", "existing"):
            raise ConfigError("--initial-cluster-state: must be 'new' or 'existing'")
        secret: bytes | None = None
        if args.peer_secret_file:
            try:
                secret = Path(args.peer_secret_file).read_bytes().strip()
            except OSError as e:
                raise ConfigError(f"--peer-secret-file: cannot read it: {e.strerror}") from e
            if len(secret) < 16:
                raise ConfigError("--peer-secret-file: the secret must be at least 16 bytes")
        elif len(members) > 1:
            raise ConfigError(
                "--peer-secret-file: required when the cluster has more than one member; "
                "peers authenticate each other and encrypt the Raft channel with it "
                "(generate one with: head -c 32 /dev/urandom | base64 > secret)"
            )
        if args.heartbeat_interval <= 0:
            raise ConfigError("--heartbeat-interval: must be a positive number of milliseconds")
        if args.election_timeout < 5 * args.heartbeat_interval:
            raise ConfigError("--election-timeout: must be at least 5x --heartbeat-interval")
        if args.snapshot_count < 100:
            raise ConfigError("--snapshot-count: must be at least 100")
        if not 1024 <= args.max_request_bytes <= 64 * 1024 * 1024:
            raise ConfigError("--max-request-bytes: must be between 1024 and 67108864")
        listen_client = parse_hostport("--listen-client", args.listen_client)
        advertise = (
            parse_hostport("--advertise-client", args.advertise_client)
            if args.advertise_client else listen_client
        )
        return cls(
            name=name,
            data_dir=Path(args.data_dir),
            listen_client=listen_client,
            advertise_client=advertise,
            listen_peer=parse_hostport("--listen-peer", args.listen_peer),
            initial_cluster=tuple(members),
            initial_cluster_state=args.initial_cluster_state,
            initial_cluster_token=args.initial_cluster_token,
            peer_secret=secret,
            heartbeat_interval=args.heartbeat_interval / 1000.0,
            election_timeout=args.election_timeout / 1000.0,
            snapshot_count=args.snapshot_count,
            max_request_bytes=args.max_request_bytes,
            progress_notify_interval=args.watch_progress_notify_interval,
        )


def add_store_arguments(p: argparse.ArgumentParser) -> None:
    """Add the flags of ``navarch store`` (named after etcd's where they mean the same)."""
    p.add_argument("--name", required=True, help="this member's name, unique in the cluster")
    p.add_argument("--data-dir", required=True, help="directory for the Raft journal and snapshots")
    p.add_argument("--listen-client", required=True, metavar="HOST:PORT",
                   help="where clients reach the etcd v3 gRPC API")
    p.add_argument("--advertise-client", metavar="HOST:PORT",
                   help="client address published to the cluster (default: --listen-client)")
    p.add_argument("--listen-peer", required=True, metavar="HOST:PORT",
                   help="where peers reach this member's Raft channel")
    p.add_argument("--initial-cluster", metavar="NAME=HOST:PORT,...",
                   help="every initial member's name and peer address (default: this member alone)")
    p.add_argument("--initial-cluster-state", default="new", help="new or existing")
    p.add_argument("--initial-cluster-token", default=DEFAULT_TOKEN,
                   help="distinguishes clusters built from the same member list")
    p.add_argument("--peer-secret-file", help="shared secret authenticating and encrypting peers")
    p.add_argument("--heartbeat-interval", type=float, default=100.0, help="milliseconds")
    p.add_argument("--election-timeout", type=float, default=1000.0, help="milliseconds")
    p.add_argument("--snapshot-count", type=int, default=10000,
                   help="applied entries between snapshots (log compaction)")
    p.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES,
                   help="largest client request accepted (default 1.5 MiB, as etcd)")
    p.add_argument("--watch-progress-notify-interval", type=float, default=600.0,
                   help="seconds between progress notifications to idle watches that asked")

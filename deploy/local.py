"""``navarch up`` / ``down`` / ``status`` / ``images``: a whole cluster on this machine.

    host:  bridge nvbr0 172.30.0.1/24 ── registry 172.30.0.1:5000 (images built here)
           store: 3 raftstore members (--store raft) or 3 etcd members (--store etcd)
           apiserver 127.0.0.1:6443 and 172.30.0.1:6443 (the agents' way in)
           controllers (health :10257), scheduler (:10259)[, simnodes (:10250)]
    node-<i> (i = 1..--nodes, default 3): network namespace nv-node-<i>, 172.30.0.1<i>,
           its own containerd, and `navarch agent` inside the namespace (:10250)

Files under ``--run-dir`` (default ``.run``)::

    cluster.json                      what `up` chose (store, nodes, addresses): `down` reads it
    store/{peer-secret,s1/,s2/,s3/}   members' data, logs and pids
    apiserver/, controllers/, scheduler/[, simnodes/]   logs and pids
    registry/, nodes/node-<i>/        see deploy/localnodes.py
    config.json                       {"server": "127.0.0.1:6443"}

``up`` also writes navctl's config (~/.navarch/config.json, or $NAVARCH_CONFIG) and
applies ``--example`` manifests. It is idempotent: what runs is left alone. ``down``
stops everything and removes every process, namespace, link, mount, cgroup and
directory ``up`` made, the run directory included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

from deploy import localauth, localnodes, nodeenv
from deploy.nodeenv import NetworkPlan

MEMBERS = (("s1", 12379, 12380), ("s2", 22379, 22380), ("s3", 32379, 32380))
HOST = "127.0.0.1"
API_PORT = 6443
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class LocalConfig:
    """What ``up`` chose; saved as cluster.json so that ``down`` and ``status`` agree."""

    store: str = "raft"
    nodes: int = 3
    sim_nodes: int = 0
    prefix: str = "nv"
    subnet: str = "172.30.0.0/24"
    registry_port: int = 5000
    api_port: int = API_PORT
    port_offset: int = 0  # added to every loopback port (tests run beside a real `up`)

    @property
    def plan(self) -> NetworkPlan:
        return NetworkPlan(self.prefix, self.subnet, self.registry_port)

    @property
    def api(self) -> str:
        return f"{HOST}:{self.api_port}"

    def save(self, run_dir: Path) -> None:
        (run_dir / "cluster.json").write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> LocalConfig:
        try:
            return cls(**json.loads((run_dir / "cluster.json").read_text()))
        except (OSError, ValueError, TypeError):
            return cls()


@dataclass(frozen=True)
class LocalMember:
    """One store member of the local cluster and where its files live."""

    name: str
    client_port: int
    peer_port: int
    root: Path
    backend: str = "raft"

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.client_port}"

    @property
    def pid_file(self) -> Path:
        return self.root / "member.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "member.log"

    def pid(self) -> int | None:
        """The member's pid if it is running."""
        return nodeenv.pid_in_file(self.pid_file, b"etcd" if self.backend == "etcd"
                                   else b"store", self.name.encode())


def members(run_dir: Path, cfg: LocalConfig | None = None) -> list[LocalMember]:
    cfg = cfg or LocalConfig.load(run_dir)
    off = cfg.port_offset
    return [LocalMember(n, c + off, p + off, run_dir / "store" / n, cfg.store)
            for n, c, p in MEMBERS]


def endpoints(run_dir: Path, cfg: LocalConfig | None = None) -> str:
    return ",".join(m.endpoint for m in members(run_dir, cfg))


def _member_command(m: LocalMember, ms: list[LocalMember], secret: Path) -> list[str]:
    if m.backend == "etcd":
        peers = ",".join(f"{x.name}=http://{HOST}:{x.peer_port}" for x in ms)
        data = m.root / "data"
        return ["etcd", "--name", m.name, "--data-dir", str(data),
                "--listen-client-urls", f"http://{m.endpoint}",
                "--advertise-client-urls", f"http://{m.endpoint}",
                "--listen-peer-urls", f"http://{HOST}:{m.peer_port}",
                "--initial-advertise-peer-urls", f"http://{HOST}:{m.peer_port}",
                "--initial-cluster", peers,
                "--initial-cluster-state", "existing" if data.exists() else "new",
                "--initial-cluster-token", f"navarch-local-{ms[0].peer_port}",
                "--logger", "zap", "--log-level", "warn"]
    initial = ",".join(f"{x.name}={HOST}:{x.peer_port}" for x in ms)
    return [sys.executable, "-m", "navarch", "--log-format", "json", "store",
            "--name", m.name, "--data-dir", str(m.root / "data"),
            "--listen-client", m.endpoint, "--listen-peer", f"{HOST}:{m.peer_port}",
            "--initial-cluster", initial, "--peer-secret-file", str(secret),
            # idle watches (the API server's watch cache) hear of progress within seconds
            "--watch-progress-notify-interval", "5"]


def _start(m: LocalMember, ms: list[LocalMember], secret: Path) -> int:
    m.root.mkdir(parents=True, exist_ok=True)
    with open(m.log_file, "ab") as log:
        proc = subprocess.Popen(_member_command(m, ms, secret), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    m.pid_file.write_text(str(proc.pid))
    return proc.pid


def _status(endpoint: str) -> rpc_pb2.StatusResponse | None:
    try:
        with grpc.insecure_channel(endpoint) as ch:
            return rpc_pb2_grpc.MaintenanceStub(ch).Status(rpc_pb2.StatusRequest(), timeout=1.0)
    except grpc.RpcError:
        return None


def _wait_ready(ms: list[LocalMember]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        stats = [_status(m.endpoint) for m in ms]
        for m in ms:
            if m.pid() is None:
                tail = m.log_file.read_text(errors="replace").splitlines()[-5:]
                raise SystemExit(f"navarch up: member {m.name} exited; its log ends:\n"
                                 + "\n".join(tail))
        leaders = {s.leader for s in stats if s is not None}
        if all(stats) and len(leaders) == 1 and 0 not in leaders:
            return
        time.sleep(0.2)
    raise SystemExit(f"navarch up: the store did not elect a leader within {START_TIMEOUT}s; "
                     f"see {ms[0].log_file.parent.parent}/*/member.log")


def _etcdctl(run_dir: Path, *args: str) -> None:
    if shutil.which("etcdctl") is None:
        print("(etcdctl not installed: apt-get install etcd-client)")
        return
    env = dict(os.environ, ETCDCTL_API="3")
    subprocess.run(["etcdctl", f"--endpoints={endpoints(run_dir)}", *args], env=env,
                   check=False, timeout=30)


def _pid_of(pid_file: Path, marker: bytes) -> int | None:
    """The pid in ``pid_file`` if that process runs and its command line has ``marker``."""
    return nodeenv.pid_in_file(pid_file, marker)


def daemons(cfg: LocalConfig) -> list[tuple[str, int, tuple[str, ...]]]:
    """Name, health port (0: the apiserver's), extra flags; started in this order after
    the store, stopped in reverse."""
    off = cfg.port_offset
    out: list[tuple[str, int, tuple[str, ...]]] = [
        ("apiserver", 0, ()), ("controllers", 10257 + off, ()),
        ("scheduler", 10259 + off, ())]
    if cfg.sim_nodes:
        out.append(("simnodes", 10250 + off, ("--count", str(cfg.sim_nodes))))
    return out


def _daemon_dir(run_dir: Path, name: str) -> Path:
    return run_dir / name


def _daemon_pid(run_dir: Path, name: str) -> int | None:
    return _pid_of(_daemon_dir(run_dir, name) / f"{name}.pid", name.encode())


def _api_pid(run_dir: Path) -> int | None:
    return _daemon_pid(run_dir, "apiserver")


def _serving(address: str) -> bool:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(address) as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                         timeout=1.0)
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _daemon_command(run_dir: Path, cfg: LocalConfig, name: str, port: int,
                    extra: tuple[str, ...]) -> list[str]:
    base = [sys.executable, "-m", "navarch", "--log-format", "json", name]
    if name == "apiserver":
        listen = cfg.api if not cfg.nodes else f"{cfg.api},{cfg.plan.host_ip}:{cfg.api_port}"
        return [*base, "--store-endpoints", endpoints(run_dir, cfg), "--listen", listen,
                "--authorization-mode", "RBAC",
                "--token-auth-file", str(localauth.token_file(run_dir)),
                "--encryption-provider-config",
                str(localauth.ensure_encryption_config(run_dir))]
    return [*base, "--server", cfg.api, "--listen", f"{HOST}:{port}", *extra]


def _start_daemon(run_dir: Path, cfg: LocalConfig, name: str, port: int,
                  extra: tuple[str, ...]) -> None:
    root = _daemon_dir(run_dir, name)
    root.mkdir(parents=True, exist_ok=True)
    address = f"{HOST}:{port}" if port else cfg.api
    pid = _daemon_pid(run_dir, name)
    if pid is not None:
        print(f"{name} already running (pid {pid})")
    else:
        print(f"starting {name} ({address})")
        env = None if name == "apiserver" else localauth.env_for(
            run_dir, localauth.COMPONENTS[name][0])
        with open(root / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(_daemon_command(run_dir, cfg, name, port, extra),
                                    stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    env=env)
        (root / f"{name}.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + START_TIMEOUT
    while not _serving(address):
        if _daemon_pid(run_dir, name) is None:
            tail = (root / f"{name}.log").read_text(errors="replace").splitlines()[-8:]
            raise SystemExit(f"navarch up: {name} exited; its log ends:\n" + "\n".join(tail))
        if time.monotonic() > deadline:
            raise SystemExit(f"navarch up: {name} did not serve within {START_TIMEOUT}s; "
                             f"see {root / (name + '.log')}")
        time.sleep(0.2)


def _write_config(run_dir: Path, cfg: LocalConfig) -> Path:
    """navctl's config: the server and the admin's token (system:masters), readable by
    root only, as kubeadm's admin.conf."""
    body = json.dumps({"server": cfg.api,
                       "token": localauth.token_of(run_dir, localauth.ADMIN)}, indent=2) + "\n"
    target = Path(os.environ.get("NAVARCH_CONFIG", Path.home() / ".navarch" / "config.json"))
    target.parent.mkdir(parents=True, exist_ok=True)
    for path in (run_dir / "config.json", target):
        localauth.write_private(path, body)
    return target


def _stop_pid(pid: int, what: str) -> None:
    print(f"stopping {what} (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _navctl(cfg: LocalConfig, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "navarch._navctl", "--server", cfg.api, *args],
                   check=False, timeout=120)


def _apply_examples(cfg: LocalConfig, paths: list[str]) -> None:
    for path in paths:
        print(f"\n$ navctl apply -f {path}")
        _navctl(cfg, "apply", "-f", path)


def _wait_nodes_ready(cfg: LocalConfig, names: list[str]) -> None:
    """Until every node reports Ready (its pod network is configured by then), so that the
    examples spread over all of them."""
    import asyncio

    import navarch

    async def ready() -> bool:
        async with navarch.Client(cfg.api) as client:
            nodes = {n.metadata.name: n for n in (await client.nodes().list()).items}
        return all(name in nodes and any(c.type == "Ready" and c.status == "True"
                                         for c in nodes[name].status.conditions)
                   for name in names)

    deadline = time.monotonic() + START_TIMEOUT
    while not asyncio.run(ready()):
        if time.monotonic() > deadline:
            raise SystemExit(f"navarch up: nodes not Ready within {START_TIMEOUT}s; see "
                             "the agents' logs under nodes/")
        time.sleep(0.5)


def config_from_args(args: argparse.Namespace, run_dir: Path) -> LocalConfig:
    """Flags over what an earlier ``up`` of this run directory chose."""
    saved = LocalConfig.load(run_dir)
    choose = {k: v for k, v in vars(args).items()
              if k in LocalConfig.__dataclass_fields__ and v is not None}
    merged = LocalConfig(**{**asdict(saved), **choose})
    if merged.store not in ("raft", "etcd"):
        raise SystemExit(f"navarch up: --store {merged.store!r}: accepted: raft, etcd")
    if merged.nodes < 0 or merged.nodes > 200:
        raise SystemExit(f"navarch up: --nodes {merged.nodes}: must be between 0 and 200")
    if merged.store == "etcd" and shutil.which("etcd") is None:
        raise SystemExit("navarch up: --store etcd needs Debian's etcd-server (make deps)")
    return merged


def cmd_up(args: argparse.Namespace) -> int:
    """Start whatever is not running, wait until it serves, show the cluster."""
    run_dir = Path(args.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = config_from_args(args, run_dir)
    cfg.save(run_dir)
    localauth.ensure_tokens(run_dir, [f"node-{i}" for i in range(1, cfg.nodes + 1)])
    # this process's own calls (the DNS Service, the examples) act as the admin
    os.environ["NAVARCH_TOKEN"] = localauth.token_of(run_dir, localauth.ADMIN)
    if cfg.nodes:
        refs = localnodes.start_infra(run_dir, cfg.plan)
        print("images:\n  " + "\n  ".join(refs))
    ms = members(run_dir, cfg)
    store_dir = run_dir / "store"
    store_dir.mkdir(parents=True, exist_ok=True)
    secret = store_dir / "peer-secret"
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(32))
        secret.chmod(0o600)
    for m in ms:
        pid = m.pid()
        if pid is None:
            print(f"starting store member {m.name} ({cfg.store}, client {m.endpoint})")
            _start(m, ms, secret)
        else:
            print(f"store member {m.name} already running (pid {pid})")
    _wait_ready(ms)
    print("\nThe store is up. Members:")
    _etcdctl(run_dir, "member", "list", "-w", "table")
    print("Endpoint status:")
    _etcdctl(run_dir, "endpoint", "status", "-w", "table")
    for name, port, extra in daemons(cfg):
        _start_daemon(run_dir, cfg, name, port, extra)
    nodes = localnodes.start_nodes(run_dir, cfg.plan, cfg.nodes,
                                   f"{cfg.plan.host_ip}:{cfg.api_port}", _serving)
    config = _write_config(run_dir, cfg)
    if nodes:
        _wait_nodes_ready(cfg, [n.name for n in nodes])
    print(f"\nThe apiserver serves on {cfg.api} (navctl finds it through {config}); the "
          f"controllers and the scheduler run against it, with {len(nodes)} node(s)"
          + (f" and {cfg.sim_nodes} simulated node(s)." if cfg.sim_nodes else "."))
    _apply_examples(cfg, list(getattr(args, "example", None) or []))
    if nodes:
        print("\n$ navctl get nodes")
        _navctl(cfg, "get", "nodes")
    print("\nUse it:  .venv/bin/navctl get pods -A   (or: navctl get all -A)")
    print("Stop it: make down")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Stop everything (SIGTERM, then SIGKILL after 10 s) and remove what ``up`` made."""
    run_dir = Path(args.run_dir).resolve()
    cfg = LocalConfig.load(run_dir)
    for node in localnodes.node_envs(run_dir, cfg.plan):
        localnodes.stop_node_processes(node)  # first: nothing more is reported or restarted
    for name, _, _ in reversed(daemons(LocalConfig(**{**asdict(cfg), "sim_nodes": 1}))):
        pid = _daemon_pid(run_dir, name)
        if pid is not None:
            _stop_pid(pid, name)
            (_daemon_dir(run_dir, name) / f"{name}.pid").unlink(missing_ok=True)
    for backend in ("raft", "etcd"):
        for m in members(run_dir, LocalConfig(**{**asdict(cfg), "store": backend})):
            pid = m.pid()
            if pid is not None:
                _stop_pid(pid, f"store member {m.name}")
                m.pid_file.unlink(missing_ok=True)
    localnodes.stop_nodes(run_dir, cfg.plan)
    if run_dir.is_dir() and (run_dir / "cluster.json").exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        print(f"removed {run_dir}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Show the members, daemons and nodes, and the store's status."""
    run_dir = Path(args.run_dir).resolve()
    cfg = LocalConfig.load(run_dir)
    running = [m.name for m in members(run_dir, cfg) if m.pid() is not None]
    print(f"store ({cfg.store}) running members: {', '.join(running) or 'none'}")
    for name, port, _ in daemons(cfg):
        pid = _daemon_pid(run_dir, name)
        where = f"{HOST}:{port}" if port else cfg.api
        print(f"{name}: {f'running (pid {pid}) on {where}' if pid else 'not running'}")
    for node in localnodes.node_envs(run_dir, cfg.plan):
        states = []
        for kind in ("agent", "proxy", "dns"):
            pid = localnodes.process_pid(node, kind)
            if pid or kind != "dns":
                states.append(f"{kind} {f'running (pid {pid})' if pid else 'not running'}")
        print(f"{node.name} on {node.ip}, namespace {node.netns}: {', '.join(states)}")
    if running:
        _etcdctl(run_dir, "member", "list", "-w", "table")
        _etcdctl(run_dir, "endpoint", "status", "-w", "table")
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    """Print one full reference per image the local registry serves (building and
    pushing them first when that registry runs)."""
    from deploy.images import RegistryClient, catalog, push_all

    cfg = LocalConfig.load(Path(args.run_dir).resolve())
    registry = args.registry or cfg.plan.registry
    if RegistryClient(registry).ping():
        refs = push_all(registry)
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            refs = [im.reference(registry) for im in catalog(Path(tmp))]
        print(f"(the registry {registry} is not running: `navarch up` starts it; these are "
              "the images it will serve)", file=sys.stderr)
    print("\n".join(refs))
    return 0


def add_up_arguments(p: argparse.ArgumentParser) -> None:
    """``up``'s flags (unset ones keep what an earlier ``up`` of the run dir chose)."""
    p.add_argument("--nodes", type=int, default=None,
                   help="worker nodes with containerd and an agent (default 3)")
    p.add_argument("--store", choices=("raft", "etcd"), default=None,
                   help="the store: 3 raftstore members (default) or 3 etcd members")
    p.add_argument("--sim-nodes", type=int, default=None,
                   help="simulated nodes (navarch simnodes) besides the real ones")
    p.add_argument("--example", action="append", metavar="PATH",
                   help="a manifest file or directory to apply once the cluster is up "
                   "(repeatable)")
    # addresses: tests run a cluster of their own beside a user's `make up`
    p.add_argument("--prefix", default=None, help=argparse.SUPPRESS)
    p.add_argument("--subnet", default=None, help=argparse.SUPPRESS)
    p.add_argument("--registry-port", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--api-port", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--port-offset", type=int, default=None, help=argparse.SUPPRESS)

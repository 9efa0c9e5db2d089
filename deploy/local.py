"""``navarch up`` / ``down`` / ``status``: a local cluster on this machine.

For now the cluster is the control plane over simulated nodes: three ``navarch store``
members, one ``navarch apiserver``, ``navarch controllers``, ``navarch scheduler`` and
``navarch simnodes --count 3`` (hollow nodes, until node agents run real containers),
all on loopback, with data, logs and pids under ``--run-dir`` (default ``.run``)::

    .run/store/peer-secret
    .run/store/s1/{data/,member.log,member.pid}   client 127.0.0.1:12379, peer :12380
    .run/store/s2/...                              client 127.0.0.1:22379, peer :22380
    .run/store/s3/...                              client 127.0.0.1:32379, peer :32380
    .run/apiserver/{apiserver.log,apiserver.pid}  gRPC 127.0.0.1:6443
    .run/controllers/…, .run/scheduler/…, .run/simnodes/…   health on :10257, :10259, :10250
    .run/config.json                              {"server": "127.0.0.1:6443"}

``up`` also writes ~/.navarch/config.json (unless $NAVARCH_CONFIG names another file), so
that ``navctl`` finds the cluster without flags, and applies ``examples/`` manifests
given with ``--example``. ``up`` is idempotent (what runs is left alone); ``down`` stops
everything and keeps the data, so the next ``up`` resumes the same cluster.
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
from dataclasses import dataclass
from pathlib import Path

import grpc
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

MEMBERS = (("s1", 12379, 12380), ("s2", 22379, 22380), ("s3", 32379, 32380))
HOST = "127.0.0.1"
API_PORT = 6443
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class LocalMember:
    """One store member of the local cluster and where its files live."""

    name: str
    client_port: int
    peer_port: int
    root: Path

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
        pid = _pid_of(self.pid_file, b"store")
        if pid is None:
            return None
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return pid if self.name.encode() in cmdline else None


def members(run_dir: Path) -> list[LocalMember]:
    return [LocalMember(n, c, p, run_dir / "store" / n) for n, c, p in MEMBERS]


def endpoints(run_dir: Path) -> str:
    return ",".join(m.endpoint for m in members(run_dir))


def _start(m: LocalMember, initial_cluster: str, secret: Path) -> int:
    m.root.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "navarch", "--log-format", "json", "store",
        "--name", m.name, "--data-dir", str(m.root / "data"),
        "--listen-client", m.endpoint, "--listen-peer", f"{HOST}:{m.peer_port}",
        "--initial-cluster", initial_cluster, "--peer-secret-file", str(secret),
        # idle watches (the API server's watch cache) hear of progress within seconds
        "--watch-progress-notify-interval", "5",
    ]
    with open(m.log_file, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
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
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if marker in cmdline else None


# name, health port of its gRPC --listen (0: the apiserver, which listens on API_PORT),
# extra flags; started in this order after the store, stopped in reverse
DAEMONS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("apiserver", 0, ()),
    ("controllers", 10257, ()),
    ("scheduler", 10259, ()),
    ("simnodes", 10250, ("--count", "3")),
)


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


def _daemon_command(run_dir: Path, name: str, port: int, extra: tuple[str, ...]) -> list[str]:
    base = [sys.executable, "-m", "navarch", "--log-format", "json", name]
    if name == "apiserver":
        return [*base, "--store-endpoints", endpoints(run_dir), "--listen",
                f"{HOST}:{API_PORT}"]
    return [*base, "--server", f"{HOST}:{API_PORT}", "--listen", f"{HOST}:{port}", *extra]


def _start_daemon(run_dir: Path, name: str, port: int, extra: tuple[str, ...]) -> None:
    root = _daemon_dir(run_dir, name)
    root.mkdir(parents=True, exist_ok=True)
    address = f"{HOST}:{port or API_PORT}"
    pid = _daemon_pid(run_dir, name)
    if pid is not None:
        print(f"{name} already running (pid {pid})")
    else:
        print(f"starting {name} ({address})")
        with open(root / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(_daemon_command(run_dir, name, port, extra), stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
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


def _write_config(run_dir: Path) -> Path:
    body = json.dumps({"server": f"{HOST}:{API_PORT}"}, indent=2) + "\n"
    (run_dir / "config.json").write_text(body)
    target = Path(os.environ.get("NAVARCH_CONFIG", Path.home() / ".navarch" / "config.json"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body)
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


def _apply_examples(paths: list[str]) -> None:
    for path in paths:
        print(f"\n$ navctl apply -f {path}")
        subprocess.run([sys.executable, "-m", "navarch._navctl", "--server",
                        f"{HOST}:{API_PORT}", "apply", "-f", path], check=False, timeout=60)


def cmd_up(args: argparse.Namespace) -> int:
    """Start whatever members are not running, wait for a leader, show the cluster."""
    run_dir = Path(args.run_dir).resolve()
    ms = members(run_dir)
    store_dir = run_dir / "store"
    store_dir.mkdir(parents=True, exist_ok=True)
    secret = store_dir / "peer-secret"
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(32))
        secret.chmod(0o600)
    initial = ",".join(f"{m.name}={HOST}:{m.peer_port}" for m in ms)
    for m in ms:
        pid = m.pid()
        if pid is None:
            print(f"starting store member {m.name} (client {m.endpoint})")
            _start(m, initial, secret)
        else:
            print(f"store member {m.name} already running (pid {pid})")
    _wait_ready(ms)
    print("\nThe store is up. Members:")
    _etcdctl(run_dir, "member", "list", "-w", "table")
    print("Endpoint status:")
    _etcdctl(run_dir, "endpoint", "status", "-w", "table")
    for name, port, extra in DAEMONS:
        _start_daemon(run_dir, name, port, extra)
    config = _write_config(run_dir)
    print(f"\nThe apiserver serves on {HOST}:{API_PORT} (navctl finds it through {config}); "
          "the controllers, the scheduler and 3 simulated nodes run against it.")
    _apply_examples(list(getattr(args, "example", None) or []))
    print("\nUse it:  .venv/bin/navctl get namespaces   (or: navctl get all -A)")
    print("Stop it: make down")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Stop every member (SIGTERM, then SIGKILL after 10 s). Data is kept."""
    run_dir = Path(args.run_dir).resolve()
    for name, _, _ in reversed(DAEMONS):
        pid = _daemon_pid(run_dir, name)
        if pid is not None:
            _stop_pid(pid, name)
            (_daemon_dir(run_dir, name) / f"{name}.pid").unlink(missing_ok=True)
    for m in members(run_dir):
        pid = m.pid()
        if pid is None:
            continue
        _stop_pid(pid, f"store member {m.name}")
        m.pid_file.unlink(missing_ok=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Show the members and their status, as ``up`` does at its end."""
    run_dir = Path(args.run_dir).resolve()
    running = [m.name for m in members(run_dir) if m.pid() is not None]
    print(f"running members: {', '.join(running) or 'none'}")
    for name, port, _ in DAEMONS:
        pid = _daemon_pid(run_dir, name)
        where = f"{HOST}:{port or API_PORT}"
        print(f"{name}: {f'running (pid {pid}) on {where}' if pid else 'not running'}")
    if running:
        _etcdctl(run_dir, "member", "list", "-w", "table")
        _etcdctl(run_dir, "endpoint", "status", "-w", "table")
    return 0

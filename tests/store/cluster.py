"""Start, kill and restart 3-member store clusters on loopback: raftstore or a real etcd.

Both backends share one interface (:class:`StoreCluster`) so that every conformance,
etcdctl and fault test runs unchanged against each. Members are real processes; data
directories live under the directory the caller gives (pytest's tmp_path).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (bound then released; good enough for tests)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class MemberExited(RuntimeError):
    """A member process ended while a test waited for it."""


def wait_for(cond: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``cond`` until it returns a truthy value; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = cond()
            if value:
                return value
        except MemberExited:
            raise
        except Exception as e:
            last_exc = e
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}: {last_exc!r}")
        time.sleep(interval)


class StoreCluster:
    """A cluster of ``size`` members on loopback. Subclasses say how to launch one member."""

    backend = "abstract"

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.size = size
        ports = free_ports(2 * size)
        self.client_ports = ports[:size]
        self.peer_ports = ports[size:]
        self.names = [f"s{i + 1}" for i in range(size)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size
        self.logs: list[Path] = [self.workdir / f"{n}.log" for n in self.names]

    # -- what a test uses -------------------------------------------------------------
    @property
    def endpoints(self) -> list[str]:
        """Client endpoints, ``127.0.0.1:PORT``, in member order."""
        return [f"127.0.0.1:{p}" for p in self.client_ports]

    def data_dir(self, i: int) -> Path:
        return self.workdir / f"{self.names[i]}.data"

    def start(self, timeout: float = 30.0) -> None:
        """Start every member and wait until a leader serves linearizable reads."""
        for i in range(self.size):
            self.start_member(i)
        for i in range(self.size):
            self.wait_member(i, timeout)
        self.wait_leader(timeout)

    def start_member(self, i: int) -> None:
        """Start member i (again) on its data directory."""
        assert self.procs[i] is None or self.procs[i].poll() is not None, f"member {i} runs"
        log = open(self.logs[i], "ab")
        self.procs[i] = subprocess.Popen(
            self.member_command(i), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=self.member_env(), start_new_session=True,
        )
        log.close()

    def wait_member(self, i: int, timeout: float = 30.0) -> rpc_pb2.StatusResponse:
        """Wait until member i answers Maintenance.Status."""
        def ok() -> rpc_pb2.StatusResponse | None:
            proc = self.procs[i]
            if proc is not None and proc.poll() is not None:
                raise MemberExited(f"{self.names[i]} exited with {proc.returncode}: "
                                   f"{self.log_tail(i)}")
            return self.status(i, timeout=1.0)
        return wait_for(ok, timeout, f"{self.backend} member {self.names[i]} to answer")

    def restart_member(self, i: int, timeout: float = 30.0) -> None:
        self.start_member(i)
        self.wait_member(i, timeout)

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to member i and reap it (SIGKILL: a crash, no cleanup)."""
        proc = self.procs[i]
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        for i in range(self.size):
            self.kill(i, sig)

    def stop(self) -> None:
        """Stop every member (SIGTERM, then SIGKILL) and remove nothing from disk."""
        self.kill_all(signal.SIGTERM)

    def is_running(self, i: int) -> bool:
        proc = self.procs[i]
        return proc is not None and proc.poll() is None

    def channel(self, i: int) -> grpc.Channel:
        return grpc.insecure_channel(self.endpoints[i])

    def status(self, i: int, timeout: float = 2.0) -> rpc_pb2.StatusResponse:
        with self.channel(i) as ch:
            return rpc_pb2_grpc.MaintenanceStub(ch).Status(
                rpc_pb2.StatusRequest(), timeout=timeout)

    def leader_index(self) -> int | None:
        """Index of the member that says it leads, asked of running members; None if none."""
        for i in range(self.size):
            if not self.is_running(i):
                continue
            try:
                st = self.status(i, timeout=1.0)
            except grpc.RpcError:
                continue
            if st.leader and st.leader == st.header.member_id:
                return i
        return None

    def wait_leader(self, timeout: float = 30.0, exclude: int | None = None) -> int:
        """Wait for a leader (other than ``exclude``) that commits a write; return its index."""
        def led() -> int | None:
            i = self.leader_index()
            if i is None or i == exclude:
                return None
            with self.channel(i) as ch:
                rpc_pb2_grpc.KVStub(ch).Range(rpc_pb2.RangeRequest(key=b"\0"), timeout=2.0)
            return i + 1  # truthy even for member 0
        return wait_for(led, timeout, "a leader") - 1

    def log_tail(self, i: int, lines: int = 30) -> str:
        try:
            return "\n".join(self.logs[i].read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def destroy(self) -> None:
        """Kill every member and delete the data directories."""
        self.kill_all()
        for i in range(self.size):
            shutil.rmtree(self.data_dir(i), ignore_errors=True)

    # -- per backend -------------------------------------------------------------------
    def member_command(self, i: int) -> list[str]:
        raise NotImplementedError

    def member_env(self) -> dict[str, str]:
        return dict(os.environ)


class RaftstoreCluster(StoreCluster):
    """A cluster of ``navarch store`` members."""

    backend = "raftstore"

    def __init__(self, workdir: Path, size: int = 3, extra_args: list[str] | None = None) -> None:
        super().__init__(workdir, size)
        self.secret_file = self.workdir / "peer-secret"
        self.secret_file.write_text(secrets.token_urlsafe(32))
        self.extra_args = list(extra_args or [])

    @property
    def peer_addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.peer_ports]

    def initial_cluster(self) -> str:
        pairs = zip(self.names, self.peer_ports, strict=True)
        return ",".join(f"{n}=127.0.0.1:{p}" for n, p in pairs)

    def member_command(self, i: int) -> list[str]:
        return [
            sys.executable, "-m", "navarch", "--log-format", "json", "store",
            "--name", self.names[i],
            "--data-dir", str(self.data_dir(i)),
            "--listen-client", self.endpoints[i],
            "--listen-peer", f"127.0.0.1:{self.peer_ports[i]}",
            "--initial-cluster", self.initial_cluster(),
            "--peer-secret-file", str(self.secret_file),
            *self.extra_args,
        ]

    def member_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        return env


class EtcdCluster(StoreCluster):
    """A cluster of Debian's etcd (``etcd-server``) members, the reference."""

    backend = "etcd"

    def __init__(self, workdir: Path, size: int = 3, extra_args: list[str] | None = None) -> None:
        super().__init__(workdir, size)
        self.extra_args = list(extra_args or [])
        if shutil.which("etcd") is None:
            raise RuntimeError("etcd is not installed (Debian package etcd-server; run make deps)")

    def member_command(self, i: int) -> list[str]:
        peers = ",".join(
            f"{n}=http://127.0.0.1:{p}" for n, p in zip(self.names, self.peer_ports, strict=True))
        started = self.data_dir(i).exists()
        return [
            "etcd", "--name", self.names[i],
            "--data-dir", str(self.data_dir(i)),
            "--listen-client-urls", f"http://{self.endpoints[i]}",
            "--advertise-client-urls", f"http://{self.endpoints[i]}",
            "--listen-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
            "--initial-cluster", peers,
            "--initial-cluster-state", "existing" if started else "new",
            "--initial-cluster-token", f"navarch-test-{self.peer_ports[0]}",
            "--logger", "zap", "--log-level", "warn",
            *self.extra_args,
        ]


BACKENDS: dict[str, type[StoreCluster]] = {
    "raftstore": RaftstoreCluster,
    "etcd": EtcdCluster,
}

"""Navarch daemons as child processes for tests: an API server on a free port over a given
store, and any other ``navarch`` subcommand that serves gRPC health (``NavarchProcess``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.store.cluster import REPO as ROOT
from tests.store.cluster import free_ports, wait_for

__all__ = ["ApiServerProcess", "NavarchProcess"]


class NavarchProcess:
    """``navarch <subcommand> --listen <free port> <args>`` as a child process, with its
    log in ``workdir``; started means its gRPC health check answers SERVING."""

    subcommand = ""

    def __init__(self, workdir: Path, args: list[str] | None = None, *,
                 subcommand: str = "", name: str = "",
                 env: dict[str, str] | None = None) -> None:
        self.subcommand = subcommand or self.subcommand
        self.extra_env = dict(env or {})  # e.g. NAVARCH_TOKEN: who the process is
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_ports(1)[0]
        self.address = f"127.0.0.1:{self.port}"
        self.extra_args = args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{name or self.subcommand}-{self.port}.log"

    def command(self) -> list[str]:
        """The command line of the process."""
        return [sys.executable, "-m", "navarch", "--log-format", "json", self.subcommand,
                "--listen", self.address, *self.extra_args]

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait until its health check says SERVING."""
        env = dict(os.environ, PYTHONPATH=str(ROOT), **self.extra_env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         env=env, cwd=ROOT)
        wait_for(self.serving, timeout, f"{self.subcommand} on {self.address} to serve")

    def serving(self, service: str = "") -> bool:
        """Whether the health check of ``service`` ("" = the process) says SERVING;
        raises if the process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.subcommand} exited with {self.proc.returncode}:\n"
                               f"{self.log_tail()}")
        try:
            with grpc.insecure_channel(self.address) as ch:
                stub = health_pb2_grpc.HealthStub(ch)
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        except grpc.RpcError:
            return False

    def pause(self) -> None:
        """SIGSTOP: the process stops answering without closing anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` and reap the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the process's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class ApiServerProcess(NavarchProcess):
    """``navarch apiserver`` over ``store_endpoints``."""

    subcommand = "apiserver"

    def __init__(self, store_endpoints: list[str], workdir: Path,
                 extra_args: list[str] | None = None) -> None:
        super().__init__(workdir, extra_args)
        self.store_endpoints = store_endpoints

    def command(self) -> list[str]:
        """The command line of the process."""
        return [sys.executable, "-m", "navarch", "--log-format", "json", "apiserver",
                "--store-endpoints", ",".join(self.store_endpoints),
                "--listen", self.address, "--watch-bookmark-interval", "1",
                "--compaction-interval", "0", *self.extra_args]

"""Probes (node_agent.probes): one check against real sockets on 127.0.0.1, the pure
threshold state, and the manager driven by ``tick`` and by a fake clock."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cri_api.v1 import api_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from navarch._clock import FakeClock
from navarch.v1 import core_pb2
from node_agent import cri
from node_agent.probes import (
    ProbeManager,
    ProbeResult,
    ProbeState,
    probe_timing,
    probes_of,
    resolve_port,
    run_probe,
)

S, F, U = ProbeResult.SUCCESS, ProbeResult.FAILURE, ProbeResult.UNKNOWN
T0 = 1_700_000_000.0


def probe(**fields: Any) -> core_pb2.Probe:
    return core_pb2.Probe(**fields)


def container(*ports: tuple[str, int], **probes: core_pb2.Probe) -> core_pb2.Container:
    c = core_pb2.Container(name="web", image="localhost/web:1", **probes)
    for name, number in ports:
        c.ports.add(name=name, container_port=number)
    return c


async def no_exec(cmd: list[str], timeout: float) -> tuple[int, bytes]:  # noqa: ASYNC109
    raise AssertionError("no exec expected")


# --- timing, ports, kinds -------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "want"), [
    pytest.param({}, (0, 10, 1, 1, 3), id="Kubernetes defaults for 0"),
    pytest.param({"initial_delay_seconds": 5, "period_seconds": 2, "timeout_seconds": 3,
                  "success_threshold": 2, "failure_threshold": 1}, (5, 2, 3, 2, 1),
                 id="given"),
])
def test_probe_timing(fields: dict[str, int], want: tuple[float, ...]) -> None:
    t = probe_timing(probe(**fields))
    assert (t.initial_delay, t.period, t.timeout, t.success_threshold,
            t.failure_threshold) == want


@pytest.mark.parametrize(("port", "want"), [
    ("8080", 8080), ("http", 80), ("metrics", 9100),
    ("nope", "couldn't find port: nope in [http metrics]"), ("0", "invalid port number: 0"),
    ("70000", "invalid port number: 70000"),
])
def test_resolve_port(port: str, want: int | str) -> None:
    c = container(("http", 80), ("metrics", 9100))
    if isinstance(want, int):
        assert resolve_port(port, c) == want
    else:
        with pytest.raises(ValueError, match=want.replace("[", r"\[").replace("]", r"\]")):
            resolve_port(port, c)


def test_probes_of_lists_startup_first() -> None:
    p = probe(tcp_socket=core_pb2.TCPSocketAction(port="80"))
    c = container(readiness_probe=p, startup_probe=p, liveness_probe=p)
    assert [k for k, _ in probes_of(c)] == ["startup", "liveness", "readiness"]
    assert probes_of(container()) == []


# --- ProbeState ------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "fields", "results", "verdicts", "final"), [
    pytest.param("readiness", {}, [], [], F, id="readiness starts not ready"),
    pytest.param("liveness", {}, [], [], S, id="liveness starts alive"),
    pytest.param("startup", {}, [], [], U, id="startup starts undecided"),
    pytest.param("readiness", {}, [S, F, F, F, S], [S, None, None, F, S], S,
                 id="readiness: 1 success, 3 failures in a row"),
    pytest.param("readiness", {"success_threshold": 2}, [S, F, S, S],
                 [None, None, None, S], S, id="readiness: successThreshold 2 in a row"),
    pytest.param("readiness", {}, [S, U, U, U, F], [S, None, None, None, None], S,
                 id="prober errors are thrown away"),
    pytest.param("liveness", {"failure_threshold": 2}, [F, S, F, F, S],
                 [None, None, None, F, None], F,
                 id="liveness: 2 failures in a row, then on hold"),
    pytest.param("liveness", {"success_threshold": 3}, [S], [None], S,
                 id="liveness needs one success whatever the threshold"),
    pytest.param("startup", {"failure_threshold": 30}, [F] * 5 + [S], [None] * 5 + [S], S,
                 id="startup: started at the first success"),
    pytest.param("startup", {"failure_threshold": 2}, [F, F], [None, F], F,
                 id="startup: failureThreshold reached"),
])
def test_probe_state(kind: str, fields: dict[str, int], results: list[ProbeResult],
                     verdicts: list[ProbeResult | None], final: ProbeResult) -> None:
    state = ProbeState(kind, probe(**fields))
    assert [state.observe(r, T0 + i) for i, r in enumerate(results)] == verdicts
    assert state.result == final


@pytest.mark.parametrize(("kind", "history", "now", "due"), [
    pytest.param("readiness", [], T0 + 4.9, False, id="within initialDelaySeconds"),
    pytest.param("readiness", [], T0 + 5, True, id="initial delay over"),
    pytest.param("readiness", [(S, T0 + 5)], T0 + 7, False, id="within the period"),
    pytest.param("readiness", [(S, T0 + 5)], T0 + 8, True, id="a period after the start"),
    pytest.param("readiness", [(U, T0 + 5)], T0 + 7, False, id="an error counts for the period"),
    pytest.param("startup", [(S, T0 + 5)], T0 + 100, False, id="startup done: never again"),
    pytest.param("liveness", [(F, T0 + 5)], T0 + 100, False, id="liveness failed: on hold"),
])
def test_due(kind: str, history: list[tuple[ProbeResult, float]], now: float,
             due: bool) -> None:
    state = ProbeState(kind, probe(initial_delay_seconds=5, period_seconds=3,
                                   failure_threshold=1))
    for result, at in history:
        state.observe(result, at)
    assert state.due(now, container_started_at=T0) is due


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="probe kind 'sideness'"):
        ProbeState("sideness", probe())


# --- one check: exec ---------------------------------------------------------------------------

@pytest.mark.parametrize(("outcome", "want"), [
    pytest.param((0, b"ok"), (S, ""), id="exit 0"),
    pytest.param((1, b"  not yet\n"), (F, "not yet"), id="exit 1: its output"),
    pytest.param((2, b""), (F, "command exited with code 2"), id="silent failure"),
    pytest.param(TimeoutError(), (F, 'command "cat /tmp/healthy" timed out'), id="timeout"),
    pytest.param(RuntimeError("no such container"), (U, "exec failed: no such container"),
                 id="prober error"),
])
async def test_exec_probe(outcome: tuple[int, bytes] | Exception,
                          want: tuple[ProbeResult, str]) -> None:
    calls = []

    async def exec_fn(cmd: list[str], timeout: float) -> tuple[int, bytes]:  # noqa: ASYNC109
        calls.append((cmd, timeout))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    p = probe(exec=core_pb2.ExecAction(command=["cat", "/tmp/healthy"]), timeout_seconds=4)
    assert await run_probe(p, container(), "10.0.0.1", exec_fn) == want
    assert calls == [(["cat", "/tmp/healthy"], 4)]


async def test_a_probe_without_handler_or_with_a_bad_port_is_a_prober_error() -> None:
    assert (await run_probe(probe(), container(), "127.0.0.1", no_exec))[0] == U
    p = probe(http_get=core_pb2.HTTPGetAction(port="admin"))
    result, message = await run_probe(p, container(), "127.0.0.1", no_exec)
    assert (result, message) == (U, "couldn't find port: admin in [] of container web")


# --- one check: HTTP and TCP against a real server -----------------------------------------------

class HttpServer:
    """Answers ``/status/<code>``; ``/hang`` never answers; ``/close`` hangs up."""

    def __init__(self) -> None:
        self.requests: list[list[str]] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines = []
        while (line := (await reader.readline()).decode().rstrip("\r\n")):
            lines.append(line)
        self.requests.append(lines)
        path = lines[0].split()[1] if lines else "/"
        if path == "/hang":
            await asyncio.sleep(30)
        elif path.startswith("/status/"):
            code = path.rsplit("/", 1)[1]
            writer.write(f"HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
        writer.close()

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]


@pytest.fixture
async def http() -> AsyncIterator[HttpServer]:
    server = HttpServer()
    await server.start()
    yield server
    assert server.server is not None
    server.server.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("path", "want"), [
    ("/status/200", (S, "")), ("/status/204", (S, "")),
    ("/status/302", (S, "")),
    ("/status/404", (F, "HTTP probe failed with statuscode: 404")),
    ("/status/503", (F, "HTTP probe failed with statuscode: 503")),
])
async def test_http_get_status_codes(http: HttpServer, path: str,
                                     want: tuple[ProbeResult, str]) -> None:
    p = probe(http_get=core_pb2.HTTPGetAction(path=path, port="http"))
    assert await run_probe(p, container(("http", http.port)), "127.0.0.1", no_exec) == want


async def test_http_get_request_and_headers(http: HttpServer) -> None:
    p = probe(http_get=core_pb2.HTTPGetAction(
        path="status/200", port=str(http.port), http_headers=[
            core_pb2.HTTPHeader(name="host", value="web.example"),
            core_pb2.HTTPHeader(name="X-Probe", value="1")]))
    assert (await run_probe(p, container(), "127.0.0.1", no_exec))[0] == S
    request = http.requests[0]
    assert request[0] == "GET /status/200 HTTP/1.1"
    assert set(request[1:]) == {"User-Agent: kube-probe/1.31", "Accept: */*", "host: web.example",
                                "X-Probe: 1", "Connection: close"}, "Host replaced by the probe's"


async def test_http_get_failures(http: HttpServer) -> None:
    port = free_port()
    p = probe(http_get=core_pb2.HTTPGetAction(path="/", port=str(port)))
    assert await run_probe(p, container(), "127.0.0.1", no_exec) == (
        F, f'Get "http://127.0.0.1:{port}/": dial tcp 127.0.0.1:{port}: connect: '
           "connection refused")
    hang = probe(http_get=core_pb2.HTTPGetAction(path="/hang", port=str(http.port)))
    assert await run_probe(hang, container(), "127.0.0.1", no_exec, timeout=0.2) == (
        F, f'Get "http://127.0.0.1:{http.port}/hang": context deadline exceeded '
           "(Client.Timeout exceeded while awaiting headers)")
    close = probe(http_get=core_pb2.HTTPGetAction(path="/close", port=str(http.port),
                                                  host="127.0.0.1"))
    assert await run_probe(close, container(), "10.255.255.1", no_exec) == (
        F, f'Get "http://127.0.0.1:{http.port}/close": EOF'), "host overrides the pod IP"


def self_signed(tmp_path: Path) -> ssl.SSLContext:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    return context


async def test_https_is_probed_without_verifying_the_certificate(tmp_path: Path) -> None:
    server = HttpServer()
    await server.start(self_signed(tmp_path))
    try:
        p = probe(http_get=core_pb2.HTTPGetAction(path="/status/200", port=str(server.port),
                                                  scheme="HTTPS"))
        assert await run_probe(p, container(), "127.0.0.1", no_exec) == (S, "")
    finally:
        assert server.server is not None
        server.server.close()


async def test_tcp_socket(http: HttpServer) -> None:
    ok = probe(tcp_socket=core_pb2.TCPSocketAction(port="http"))
    assert await run_probe(ok, container(("http", http.port)), "127.0.0.1", no_exec) == (S, "")
    port = free_port()
    refused = probe(tcp_socket=core_pb2.TCPSocketAction(port=str(port)))
    assert await run_probe(refused, container(), "127.0.0.1", no_exec) == (
        F, f"dial tcp 127.0.0.1:{port}: connect: connection refused")


async def test_grpc_health() -> None:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        await servicer.set("db", health_pb2.HealthCheckResponse.NOT_SERVING)
        ok = probe(grpc=core_pb2.GRPCAction(port=port))
        assert await run_probe(ok, container(), "127.0.0.1", no_exec) == (S, "")
        db = probe(grpc=core_pb2.GRPCAction(port=port, service="db"))
        assert await run_probe(db, container(), "127.0.0.1", no_exec) == (
            F, 'service unhealthy (responded with "NOT_SERVING")')
    finally:
        await server.stop(None)


# --- the manager -------------------------------------------------------------------------------

def running(cid: str, started: float = T0, name: str = "web") -> api_pb2.ContainerStatus:
    s = api_pb2.ContainerStatus(id=cid, state=cri.RUNNING, started_at=int(started * 1e9))
    s.metadata.name = name
    return s


class Fixture:
    """A pod with one container ``web``, a scripted exec, and recorded callbacks."""

    def __init__(self, clock: FakeClock | None = None, autostart: bool = False,
                 **probes: core_pb2.Probe) -> None:
        self.pod = core_pb2.Pod()
        self.pod.metadata.uid, self.pod.metadata.name = "u1", "web-1"
        self.pod.spec.containers.append(container(**probes))
        self.script: dict[str, list[int]] = {}  # command -> exit codes to return in turn
        self.execs: list[tuple[str, str]] = []  # (container id, command)
        self.changes: list[str] = []
        self.failures: list[tuple[str, str, str, str]] = []
        self.events: list[str] = []
        self.manager = ProbeManager(
            self.exec_in, self.changes.append, autostart=autostart, clock=clock,
            on_liveness_failure=lambda *a: self.failures.append(a), recorder=self)

    async def exec_in(self, cid: str, cmd: list[str],
                      timeout: float) -> tuple[int, bytes]:  # noqa: ASYNC109
        self.execs.append((cid, cmd[0]))
        codes = self.script[cmd[0]]
        code = codes.pop(0) if len(codes) > 1 else codes[0]
        return code, b"" if code == 0 else f"{cmd[0]} says no".encode()

    def event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.events.append(f"{type_} {reason} {message}")

    def update(self, *attempts: api_pb2.ContainerStatus) -> None:
        self.manager.update(self.pod, {"web": list(attempts)} if attempts else {},
                            pod_ip="10.244.1.5")


def exec_probe(command: str, **fields: int) -> core_pb2.Probe:
    return probe(exec=core_pb2.ExecAction(command=[command]), **fields)


async def test_readiness_flips_with_its_thresholds() -> None:
    f = Fixture(readiness_probe=exec_probe("ready", period_seconds=5, failure_threshold=2))
    f.script["ready"] = [1, 0, 1, 1]
    f.update(running("c1"))
    assert (f.manager.readiness("c1"), f.manager.started("c1")) == (False, True)
    await f.manager.tick(T0)
    assert not f.manager.readiness("c1") and f.changes == []
    await f.manager.tick(T0 + 4)
    assert f.execs == [("c1", "ready")], "not due within the period"
    await f.manager.tick(T0 + 5)
    assert f.manager.readiness("c1") and f.changes == ["u1"]
    await f.manager.tick(T0 + 10)
    assert f.manager.readiness_map("u1") == {"c1": True}, "one failure is below the threshold"
    await f.manager.tick(T0 + 15)
    assert f.manager.readiness_map("u1") == {"c1": False} and f.changes == ["u1", "u1"]
    assert f.events[0] == "Warning Unhealthy Readiness probe failed: ready says no"


async def test_startup_gates_liveness_and_readiness() -> None:
    f = Fixture(startup_probe=exec_probe("start", period_seconds=1, failure_threshold=10),
                liveness_probe=exec_probe("live"), readiness_probe=exec_probe("ready"))
    f.script.update(start=[1, 1, 0], live=[0], ready=[0])
    f.update(running("c1"))
    for t in range(3):
        await f.manager.tick(T0 + t)
    assert [cmd for _, cmd in f.execs] == ["start", "start", "start"]
    assert f.manager.started_map("u1") == {"c1": True} and f.changes == ["u1"]
    assert not f.manager.readiness("c1")
    await f.manager.tick(T0 + 3)
    assert sorted(cmd for _, cmd in f.execs[3:]) == ["live", "ready"], "startup runs no more"
    assert f.manager.readiness("c1")


async def test_a_liveness_failure_is_reported_once_and_holds_until_a_new_container() -> None:
    f = Fixture(liveness_probe=exec_probe("live", period_seconds=1, failure_threshold=3))
    f.script["live"] = [1]
    f.update(running("c1"))
    for t in range(5):
        await f.manager.tick(T0 + t)
    assert len(f.execs) == 3, "on hold after the verdict"
    assert f.failures == [("u1", "web", "c1", "live says no")]
    assert f.manager.liveness_failures("u1") == {"c1": "liveness probe failed: live says no"}
    assert f.changes == ["u1"]
    assert f.events == ["Warning Unhealthy Liveness probe failed: live says no"] * 3
    # the worker restarted it: a new container starts from the initial verdicts
    f.script["live"] = [0]
    f.update(running("c2", started=T0 + 10))
    assert f.manager.liveness_failures("u1") == {} and not f.manager.started("c1")
    await f.manager.tick(T0 + 10)
    assert f.execs[-1] == ("c2", "live")


async def test_initial_delay_deletion_and_forget() -> None:
    f = Fixture(liveness_probe=exec_probe("live", initial_delay_seconds=30),
                readiness_probe=exec_probe("ready", initial_delay_seconds=30))
    f.script.update(live=[0], ready=[0])
    f.update(running("c1"))
    await f.manager.tick(T0 + 29)
    assert f.execs == []
    f.pod.metadata.deletion_timestamp.FromSeconds(int(T0))
    f.update(running("c1"))
    await f.manager.tick(T0 + 30)
    assert [cmd for _, cmd in f.execs] == ["ready"], "a pod being deleted is not liveness-probed"
    f.update()  # the container stopped
    assert f.manager.readiness_map("u1") == {}
    f.update(running("c3"))
    f.manager.forget("u1")
    assert f.manager.started_map("u1") == {}


async def test_containers_without_probes_are_ready_once_running() -> None:
    f = Fixture()
    f.update(running("c1"))
    assert (f.manager.readiness("c1"), f.manager.started("c1")) == (True, True)
    assert not f.manager.readiness("unknown")
    exited = api_pb2.ContainerStatus(id="c1", state=cri.EXITED)
    f.update(exited)
    assert not f.manager.readiness("c1")


async def advance(clock: FakeClock, seconds: float) -> None:
    """Move the clock, then let the woken workers run their checks."""
    await clock.advance(seconds)
    for _ in range(20):
        await asyncio.sleep(0)


async def test_workers_run_as_tasks_on_the_clock() -> None:
    clock = FakeClock(T0)
    f = Fixture(clock, autostart=True,
                startup_probe=exec_probe("start", period_seconds=2, failure_threshold=5),
                readiness_probe=exec_probe("ready", period_seconds=10))
    f.script.update(start=[1, 0], ready=[0, 1, 1, 1])
    f.update(running("c1"))
    try:
        await advance(clock, 0)
        assert [cmd for _, cmd in f.execs] == ["start"]
        await advance(clock, 2)  # startup passes, readiness is woken at once
        assert [cmd for _, cmd in f.execs] == ["start", "start", "ready"]
        assert f.manager.readiness("c1")
        for _ in range(3):
            await advance(clock, 10)
        assert not f.manager.readiness("c1") and f.changes == ["u1", "u1", "u1"]
        assert [cmd for _, cmd in f.execs].count("start") == 2
    finally:
        await f.manager.stop()
    assert f.manager.readiness_map("u1") == {}

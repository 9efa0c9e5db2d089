"""Probes: one check (exec, httpGet, tcpSocket, grpc), the threshold state of a probe, and
the manager that runs the startup, liveness and readiness probes of running containers.

    PodSyncer.sync ─ update(pod, containers) ─▶ a _Target per running container,
                                                 a _Worker per probe it has
    worker (task, or ``tick`` in tests): due? ─▶ run_probe ─▶ ProbeState.observe
        ─▶ verdict changed? ─▶ readiness / started flip: on_change(uid)
                              liveness / startup Failure: on_liveness_failure(…), on_change

Kubelet's rules, kept here:

- Initial verdicts: readiness Failure (not ready until it succeeds), liveness Success,
  startup Unknown. A verdict is committed after ``successThreshold`` successes or
  ``failureThreshold`` failures in a row (unset fields: Kubernetes' defaults, period 10 s,
  timeout 1 s, thresholds 1 and 3; liveness and startup need 1 success).
- A probe is due ``initialDelaySeconds`` after the container started, then every
  ``periodSeconds`` (counted from the start of the previous check).
- The startup probe gates the others: liveness and readiness run only once it succeeded
  (they are woken then); it is not run again after that.
- After a liveness or startup Failure the worker holds (no more checks) until the
  container is replaced; the pod worker kills and restarts it.
- A prober error (``ProbeResult.UNKNOWN``: a named port that does not exist, an exec that
  could not be run) is thrown away, not counted.
- A pod being deleted is not liveness- or startup-probed any more (a quiet shutdown).

Contract: ``ProbeManager``'s methods are called from the agent's event loop; its state
is keyed by CRI container id, so a restarted container starts from the initial verdicts.
"""

from __future__ import annotations

import asyncio
import enum
import os
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from cri_api.v1 import api_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from navarch._clock import Clock, RealClock
from navarch.v1 import core_pb2

from . import cri

__all__ = ["ExecFn", "ExecIn", "ProbeManager", "ProbeResult", "ProbeState", "ProbeTiming",
           "cri_exec", "probe_timing", "probes_of", "resolve_port", "run_probe"]

#: ``exec_fn(cmd, timeout) -> (exit code, output)``; raises TimeoutError on timeout
ExecFn = Callable[[list[str], float], Awaitable[tuple[int, bytes]]]
#: ``exec_in(container_id, cmd, timeout)``: an ExecFn for any container (CRI ExecSync)
ExecIn = Callable[[str, list[str], float], Awaitable[tuple[int, bytes]]]

KINDS = ("startup", "liveness", "readiness")
USER_AGENT = "kube-probe/1.31"


class ProbeResult(enum.Enum):
    """The outcome of one check, or a committed verdict."""

    SUCCESS = "Success"
    FAILURE = "Failure"
    UNKNOWN = "Unknown"  # a prober error (thrown away), or startup not decided yet


@dataclass(frozen=True)
class ProbeTiming:
    """A probe's timing and thresholds, defaults applied."""

    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int


def probe_timing(probe: core_pb2.Probe) -> ProbeTiming:
    """The probe's timing with Kubernetes' defaults for unset (0) fields."""
    return ProbeTiming(initial_delay=max(0, probe.initial_delay_seconds),
                       period=probe.period_seconds or 10,
                       timeout=probe.timeout_seconds or 1,
                       success_threshold=probe.success_threshold or 1,
                       failure_threshold=probe.failure_threshold or 3)


def resolve_port(port: str, container: core_pb2.Container) -> int:
    """A probe's port: a number, or the name of one of the container's ports; ValueError
    when it is neither."""
    if port.isdigit():
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError(f"invalid port number: {number}")
        return number
    for p in container.ports:
        if p.name == port:
            return int(p.container_port)
    names = " ".join(p.name for p in container.ports if p.name)
    raise ValueError(f"couldn't find port: {port} in [{names}] of container {container.name}")


# --- one check ----------------------------------------------------------------------------


def _addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _dial_error(addr: str, exc: OSError) -> str:
    """Go's wording for a failed dial, which users of kubelet know."""
    if exc.errno:
        return f"dial tcp {addr}: connect: {os.strerror(exc.errno).lower()}"
    return f"dial tcp {addr}: {exc}"


def _request_headers(host_port: str, extra: Sequence[core_pb2.HTTPHeader]) -> list[str]:
    """kubelet's request headers; the probe's own replace a default of the same name."""
    given = {h.name.lower() for h in extra}
    defaults = [("Host", host_port), ("User-Agent", USER_AGENT), ("Accept", "*/*")]
    lines = [f"{k}: {v}" for k, v in defaults if k.lower() not in given]
    lines += [f"{h.name}: {h.value}" for h in extra]
    lines.append("Connection: close")
    return lines


async def _http_get(action: core_pb2.HTTPGetAction, host: str, port: int,
                    timeout: float) -> tuple[ProbeResult, str]:  # noqa: ASYNC109
    scheme = (action.scheme or "HTTP").upper()
    if scheme not in ("HTTP", "HTTPS"):
        return ProbeResult.UNKNOWN, f"unsupported scheme {action.scheme!r} (HTTP or HTTPS)"
    context = None
    if scheme == "HTTPS":  # kubelet does not verify the container's certificate
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    path = action.path if action.path.startswith("/") else "/" + action.path
    addr = _addr(host, port)
    url = f"{scheme.lower()}://{addr}{path}"
    request = "\r\n".join([f"GET {path} HTTP/1.1", *_request_headers(addr, action.http_headers),
                           "", ""])
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=context)
            try:
                writer.write(request.encode("latin-1"))
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
    except TimeoutError:
        return ProbeResult.FAILURE, (f'Get "{url}": context deadline exceeded '
                                     "(Client.Timeout exceeded while awaiting headers)")
    except OSError as exc:
        return ProbeResult.FAILURE, f'Get "{url}": {_dial_error(addr, exc)}'
    parts = line.decode("latin-1").split()
    if not parts:
        return ProbeResult.FAILURE, f'Get "{url}": EOF'
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return ProbeResult.FAILURE, f'Get "{url}": malformed HTTP response {line[:40]!r}'
    code = int(parts[1])
    if 200 <= code < 400:  # redirects are not followed: a 3xx counts as success
        return ProbeResult.SUCCESS, ""
    return ProbeResult.FAILURE, f"HTTP probe failed with statuscode: {code}"


async def _tcp(host: str, port: int, timeout: float) -> tuple[ProbeResult, str]:  # noqa: ASYNC109
    addr = _addr(host, port)
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
        writer.close()
    except TimeoutError:
        return ProbeResult.FAILURE, f"dial tcp {addr}: i/o timeout"
    except OSError as exc:
        return ProbeResult.FAILURE, _dial_error(addr, exc)
    return ProbeResult.SUCCESS, ""


async def _grpc(action: core_pb2.GRPCAction, host: str,
                timeout: float) -> tuple[ProbeResult, str]:  # noqa: ASYNC109
    target = _addr(host, action.port)
    try:
        async with grpc.aio.insecure_channel(target) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=action.service), timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            return ProbeResult.FAILURE, ("this server does not implement the grpc health "
                                         f"protocol (grpc.health.v1.Health): {exc.details()}")
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ProbeResult.FAILURE, f"timeout: health rpc did not complete within {timeout:g}s"
        return ProbeResult.FAILURE, f"error: health rpc probe failed: {exc.details()}"
    if reply.status == health_pb2.HealthCheckResponse.SERVING:
        return ProbeResult.SUCCESS, ""
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return ProbeResult.FAILURE, f'service unhealthy (responded with "{name}")'


async def _exec(command: list[str], exec_fn: ExecFn,
                timeout: float) -> tuple[ProbeResult, str]:  # noqa: ASYNC109
    try:
        code, output = await exec_fn(command, timeout)
    except TimeoutError:
        return ProbeResult.FAILURE, f'command "{" ".join(command)}" timed out'
    except Exception as exc:  # any other failure is a prober error
        return ProbeResult.UNKNOWN, f"exec failed: {exc}"
    if code == 0:
        return ProbeResult.SUCCESS, ""
    text = output.decode(errors="replace").strip()
    return ProbeResult.FAILURE, text or f"command exited with code {code}"


async def run_probe(probe: core_pb2.Probe, container: core_pb2.Container, pod_ip: str,
                    exec_fn: ExecFn, timeout: float | None = None,  # noqa: ASYNC109
                    ) -> tuple[ProbeResult, str]:
    """One check of ``probe`` against ``container`` of a pod at ``pod_ip``, within
    ``timeout`` seconds (default: the probe's): (result, kubelet's message; "" on
    success). Never raises for what the container does; a prober error is UNKNOWN."""
    timeout = probe_timing(probe).timeout if timeout is None else timeout
    try:
        if probe.HasField("exec"):
            return await _exec(list(probe.exec.command), exec_fn, timeout)
        if probe.HasField("http_get"):
            action = probe.http_get
            return await _http_get(action, action.host or pod_ip,
                                   resolve_port(action.port, container), timeout)
        if probe.HasField("tcp_socket"):
            t = probe.tcp_socket
            return await _tcp(t.host or pod_ip, resolve_port(t.port, container), timeout)
        if probe.HasField("grpc"):
            return await _grpc(probe.grpc, pod_ip, timeout)
    except ValueError as exc:
        return ProbeResult.UNKNOWN, str(exc)
    return ProbeResult.UNKNOWN, "probe has no handler (exec, httpGet, tcpSocket or grpc)"


# --- the threshold state of one probe -----------------------------------------------------


class ProbeState:
    """The committed verdict of one probe (``kind``: startup, liveness or readiness) of
    one container, from its checks so far. Pure: the caller passes the time."""

    def __init__(self, kind: str, probe: core_pb2.Probe) -> None:
        if kind not in KINDS:
            raise ValueError(f"probe kind {kind!r} is not one of {', '.join(KINDS)}")
        self.kind = kind
        self.timing = probe_timing(probe)
        self.result = {"readiness": ProbeResult.FAILURE, "liveness": ProbeResult.SUCCESS,
                       "startup": ProbeResult.UNKNOWN}[kind]
        self.on_hold = False  # after a liveness/startup Failure: until the container goes
        self.last_probe: float | None = None  # when the last counted check started
        self._run: tuple[ProbeResult | None, int] = (None, 0)  # result, times in a row

    @property
    def finished(self) -> bool:
        """No more checks for this container: on hold, or a startup probe that passed."""
        return self.on_hold or (self.kind == "startup" and self.result == ProbeResult.SUCCESS)

    def next_due(self, container_started_at: float) -> float | None:
        """When the next check is due (None: never again)."""
        if self.finished:
            return None
        first = container_started_at + self.timing.initial_delay
        if self.last_probe is None:
            return first
        return max(first, self.last_probe + self.timing.period)

    def due(self, now: float, container_started_at: float) -> bool:
        """Whether a check should start at ``now``."""
        when = self.next_due(container_started_at)
        return when is not None and now >= when

    def observe(self, result: ProbeResult, now: float | None = None) -> ProbeResult | None:
        """Record one check started at ``now``; the new verdict when it changed, else None.
        UNKNOWN (a prober error) counts for the period but not towards a verdict."""
        if now is not None:
            self.last_probe = now
        if result == ProbeResult.UNKNOWN or self.on_hold:
            return None
        last, count = self._run
        self._run = (result, count + 1 if result == last else 1)
        if result == ProbeResult.SUCCESS:
            threshold = 1 if self.kind != "readiness" else self.timing.success_threshold
        else:
            threshold = self.timing.failure_threshold
        if self._run[1] < threshold or result == self.result:
            return None
        self.result = result
        if result == ProbeResult.FAILURE and self.kind != "readiness":
            self.on_hold, self._run = True, (None, 0)
        return result


def probes_of(container: core_pb2.Container) -> Sequence[tuple[str, core_pb2.Probe]]:
    """The container's probes as (kind, probe), startup first."""
    return [(kind, getattr(container, f"{kind}_probe")) for kind in KINDS
            if container.HasField(f"{kind}_probe")]


# --- the manager ---------------------------------------------------------------------------


class Recorder(Protocol):
    """Where probe failures are reported as events (navarch's EventRecorder)."""

    def event(self, obj: Any, type_: str, reason: str, message: str) -> None: ...


ProbeFn = Callable[[core_pb2.Probe, core_pb2.Container, str, ExecFn],
                   Awaitable[tuple[ProbeResult, str]]]


@dataclass
class _Worker:
    """One probe of one container."""

    kind: str
    probe: core_pb2.Probe
    state: ProbeState
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    busy: bool = False


@dataclass
class _Target:
    """A running container and its probe workers."""

    pod: core_pb2.Pod
    spec: core_pb2.Container
    container_id: str
    started_at: float  # seconds since the epoch
    pod_ip: str
    workers: dict[str, _Worker]
    liveness_failure: str = ""

    @property
    def uid(self) -> str:
        return self.pod.metadata.uid

    @property
    def started(self) -> bool:
        startup = self.workers.get("startup")
        return startup is None or startup.state.result == ProbeResult.SUCCESS

    @property
    def ready(self) -> bool:
        readiness = self.workers.get("readiness")
        return self.started and (readiness is None
                                 or readiness.state.result == ProbeResult.SUCCESS)


def cri_exec(cri_client: Any) -> ExecIn:
    """An ExecIn over CRI ExecSync (``cri.CriClient.exec_sync``): stdout and stderr
    together; a deadline becomes TimeoutError."""

    async def exec_in(container_id: str, cmd: list[str],
                      timeout: float) -> tuple[int, bytes]:  # noqa: ASYNC109
        try:
            reply = await cri_client.exec_sync(container_id, cmd, timeout=max(1, timeout))
        except grpc.aio.AioRpcError as exc:
            details = exc.details() or ""
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED or "timeout" in details:
                raise TimeoutError(details) from None
            raise
        return int(reply.exit_code), bytes(reply.stdout) + bytes(reply.stderr)

    return exec_in


class ProbeManager:
    """The probe workers of every running container on the node.

    ``update`` (from each pod sync) starts workers for running containers with probes and
    stops those of containers that are gone. Workers run as asyncio tasks over ``clock``
    when ``autostart`` (the agent); tests pass ``autostart=False`` and call ``tick``.
    """

    def __init__(self, exec_in: ExecIn, on_change: Callable[[str], None], *,
                 on_liveness_failure: Callable[[str, str, str, str], None] | None = None,
                 recorder: Recorder | None = None, clock: Clock | None = None,
                 probe: ProbeFn = run_probe, autostart: bool = True) -> None:
        self.exec_in = exec_in
        self.on_change = on_change
        self.on_liveness_failure = on_liveness_failure
        self.recorder = recorder
        self.clock: Clock = clock or RealClock()
        self.probe = probe
        self.autostart = autostart
        self._targets: dict[str, _Target] = {}  # container id -> target

    # --- what the pod worker asks -------------------------------------------------------

    def readiness(self, container_id: str) -> bool:
        """Whether a running container is ready (started, and its readiness probe, if
        any, passed); False for a container this manager does not know."""
        target = self._targets.get(container_id)
        return target is not None and target.ready

    def started(self, container_id: str) -> bool:
        """Whether a running container passed its startup probe (True when it has none);
        False for a container this manager does not know."""
        target = self._targets.get(container_id)
        return target is not None and target.started

    def readiness_map(self, uid: str) -> dict[str, bool]:
        """Container id -> ready, for the pod's running containers."""
        return {cid: t.ready for cid, t in self._targets.items() if t.uid == uid}

    def started_map(self, uid: str) -> dict[str, bool]:
        """Container id -> started, for the pod's running containers."""
        return {cid: t.started for cid, t in self._targets.items() if t.uid == uid}

    def liveness_failures(self, uid: str) -> dict[str, str]:
        """Container id -> probe message, for the pod's containers that failed a liveness
        or startup probe (to be killed and restarted)."""
        return {cid: t.liveness_failure for cid, t in self._targets.items()
                if t.uid == uid and t.liveness_failure}

    # --- lifecycle ----------------------------------------------------------------------

    def update(self, pod: core_pb2.Pod,
               containers: Mapping[str, Sequence[api_pb2.ContainerStatus]],
               sandbox: api_pb2.PodSandboxStatus | None = None, *, pod_ip: str = "") -> None:
        """Track the pod's running containers (attempts per name, newest first): start
        workers for new ones, stop those of containers no longer running. The probes'
        address is ``pod_ip``, else the sandbox's, else the pod's ``status.podIP``."""
        uid = pod.metadata.uid
        specs = {c.name: c for c in pod.spec.containers}
        running = {attempts[0].id: (specs[name], attempts[0])
                   for name, attempts in containers.items()
                   if attempts and name in specs and attempts[0].state == cri.RUNNING}
        for cid in [cid for cid, t in self._targets.items()
                    if t.uid == uid and cid not in running]:
            self._stop(cid)
        address = pod_ip or (sandbox.network.ip if sandbox is not None else "") \
            or pod.status.pod_ip
        for cid, (spec, status) in running.items():
            target = self._targets.get(cid)
            if target is not None:
                target.pod, target.pod_ip = pod, address or target.pod_ip
                continue
            workers = {kind: _Worker(kind, probe, ProbeState(kind, probe))
                       for kind, probe in probes_of(spec)}
            target = self._targets[cid] = _Target(pod, spec, cid, status.started_at / 1e9,
                                                  address, workers)
            if self.autostart:
                for worker in workers.values():
                    worker.task = asyncio.create_task(self._loop(target, worker),
                                                      name=f"probe-{worker.kind}-{cid[:12]}")

    def _stop(self, cid: str) -> None:
        target = self._targets.pop(cid, None)
        if target is not None:
            for worker in target.workers.values():
                if worker.task is not None:
                    worker.task.cancel()

    def forget(self, uid: str) -> None:
        """Stop every worker of pod ``uid`` (it is gone from the node)."""
        for cid in [cid for cid, t in self._targets.items() if t.uid == uid]:
            self._stop(cid)

    async def stop(self) -> None:
        """Stop every worker and wait for them to end."""
        tasks = [w.task for t in self._targets.values() for w in t.workers.values()
                 if w.task is not None]
        for cid in list(self._targets):
            self._stop(cid)
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- checks -------------------------------------------------------------------------

    def _next_due(self, target: _Target, worker: _Worker) -> float | None:
        """When ``worker`` should check next; None while it waits to be woken (gated by
        the startup probe, or the pod is being deleted) or is finished."""
        if worker.kind != "startup" and not target.started:
            return None
        if worker.kind != "readiness" and target.pod.metadata.HasField("deletion_timestamp"):
            return None
        return worker.state.next_due(target.started_at)

    async def tick(self, now: float | None = None) -> None:
        """Run every check due at ``now`` (default: the clock's), concurrently, and wait
        for them (tests drive the manager with this)."""
        now = self.clock.now() if now is None else now
        due = [(t, w) for t in list(self._targets.values()) for w in t.workers.values()
               if not w.busy and (when := self._next_due(t, w)) is not None and now >= when]
        await asyncio.gather(*(self._check(t, w, now) for t, w in due))

    async def _check(self, target: _Target, worker: _Worker, now: float) -> None:
        worker.busy = True
        try:
            result, message = await self.probe(
                worker.probe, target.spec, target.pod_ip,
                lambda cmd, timeout: self.exec_in(target.container_id, cmd, timeout))
        finally:
            worker.busy = False
        if self._targets.get(target.container_id) is not target:
            return  # the container went away meanwhile
        self._report(target, worker.kind, result, message)
        verdict = worker.state.observe(result, now)
        if verdict is None:
            return
        if verdict == ProbeResult.FAILURE and worker.kind != "readiness":
            # "<kind> probe failed: <why>": the pod worker's kill message names the kind
            target.liveness_failure = f"{worker.kind} probe failed: {message or 'failure'}"
            if self.on_liveness_failure is not None:
                self.on_liveness_failure(target.uid, target.spec.name, target.container_id,
                                         message)
        elif worker.kind == "startup":  # started: the other probes may run now
            for other in target.workers.values():
                other.wake.set()
        self.on_change(target.uid)

    def _report(self, target: _Target, kind: str, result: ProbeResult, message: str) -> None:
        if self.recorder is None or result == ProbeResult.SUCCESS:
            return
        what = "failed" if result == ProbeResult.FAILURE else "errored"
        self.recorder.event(target.pod, "Warning", "Unhealthy",
                            f"{kind.capitalize()} probe {what}: {message}")

    # --- the asyncio part ---------------------------------------------------------------

    async def _loop(self, target: _Target, worker: _Worker) -> None:
        while self._targets.get(target.container_id) is target and not worker.state.finished:
            now = self.clock.now()
            when = self._next_due(target, worker)
            if when is not None and now >= when:
                await self._check(target, worker, now)
                continue
            await self._sleep(worker, None if when is None else when - now)

    async def _sleep(self, worker: _Worker, seconds: float | None) -> None:
        """Until ``seconds`` have passed on the clock (None: forever) or the worker is
        woken."""
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(worker.wake.wait())]
        if seconds is not None:
            waits.append(asyncio.ensure_future(self.clock.sleep(seconds)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in waits:
                fut.cancel()
        worker.wake.clear()

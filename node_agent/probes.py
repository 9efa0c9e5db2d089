"""Probes: one check (exec, httpGet, tcpSocket, grpc) and the threshold state of a probe.

``run_probe`` does one check and says Success or Failure with kubelet's message.
``ProbeState`` is pure: it turns a series of results into the committed verdict, with
successThreshold / failureThreshold, as kubelet's prober worker does. Defaults for unset
(0) fields are Kubernetes': period 10 s, timeout 1 s, thresholds 1 and 3.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from navarch.v1 import core_pb2

__all__ = ["ExecFn", "ProbeResult", "ProbeState", "probe_timing", "resolve_port",
           "run_probe"]

ExecFn = Callable[[list[str], float], Awaitable[tuple[int, bytes]]]


class ProbeResult(enum.Enum):
    SUCCESS = "Success"
    FAILURE = "Failure"


@dataclass(frozen=True)
class ProbeTiming:
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int


def probe_timing(probe: core_pb2.Probe) -> ProbeTiming:
    """The probe's timing with Kubernetes' defaults for unset fields."""
    return ProbeTiming(initial_delay=max(0, probe.initial_delay_seconds),
                       period=probe.period_seconds or 10,
                       timeout=probe.timeout_seconds or 1,
                       success_threshold=probe.success_threshold or 1,
                       failure_threshold=probe.failure_threshold or 3)


def resolve_port(port: str, container: core_pb2.Container) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if port.isdigit():
        return int(port)
    for p in container.ports:
        if p.name == port:
            return int(p.container_port)
    raise ValueError(f"port {port!r} is neither a number nor a named port of container "
                     f"{container.name}")


async def _http_get(action: core_pb2.HTTPGetAction, host: str, port: int,
                    timeout: float) -> tuple[ProbeResult, str]:  # noqa: ASYNC109
    if action.scheme and action.scheme.upper() != "HTTP":
        return ProbeResult.FAILURE, f"scheme {action.scheme} is not supported (HTTP only)"
    path = action.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    headers = {"Host": f"{host}:{port}", "User-Agent": "kube-probe/1.31",
               "Accept": "*/*", "Connection": "close"}
    for h in action.http_headers:
        headers[h.name] = h.value
    request = f"GET {path} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    url = f"http://{host}:{port}{path}"
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(request.encode())
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
    except TimeoutError:
        return ProbeResult.FAILURE, (f'Get "{url}": context deadline exceeded '
                                     "(Client.Timeout exceeded while awaiting headers)")
    except OSError as exc:
        return ProbeResult.FAILURE, f'Get "{url}": dial tcp {host}:{port}: {exc.strerror or exc}'
    parts = line.decode("latin-1").split()
    if len(parts) < 2 or not parts[1].isdigit():
        return ProbeResult.FAILURE, f'Get "{url}": malformed HTTP response'
    code = int(parts[1])
    if 200 <= code < 400:
        return ProbeResult.SUCCESS, ""
    return ProbeResult.FAILURE, f"HTTP probe failed with statuscode: {code}"


async def _tcp(host: str, port: int, timeout: float) -> tuple[ProbeResult, str]:  # noqa: ASYNC109
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
    except TimeoutError:
        return ProbeResult.FAILURE, f"dial tcp {host}:{port}: i/o timeout"
    except OSError as exc:
        return ProbeResult.FAILURE, f"dial tcp {host}:{port}: {exc.strerror or exc}"
    return ProbeResult.SUCCESS, ""


async def _grpc(action: core_pb2.GRPCAction, host: str,
                timeout: float) -> tuple[ProbeResult, str]:  # noqa: ASYNC109
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    target = f"{host}:{action.port}"
    try:
        async with grpc.aio.insecure_channel(target) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=action.service), timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        return ProbeResult.FAILURE, f"failed to connect service {target!r}: {exc.details()}"
    if reply.status == health_pb2.HealthCheckResponse.SERVING:
        return ProbeResult.SUCCESS, ""
    return ProbeResult.FAILURE, f"service unhealthy (responded with {reply.status})"


async def run_probe(probe: core_pb2.Probe, container: core_pb2.Container, pod_ip: str,
                    exec_fn: ExecFn) -> tuple[ProbeResult, str]:
    """One check of ``probe`` against ``container`` of a pod at ``pod_ip``."""
    timeout = probe_timing(probe).timeout
    try:
        if probe.HasField("exec"):
            try:
                code, output = await exec_fn(list(probe.exec.command), timeout)
            except TimeoutError:
                return ProbeResult.FAILURE, f"command timed out after {timeout:g}s"
            if code == 0:
                return ProbeResult.SUCCESS, ""
            text = output.decode(errors="replace").strip()
            return ProbeResult.FAILURE, text or f"command exited with code {code}"
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
        return ProbeResult.FAILURE, str(exc)
    return ProbeResult.FAILURE, "probe has no handler (exec, httpGet, tcpSocket or grpc)"


class ProbeState:
    """Committed verdict of one probe of one container from its results so far.

    Readiness starts Failure (not ready until it succeeds); liveness and startup start
    Success (a container is alive until proven otherwise; startup is judged by
    ``started``). A verdict flips after ``successThreshold`` successes or
    ``failureThreshold`` failures in a row.
    """

    def __init__(self, kind: str, probe: core_pb2.Probe) -> None:
        self.kind = kind
        self.timing = probe_timing(probe)
        self.result = ProbeResult.FAILURE if kind == "readiness" else ProbeResult.SUCCESS
        self.started = kind != "startup"
        self._streak: tuple[ProbeResult, int] = (self.result, 0)

    def observe(self, result: ProbeResult) -> ProbeResult | None:
        """Record one result; the new verdict when it changed, else None."""
        last, count = self._streak
        count = count + 1 if result == last else 1
        self._streak = (result, count)
        threshold = (self.timing.success_threshold if result == ProbeResult.SUCCESS
                     else self.timing.failure_threshold)
        if self.kind in ("liveness", "startup") and result == ProbeResult.SUCCESS:
            threshold = 1  # Kubernetes requires 1 for these
        if count >= threshold and result != self.result:
            self.result = result
            if self.kind == "startup" and result == ProbeResult.SUCCESS:
                self.started = True
            return result
        if self.kind == "startup" and result == ProbeResult.SUCCESS and not self.started:
            self.started = True
            return result
        return None


def probes_of(container: core_pb2.Container) -> Sequence[tuple[str, core_pb2.Probe]]:
    """The container's probes by kind, startup first."""
    out = []
    for kind, name in (("startup", "startup_probe"), ("liveness", "liveness_probe"),
                       ("readiness", "readiness_probe")):
        if container.HasField(name):
            out.append((kind, getattr(container, name)))
    return out

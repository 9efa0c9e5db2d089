"""The agent's probe workers: one asyncio task per probe of each running container.

    PodSyncer.sync ─ update(pod, containers) ─▶ start workers for new running containers,
                                                 stop those of containers that stopped
    worker: wait initialDelaySeconds (from the container's start), then every
            periodSeconds: run_probe ─▶ ProbeState ─▶ verdict changed? ─▶ on_change(uid)

Startup probes gate the others: liveness and readiness run only once startup succeeded.
A liveness (or startup) verdict of Failure is kept in ``liveness_failures`` until the
container is gone; the pod worker then kills and restarts the container. Events:
``Unhealthy`` with kubelet's wording ("Liveness probe failed: …").

Contract: every method is called from the agent's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from cri_api.v1 import api_pb2

from navarch.v1 import core_pb2

from . import cri
from .cri import CriClient
from .probes import ProbeResult, ProbeState, probes_of, run_probe

__all__ = ["AgentProbes"]


@dataclass
class _Container:
    """The probe workers of one running container and their verdicts."""

    uid: str
    name: str
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ready: bool = False
    started: bool = True
    liveness_failure: str = ""


class AgentProbes:
    """Probe workers of every running container on the node."""

    def __init__(self, cri_client: CriClient, on_change: Callable[[str], None],
                 recorder: Any = None) -> None:
        self.cri = cri_client
        self.on_change = on_change
        self.recorder = recorder
        self._containers: dict[str, _Container] = {}  # container id -> workers

    # --- queries of the pod worker ----------------------------------------------------

    def liveness_failures(self, uid: str) -> dict[str, str]:
        return {cid: c.liveness_failure for cid, c in self._containers.items()
                if c.uid == uid and c.liveness_failure}

    def readiness_map(self, uid: str) -> dict[str, bool]:
        return {cid: c.ready for cid, c in self._containers.items() if c.uid == uid}

    def started_map(self, uid: str) -> dict[str, bool]:
        return {cid: c.started for cid, c in self._containers.items() if c.uid == uid}

    # --- lifecycle ----------------------------------------------------------------------

    def update(self, pod: core_pb2.Pod,
               containers: Mapping[str, Sequence[api_pb2.ContainerStatus]],
               sandbox: api_pb2.PodSandboxStatus | None) -> None:
        """Start workers for running containers with probes; stop those of the others."""
        uid = pod.metadata.uid
        specs = {c.name: c for c in pod.spec.containers}
        running = {}
        for name, attempts in containers.items():
            if attempts and attempts[0].state == cri.RUNNING and name in specs:
                running[attempts[0].id] = (specs[name], attempts[0])
        for cid in [cid for cid, c in self._containers.items()
                    if c.uid == uid and cid not in running]:
            self._stop(cid)
        pod_ip = sandbox.network.ip if sandbox is not None else ""
        for cid, (spec, status) in running.items():
            if cid in self._containers:
                continue
            probes = probes_of(spec)
            state = _Container(uid, spec.name, ready=True, started=True)
            if probes:
                kinds = {k for k, _ in probes}
                state.ready = "readiness" not in kinds
                state.started = "startup" not in kinds
                startup = asyncio.Event()
                if state.started:
                    startup.set()
                for kind, probe in probes:
                    state.tasks.append(asyncio.create_task(
                        self._worker(pod, spec, cid, status.started_at / 1e9, pod_ip, kind,
                                     probe, startup),
                        name=f"probe-{kind}-{cid[:12]}"))
            self._containers[cid] = state

    def _stop(self, cid: str) -> None:
        state = self._containers.pop(cid, None)
        if state is not None:
            for task in state.tasks:
                task.cancel()

    def forget(self, uid: str) -> None:
        """Stop every worker of pod ``uid``."""
        for cid in [cid for cid, c in self._containers.items() if c.uid == uid]:
            self._stop(cid)

    async def stop(self) -> None:
        tasks = [t for c in self._containers.values() for t in c.tasks]
        for cid in list(self._containers):
            self._stop(cid)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- one probe ----------------------------------------------------------------------

    async def _exec(self, cid: str, cmd: list[str], timeout: float) -> tuple[int, bytes]:  # noqa: ASYNC109
        try:
            reply = await asyncio.wait_for(self.cri.exec_sync(cid, cmd, timeout=timeout),
                                           timeout + 5)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TimeoutError from None
            return 1, (exc.details() or "").encode()
        return int(reply.exit_code), bytes(reply.stdout) + bytes(reply.stderr)

    async def _worker(self, pod: core_pb2.Pod, spec: core_pb2.Container, cid: str,
                      started_at: float, pod_ip: str, kind: str, probe: core_pb2.Probe,
                      startup: asyncio.Event) -> None:
        state = ProbeState(kind, probe)
        uid = pod.metadata.uid
        if kind != "startup":
            await startup.wait()
        delay = started_at + state.timing.initial_delay - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        while cid in self._containers:
            result, message = await run_probe(
                probe, spec, pod_ip, lambda cmd, t: self._exec(cid, cmd, t))
            if result == ProbeResult.FAILURE and self.recorder is not None and message:
                self.recorder.event(pod, "Warning", "Unhealthy",
                                    f"{kind.capitalize()} probe failed: {message}")
            verdict = state.observe(result)
            container = self._containers.get(cid)
            if container is None:
                return
            if verdict is not None:
                if kind == "readiness":
                    container.ready = verdict == ProbeResult.SUCCESS
                elif kind == "startup" and verdict == ProbeResult.SUCCESS:
                    container.started = True
                    startup.set()
                elif verdict == ProbeResult.FAILURE:  # liveness or startup
                    container.liveness_failure = message or f"{kind} probe failed"
                    self.on_change(uid)
                    return  # the container is killed and restarted: new workers then
                self.on_change(uid)
            await asyncio.sleep(state.timing.period)

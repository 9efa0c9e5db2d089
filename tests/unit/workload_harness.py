"""Running one workload controller over tests/fakeapi.FakeClient with a FakeClock, and
building the objects its tests need (pods with a phase and readiness, nodes, owners)."""

from __future__ import annotations

import asyncio
from typing import Any

from navarch._clock import FakeClock
from navarch._events import EventRecorder
from navarch._informer import InformerFactory
from navarch.v1 import core_pb2
from services.controllers.framework import Controller, ControllerContext
from services.controllers.workloads import timestamp
from tests.fakeapi import FakeClient

NOW = 1_700_000_000.0


class Harness:
    """A controller, its fake API and clock; ``step`` lets events flow and drains."""

    def __init__(self, cls: type[Controller], objects: list[Any] = (),  # type: ignore[assignment]
                 *, now: float = NOW) -> None:
        self.clock = FakeClock(now)
        self.client = FakeClient(list(objects), now=now)
        self.ctx = ControllerContext(self.client, InformerFactory(self.client),
                                     EventRecorder(self.client, "test", clock=self.clock),
                                     self.clock)
        self.controller = cls(self.ctx)

    async def start(self) -> None:
        """Set up, start the informers and wait for their first list."""
        await self.controller.setup()
        self.ctx.informers.start()
        await self.ctx.informers.wait_synced(5)
        await self.step()

    async def settle(self) -> None:
        """Let watch events reach the informers and handlers."""
        for _ in range(30):
            await asyncio.sleep(0)

    async def step(self, rounds: int = 5) -> None:
        """Deliver events and process queued keys until quiet."""
        for _ in range(rounds):
            await self.settle()
            if await self.controller.drain() == 0:
                await self.settle()
                if len(self.controller.queue) == 0:
                    return

    async def advance(self, seconds: float) -> None:
        """Move the clock (and the fake API's clock), then step."""
        await self.clock.advance(seconds)
        self.client.now = self.clock.now()
        await self.step()

    async def stop(self) -> None:
        """Stop informers and the event writer."""
        self.controller.queue.shut_down()
        await self.ctx.informers.stop()
        await self.ctx.recorder.stop()

    def reasons(self) -> list[str]:
        """Reasons of the events recorded so far, in order."""
        return [e.reason for e in self.ctx.recorder.recorded]

    async def set_pod(self, name: str, namespace: str = "default", **state: Any) -> None:
        """Play the kubelet: give pod ``name`` a phase/readiness (see ``pod_state``);
        with ``node``, bind it there first if it is not bound yet."""
        pods = self.client.pods(namespace)
        current = await pods.get(name)
        if state.get("node") and not current.spec.node_name:  # play the scheduler too
            current = await self.client.bind(namespace, name, state["node"])
        pod_state(current, **state, now=self.clock.now())
        await pods.update_status(current)
        await self.step()


def pod_state(pod: core_pb2.Pod, *, phase: str = "Running", ready: bool = False,
              now: float = NOW, restarts: int = 0, node: str = "") -> core_pb2.Pod:
    """Set ``pod``'s phase, Ready condition (since ``now``), container restarts and the
    finish time of terminated containers; returns it."""
    pod.status.phase = phase
    del pod.status.conditions[:]
    cond = pod.status.conditions.add(type="Ready", status="True" if ready else "False")
    cond.last_transition_time.CopyFrom(timestamp(now))
    del pod.status.container_statuses[:]
    cs = pod.status.container_statuses.add(name="c", ready=ready, restart_count=restarts)
    if phase in ("Succeeded", "Failed"):
        cs.state.terminated.exit_code = 0 if phase == "Succeeded" else 1
        cs.state.terminated.finished_at.CopyFrom(timestamp(now))
    if node:
        pod.spec.node_name = node
    return pod


def node(name: str, labels: dict[str, str] | None = None,
         taints: list[tuple[str, str, str]] = ()) -> core_pb2.Node:  # type: ignore[assignment]
    """A Node with labels and (key, value, effect) taints."""
    n = core_pb2.Node(api_version="v1", kind="Node")
    n.metadata.name = name
    n.metadata.labels.update(labels or {})
    n.metadata.labels.setdefault("kubernetes.io/hostname", name)
    for key, value, effect in taints:
        n.spec.taints.add(key=key, value=value, effect=effect)
    return n

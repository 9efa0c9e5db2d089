"""The controller manager: every enabled controller of one process over shared informers.

Flow (one leadership term)::

    ControllerContext (client, InformerFactory, EventRecorder, clock, options)
      └─ for each enabled controller: Controller(ctx).setup()   (informers + handlers)
      └─ informers.start(); wait until each has listed once
      └─ every controller's workers run until the term ends (cancelled)

Controllers are named as kube-controller-manager names them; ``--controllers`` takes a
comma-separated list where ``*`` means every default one and ``-name`` disables one.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from typing import Any

import structlog

from navarch._clock import Clock, RealClock
from navarch._events import EventRecorder
from navarch._informer import InformerFactory

from .framework import Controller, ControllerContext

__all__ = ["CONTROLLERS", "ControllerManager", "enabled_controllers"]

log = structlog.get_logger("navarch.controllers")

# name -> "module:Class", imported when enabled
CONTROLLERS: dict[str, str] = {
    "replicaset": "services.controllers.replicaset:ReplicaSetController",
    "deployment": "services.controllers.deployment:DeploymentController",
    "endpoints": "services.controllers.endpoints:EndpointsController",
    "nodeipam": "services.controllers.nodeipam:NodeIpamController",
    "nodelifecycle": "services.controllers.nodelifecycle:NodeLifecycleController",
    "namespace": "services.controllers.namespace:NamespaceController",
    "garbagecollector": "services.controllers.garbagecollector:GarbageCollector",
    "daemonset": "services.controllers.daemonset:DaemonSetController",
    "job": "services.controllers.job:JobController",
    "cronjob": "services.controllers.cronjob:CronJobController",
    "statefulset": "services.controllers.statefulset:StatefulSetController",
    "horizontalpodautoscaling":
        "services.controllers.podautoscaler:HorizontalPodAutoscalerController",
    "disruption": "services.controllers.disruption:DisruptionController",
    "clusterrole-aggregation":
        "services.controllers.clusterroleaggregation:ClusterRoleAggregationController",
}


def enabled_controllers(spec: str) -> list[str]:
    """The controllers ``--controllers`` names, in CONTROLLERS order; ValueError naming
    an unknown one."""
    chosen: set[str] = set()
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        name = item.lstrip("-")
        if name != "*" and name not in CONTROLLERS:
            raise ValueError(f"--controllers: unknown controller {name!r}; known: "
                             + ", ".join(CONTROLLERS))
        if item == "*":
            chosen |= set(CONTROLLERS)
        elif item.startswith("-"):
            chosen.discard(name)
        else:
            chosen.add(name)
    for item in spec.split(","):
        if item.strip().startswith("-"):
            chosen.discard(item.strip()[1:])
    return [n for n in CONTROLLERS if n in chosen]


def controller_class(name: str) -> type[Controller]:
    """The class of controller ``name``."""
    module, _, cls = CONTROLLERS[name].partition(":")
    found: type[Controller] = getattr(importlib.import_module(module), cls)
    return found


class ControllerManager:
    """Runs a set of controllers for one leadership term at a time."""

    def __init__(self, names: list[str], *, options: dict[str, Any] | None = None,
                 clock: Clock | None = None, identity: str = "") -> None:
        self.names = names
        self.options = options or {}
        self.clock: Clock = clock or RealClock()
        self.identity = identity
        self.controllers: list[Controller] = []

    def context(self, client: Any) -> ControllerContext:
        """A fresh context over ``client``."""
        recorder = EventRecorder(client, "navarch-controller-manager",
                                 instance=self.identity, clock=self.clock)
        return ControllerContext(client, InformerFactory(client), recorder, self.clock,
                                 dict(self.options))

    async def run(self, client: Any, *, synced: asyncio.Event | None = None) -> None:
        """One term: set every controller up, sync the informers, run until cancelled."""
        ctx = self.context(client)
        self.controllers = [controller_class(n)(ctx) for n in self.names]
        for c in self.controllers:
            await c.setup()
        ctx.informers.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            await ctx.informers.wait_synced()
            log.info("controllers running", controllers=",".join(self.names))
            if synced is not None:
                synced.set()
            tasks = [asyncio.create_task(c.run(), name=f"controller-{c.name}")
                     for c in self.controllers]
            tasks += [asyncio.create_task(c.background(), name=f"controller-{c.name}-bg")
                      for c in self.controllers]
            await asyncio.gather(*tasks)
            await asyncio.Event().wait()  # no controllers (or all returned): hold the term
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            await ctx.informers.stop()
            await ctx.recorder.stop()

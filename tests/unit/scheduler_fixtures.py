"""Builders of Nodes and Pods for the scheduler's unit tests."""

from __future__ import annotations

from navarch.v1 import core_pb2
from services.scheduler.framework import NodeInfo, PodInfo


def node(name: str, cpu: str = "4", memory: str = "32Gi", pods: str = "110", *,
         labels: dict[str, str] | None = None, taints: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
         unschedulable: bool = False, images: dict[str, int] | None = None) -> core_pb2.Node:
    """A Ready node with allocatable cpu/memory/pods, labels and taints (key, value,
    effect)."""
    n = core_pb2.Node()
    n.metadata.name = name
    n.metadata.labels.update({"kubernetes.io/hostname": name, **(labels or {})})
    n.status.allocatable.update({"cpu": cpu, "memory": memory, "pods": pods})
    n.status.capacity.update({"cpu": cpu, "memory": memory, "pods": pods})
    n.spec.unschedulable = unschedulable
    for key, value, effect in taints:
        n.spec.taints.add(key=key, value=value, effect=effect)
    for image, size in (images or {}).items():
        n.status.images.add(names=[image], size_bytes=size)
    c = n.status.conditions.add()
    c.type, c.status = "Ready", "True"
    return n


def pod(name: str, cpu: str = "", memory: str = "", *, namespace: str = "default",
        node_name: str = "", priority: int | None = None, labels: dict[str, str] | None = None,
        host_port: int = 0, image: str = "busybox", scheduler_name: str = "",
        node_selector: dict[str, str] | None = None,
        tolerations: list[tuple[str, str, str, str]] = (),  # type: ignore[assignment]
        init: list[tuple[str, str]] = ()) -> core_pb2.Pod:  # type: ignore[assignment]
    """A pod with one container requesting cpu/memory (empty: nothing); tolerations are
    (key, operator, value, effect); init containers as (cpu, memory)."""
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace = name, namespace
    p.metadata.uid = f"uid-{name}"
    p.metadata.labels.update(labels or {})
    c = p.spec.containers.add(name="c", image=image)
    if cpu:
        c.resources.requests["cpu"] = cpu
    if memory:
        c.resources.requests["memory"] = memory
    if host_port:
        c.ports.add(container_port=80, host_port=host_port, protocol="TCP")
    for i, (icpu, imem) in enumerate(init):
        ic = p.spec.init_containers.add(name=f"init{i}", image=image)
        if icpu:
            ic.resources.requests["cpu"] = icpu
        if imem:
            ic.resources.requests["memory"] = imem
    if node_name:
        p.spec.node_name = node_name
    if priority is not None:
        p.spec.priority = priority
    if scheduler_name:
        p.spec.scheduler_name = scheduler_name
    p.spec.node_selector.update(node_selector or {})
    for key, op, value, effect in tolerations:
        p.spec.tolerations.add(key=key, operator=op, value=value, effect=effect)
    return p


def node_info(n: core_pb2.Node, *pods: core_pb2.Pod) -> NodeInfo:
    """A NodeInfo holding ``pods``."""
    info = NodeInfo(n)
    for p in pods:
        info.add_pod(PodInfo.of(p))
    return info

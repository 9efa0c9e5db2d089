"""The node lifecycle controller: notices nodes that stopped sending heartbeats, taints
nodes that are not ready, and evicts pods that do not tolerate NoExecute taints.

Flow::

    leases (kube-node-lease), nodes ──▶ "node:<name>"
      reconcile node: heartbeat (lease renewTime, Ready lastHeartbeatTime) unchanged for
        the grace period ──mark_unknown (pure)──▶ conditions Unknown (status update)
        conditions ──desired_taints (pure)──▶ not-ready / unreachable / pressure taints
        wake again when the grace period would end
    pods, node taint changes ──▶ "pod:<namespace>/<name>"
      reconcile pod: eviction_delay (pure) over the node's NoExecute taints and the pod's
        tolerations ──▶ delete now (event TaintManagerEviction) / add_after(delay) / keep

Contracts:
- Heartbeats are judged by when *this controller* saw them change (its clock), not by
  the timestamps the node wrote, so clock skew between nodes and controller is harmless.
  A node seen for the first time gets a full grace period.
- A toleration's tolerationSeconds counts from the taint's timeAdded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from navarch._errors import NotFound
from navarch.v1 import core_pb2

from .framework import Controller, clone

__all__ = ["NOT_READY", "UNREACHABLE", "UNSCHEDULABLE", "NodeLifecycleController", "desired_taints",
           "eviction_delay", "mark_unknown", "tolerates", "with_default_tolerations"]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
LEASE_NAMESPACE = "kube-node-lease"
_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def ready_condition(node: core_pb2.Node) -> core_pb2.NodeCondition | None:
    """The node's Ready condition, if it has one."""
    return next((c for c in node.status.conditions if c.type == "Ready"), None)


def mark_unknown(node: core_pb2.Node, now: float) -> core_pb2.Node | None:
    """A copy of ``node`` whose Ready and pressure conditions say Unknown (the kubelet
    stopped posting), or None when they already do. A node that never posted gets a
    Ready condition saying so."""
    new = clone(node)
    changed = False
    present = {c.type for c in new.status.conditions}
    if "Ready" not in present:
        cond = new.status.conditions.add(type="Ready", status="Unknown",
                                         reason="NodeStatusNeverUpdated",
                                         message="Kubelet never posted node status.")
        cond.last_heartbeat_time.CopyFrom(new.metadata.creation_timestamp)
        cond.last_transition_time.FromSeconds(int(now))
        changed = True
    for cond in new.status.conditions:
        if cond.type not in _CONDITIONS or cond.status == "Unknown":
            continue
        cond.status = "Unknown"
        cond.reason = "NodeStatusUnknown"
        cond.message = "Kubelet stopped posting node status."
        cond.last_transition_time.FromSeconds(int(now))
        changed = True
    return new if changed else None


# NoSchedule taints by condition (Kubernetes' TaintNodesByCondition): (type, status) -> key
_CONDITION_TAINTS = (
    ("Ready", "False", NOT_READY),
    ("Ready", "Unknown", UNREACHABLE),
    ("MemoryPressure", "True", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
    ("NetworkUnavailable", "True", "node.kubernetes.io/network-unavailable"),
)
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
_MANAGED = {key for _, _, key in _CONDITION_TAINTS} | {UNSCHEDULABLE}


def desired_taints(taints: Sequence[core_pb2.Taint], conditions: Mapping[str, str],
                   unschedulable: bool, now: float) -> list[core_pb2.Taint] | None:
    """The node's taints given its condition statuses (type -> status), or None when they
    are right already. NoExecute: Ready False → not-ready, Unknown → unreachable (with
    timeAdded). NoSchedule: those two, the pressure conditions and NetworkUnavailable
    when True, and unschedulable for a cordoned node. Other taints are the user's and
    stay; kept taints keep their timeAdded."""
    want: list[tuple[str, str]] = [(key, "NoSchedule") for ctype, status, key
                                   in _CONDITION_TAINTS if conditions.get(ctype) == status]
    if unschedulable:
        want.append((UNSCHEDULABLE, "NoSchedule"))
    ready = conditions.get("Ready")
    if ready in ("False", "Unknown"):
        want.append((NOT_READY if ready == "False" else UNREACHABLE, "NoExecute"))
    out = [t for t in taints if t.key not in _MANAGED or (t.key, t.effect) in want]
    for key, effect in want:
        if not any(t.key == key and t.effect == effect for t in out):
            taint = core_pb2.Taint(key=key, effect=effect)
            if effect == "NoExecute":
                taint.time_added.FromSeconds(int(now))
            out.append(taint)
    return None if list(taints) == out else out


def tolerates(toleration: core_pb2.Toleration, taint: core_pb2.Taint) -> bool:
    """Kubernetes' ToleratesTaint."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    if toleration.operator == "Exists":
        return True
    if toleration.operator in ("", "Equal"):
        return bool(toleration.key) and toleration.value == taint.value
    return False


def with_default_tolerations(tolerations: Sequence[core_pb2.Toleration], seconds: int
                             ) -> list[core_pb2.Toleration]:
    """``tolerations`` plus, for each of the not-ready and unreachable NoExecute taints the
    pod does not tolerate itself, one for ``seconds`` (what Kubernetes' DefaultToleration-
    Seconds admission adds; the API server does it too, this covers older pods)."""
    out = list(tolerations)
    for key in (NOT_READY, UNREACHABLE):
        if not any(t.key in (key, "") and t.effect in ("NoExecute", "") for t in tolerations):
            out.append(core_pb2.Toleration(key=key, operator="Exists", effect="NoExecute",
                                           toleration_seconds=seconds))
    return out


def eviction_delay(tolerations: Iterable[core_pb2.Toleration],
                   taints: Iterable[core_pb2.Taint], now: float) -> float | None:
    """Seconds until a pod must be evicted from a node with ``taints`` (only NoExecute
    ones count): 0 when one is not tolerated, None when the pod may stay forever.
    A tolerated taint's deadline is its timeAdded plus the smallest tolerationSeconds of
    the tolerations matching it (unset = forever; ≤ 0 = at once); the earliest wins."""
    tols = list(tolerations)
    deadline = math.inf
    for taint in taints:
        if taint.effect != "NoExecute":
            continue
        matching = [t for t in tols if tolerates(t, taint)]
        if not matching:
            return 0.0
        limits = [t.toleration_seconds for t in matching if t.HasField("toleration_seconds")]
        if not limits:
            continue  # tolerated for ever (Kubernetes: the smallest set limit wins)
        start = _seconds(taint.time_added) if taint.HasField("time_added") else now
        deadline = min(deadline, start + max(min(limits), 0))
    if deadline == math.inf:
        return None
    return max(deadline - now, 0.0)


@dataclass
class _Probe:
    """The last heartbeat seen for a node and when (controller clock) it changed."""

    marker: tuple[float, float]
    seen: float


class NodeLifecycleController(Controller):
    """Marks silent nodes Unknown, taints unready nodes, evicts intolerant pods."""

    name = "nodelifecycle"

    async def setup(self) -> None:
        self.grace = float(self.ctx.options.get("node_monitor_grace_period", 40.0))
        self.default_seconds = int(self.ctx.options.get("default_toleration_seconds", 300))
        self.probes: dict[str, _Probe] = {}
        # NoExecute taints written without timeAdded: when this controller first saw them
        self.taint_seen: dict[tuple[str, str, str, str], float] = {}
        factory = self.ctx.informers
        self.nodes = factory.informer("nodes")
        self.leases = factory.informer("leases", LEASE_NAMESPACE)
        self.pods = factory.informer("pods")
        self.pods.add_index("node", lambda p: [p.spec.node_name] if p.spec.node_name else [])
        await self.nodes.add_handlers(self._node_added, self._node_updated, self._node_deleted)
        await self.leases.add_handlers(self._lease_changed, lambda _o, n: self._lease_changed(n))
        await self.pods.add_handlers(self._pod_changed, lambda _o, n: self._pod_changed(n))

    # --- handlers -------------------------------------------------------------------------

    def _node_added(self, node: core_pb2.Node) -> None:
        self.queue.add("node:" + node.metadata.name)
        self._wake_pods(node.metadata.name)

    def _node_updated(self, old: core_pb2.Node, new: core_pb2.Node) -> None:
        self.queue.add("node:" + new.metadata.name)
        if list(old.spec.taints) != list(new.spec.taints):
            self._wake_pods(new.metadata.name)

    def _node_deleted(self, node: core_pb2.Node) -> None:
        name = node.metadata.name
        self.probes.pop(name, None)
        for key in [k for k in self.taint_seen if k[0] == name]:
            del self.taint_seen[key]

    def _lease_changed(self, lease: object) -> None:
        self.queue.add("node:" + lease.metadata.name)  # type: ignore[attr-defined]

    def _pod_changed(self, pod: core_pb2.Pod) -> None:
        if pod.spec.node_name and not pod.metadata.HasField("deletion_timestamp"):
            self.queue.add(f"pod:{pod.metadata.namespace}/{pod.metadata.name}")

    def _wake_pods(self, node_name: str) -> None:
        for pod in self.pods.by_index("node", node_name):
            self._pod_changed(pod)

    # --- reconcile ------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        what, _, name = key.partition(":")
        if what == "node":
            await self._sync_node(name)
        else:
            await self._sync_pod(name)

    def _heartbeat(self, node: core_pb2.Node) -> float:
        """When this controller last saw the node's heartbeat change (its clock)."""
        lease = self.leases.get(node.metadata.name, LEASE_NAMESPACE)
        ready = ready_condition(node)
        marker = (_seconds(lease.spec.renew_time) if lease is not None else 0.0,
                  _seconds(ready.last_heartbeat_time) if ready is not None else 0.0)
        now = self.clock.now()
        probe = self.probes.get(node.metadata.name)
        if probe is None or probe.marker != marker:
            probe = self.probes[node.metadata.name] = _Probe(marker, now)
        return probe.seen

    async def _sync_node(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None:
            return
        now = self.clock.now()
        silent_for = now - self._heartbeat(node)
        api = self.client.resource("nodes", "")
        if silent_for > self.grace:
            unknown = mark_unknown(node, now)
            if unknown is not None:
                ready = ready_condition(node)
                if ready is None or ready.status == "True":
                    self.recorder.event(node, "Normal", "NodeNotReady",
                                        f"Node {name} status is now: NodeNotReady")
                node = await api.update_status(unknown)
                await self._mark_pods_not_ready(name)
        else:
            self.queue.add_after("node:" + name, self.grace - silent_for + 0.001)
        conditions = {c.type: c.status for c in node.status.conditions}
        taints = desired_taints(node.spec.taints, conditions, node.spec.unschedulable, now)
        if taints is not None:
            new = clone(node)
            del new.spec.taints[:]
            new.spec.taints.extend(taints)
            await api.update(new)

    def _dated(self, node: core_pb2.Node) -> list[core_pb2.Taint]:
        """The node's NoExecute taints, each with a timeAdded (first seen, if unset)."""
        out = []
        for taint in node.spec.taints:
            if taint.effect != "NoExecute":
                continue
            if not taint.HasField("time_added"):
                key = (node.metadata.name, taint.key, taint.value, taint.effect)
                dated = core_pb2.Taint()
                dated.CopyFrom(taint)
                dated.time_added.FromSeconds(int(self.taint_seen.setdefault(
                    key, self.clock.now())))
                taint = dated
            out.append(taint)
        return out

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        """Kubernetes' MarkPodsNotReady: the pods of an unreachable node are not Ready
        (so that Endpoints stop sending them traffic)."""
        now = self.clock.now()
        for pod in self.pods.by_index("node", node_name):
            ready = next((c for c in pod.status.conditions if c.type == "Ready"), None)
            if ready is None or ready.status != "True":
                continue
            new = clone(pod)
            for cond in new.status.conditions:
                if cond.type == "Ready":
                    cond.status = "False"
                    cond.last_transition_time.FromSeconds(int(now))
            try:
                await self.client.resource("pods", pod.metadata.namespace).update_status(new)
            except NotFound:
                continue

    async def _sync_pod(self, key: str) -> None:
        namespace, _, name = key.rpartition("/")
        pod = self.pods.get(name, namespace)
        if pod is None or pod.metadata.HasField("deletion_timestamp"):
            return
        node = self.nodes.get(pod.spec.node_name)
        if node is None:
            return
        tolerations = with_default_tolerations(pod.spec.tolerations, self.default_seconds)
        delay = eviction_delay(tolerations, self._dated(node), self.clock.now())
        if delay is None:
            return
        if delay > 0:
            self.queue.add_after("pod:" + key, delay)
            return
        self.recorder.event(pod, "Normal", "TaintManagerEviction",
                            f"Marking for deletion Pod {namespace}/{name}")
        try:
            await self.client.resource("pods", namespace).delete(name, uid=pod.metadata.uid)
        except NotFound:
            return

"""Pure builders shared by every node agent (``navarch agent``, ``navarch simnodes``): the
well-known node labels, the node conditions and heartbeat, the node Lease.

Contracts: every function returns a new message and never mutates its arguments (they
may be informer-cached objects).
"""

from __future__ import annotations

from navarch.v1 import coordination_pb2, core_pb2

__all__ = ["ARCH_LABEL", "HOSTNAME_LABEL", "KUBELET_PORT", "LEASE_NAMESPACE", "OS_LABEL",
           "ZONE_LABEL", "build_lease", "heartbeat_node", "node_conditions", "renewed_lease",
           "set_time"]

HOSTNAME_LABEL = "kubernetes.io/hostname"
OS_LABEL = "kubernetes.io/os"
ARCH_LABEL = "kubernetes.io/arch"
ZONE_LABEL = "topology.kubernetes.io/zone"
LEASE_NAMESPACE = "kube-node-lease"
KUBELET_PORT = 10250
PRESSURE_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)
NOT_READY_REASON = "KubeletNotReady"


def set_time(ts: object, when: float) -> None:
    """Set a protobuf Timestamp to ``when`` (seconds since the epoch, microseconds kept)."""
    ts.FromMicroseconds(round(when * 1_000_000))  # type: ignore[attr-defined]


def node_conditions(now: float, old: list[core_pb2.NodeCondition] | None = None,
                    not_ready: str = "") -> list[core_pb2.NodeCondition]:
    """Ready True (False with ``not_ready`` as its message, when that is given) and the
    pressure conditions False, heartbeat ``now``; a condition whose status does not change
    keeps its lastTransitionTime from ``old``."""
    before = {c.type: c for c in old or ()}
    wanted = [(t, "False", reason, msg) for t, reason, msg in PRESSURE_CONDITIONS]
    if not_ready:
        wanted.append(("Ready", "False", NOT_READY_REASON, not_ready))
    else:
        wanted.append(("Ready", "True", "KubeletReady", "kubelet is posting ready status"))
    out = []
    for type_, status, reason, message in wanted:
        cond = core_pb2.NodeCondition(type=type_, status=status, reason=reason,
                                      message=message)
        set_time(cond.last_heartbeat_time, now)
        prev = before.get(type_)
        if prev is not None and prev.status == status and prev.HasField(
                "last_transition_time"):
            cond.last_transition_time.CopyFrom(prev.last_transition_time)
        else:
            set_time(cond.last_transition_time, now)
        out.append(cond)
    return out


def heartbeat_node(node: core_pb2.Node, now: float, not_ready: str = "") -> core_pb2.Node:
    """A copy of ``node`` whose conditions say Ready at ``now`` (a Ready that the node
    lifecycle controller set Unknown becomes True again, with a new transition time), or
    not ready for the reason ``not_ready``."""
    out = core_pb2.Node()
    out.CopyFrom(node)
    conditions = node_conditions(now, list(node.status.conditions), not_ready)
    others = [c for c in node.status.conditions
              if c.type not in {x.type for x in conditions}]
    del out.status.conditions[:]
    out.status.conditions.extend([*conditions, *others])
    return out


def build_lease(name: str, now: float, duration: int) -> coordination_pb2.Lease:
    """The node Lease ``kube-node-lease/<name>``, held by the node, renewed at ``now``."""
    lease = coordination_pb2.Lease(api_version="coordination.k8s.io/v1", kind="Lease")
    lease.metadata.name = name
    lease.metadata.namespace = LEASE_NAMESPACE
    lease.spec.holder_identity = name
    lease.spec.lease_duration_seconds = duration
    set_time(lease.spec.acquire_time, now)
    set_time(lease.spec.renew_time, now)
    return lease


def renewed_lease(lease: coordination_pb2.Lease, name: str, now: float, duration: int
                  ) -> coordination_pb2.Lease:
    """A copy of ``lease`` renewed at ``now`` (holder and duration set again, in case
    someone changed them)."""
    out = coordination_pb2.Lease()
    out.CopyFrom(lease)
    out.spec.holder_identity = name
    out.spec.lease_duration_seconds = duration
    set_time(out.spec.renew_time, now)
    return out

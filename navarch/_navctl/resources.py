"""What pods ask of a node, as ``describe node`` shows it: ``100m (5%)``.

A pod's request of a resource is the larger of the sum over its containers and the
largest of its init containers (they run one at a time, before the others), as the
scheduler counts it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from navarch._navctl.values import Obj, items
from navarch._quantity import Quantity, QuantityError, parse_quantity

__all__ = ["allocated", "pod_amounts", "share"]

ZERO = Quantity.from_milli(0)


def _quantity(value: Any) -> Quantity:
    try:
        return parse_quantity(value)
    except QuantityError:
        return ZERO


def pod_amounts(pod: Obj, field: str, resource_name: str) -> Quantity:
    """The pod's ``field`` ("requests" or "limits") of ``resource_name`` ("cpu")."""
    def of(container: Obj) -> Quantity:
        value = (container.get("resources") or {}).get(field, {}).get(resource_name)
        return ZERO if value is None else _quantity(value)
    total = sum((of(c) for c in items(pod, "spec.containers")), ZERO)
    for init in items(pod, "spec.initContainers"):
        total = max(total, of(init))
    return total


def share(amount: Quantity, allocatable: Mapping[str, Any] | None, resource_name: str) -> str:
    """``750m (37%)``: the amount and its share of the node's allocatable."""
    whole = _quantity((allocatable or {}).get(resource_name, 0))
    percent = 0 if whole.is_zero() else int(amount.milli_value() / whole.milli_value() * 100)
    return f"{amount} ({percent}%)"


def allocated(pods: Sequence[Obj], allocatable: Mapping[str, Any] | None
              ) -> list[tuple[str, str, str]]:
    """(resource, requests, limits) summed over ``pods`` for cpu, memory and
    ephemeral-storage."""
    rows = []
    for name in ("cpu", "memory", "ephemeral-storage"):
        requests = sum((pod_amounts(p, "requests", name) for p in pods), ZERO)
        limits = sum((pod_amounts(p, "limits", name) for p in pods), ZERO)
        rows.append((name, share(requests, allocatable, name), share(limits, allocatable, name)))
    return rows

"""ClusterRole aggregation: a ClusterRole with an aggregationRule gets, as its rules, the
rules of every ClusterRole its selectors match (kube-controller-manager's
clusterrole-aggregation controller).

Flow::

    clusterroles informer ──any add/update/delete──▶ enqueue every aggregated ClusterRole
    reconcile(role): aggregated_rules(role, all ClusterRoles)  (pure)
                     ──differs from role.rules──▶ update the role with them

Contracts:
- The rules are the union, without duplicates, in a stable order: selector by selector,
  the matched roles sorted by name (the role itself excluded), each rule appended unless
  an equal one is already there; so every replica computes the same list and a role
  whose sources did not change is never written.
- Rules set by hand on an aggregated role are replaced (the API documents this).
- Chains converge: ``admin`` aggregates ``edit``, itself aggregated; when ``edit``
  changes, its update re-queues ``admin``.
"""

from __future__ import annotations

from collections.abc import Iterable

from navarch import _labels
from navarch.v1 import rbac_pb2

from .framework import Controller, clone

__all__ = ["ClusterRoleAggregationController", "aggregated_rules"]


def aggregated_rules(role: rbac_pb2.ClusterRole,
                     roles: Iterable[rbac_pb2.ClusterRole]) -> list[rbac_pb2.PolicyRule]:
    """The rules ``role``'s aggregationRule gives it out of ``roles`` (all ClusterRoles).
    Raises ``navarch._labels.SelectorError`` for an invalid selector (validation keeps
    them out)."""
    candidates = sorted(roles, key=lambda r: r.metadata.name)
    rules: list[rbac_pb2.PolicyRule] = []
    for selector in role.aggregation_rule.cluster_role_selectors:
        expr = _labels.label_selector(selector)
        for other in candidates:
            if other.metadata.name == role.metadata.name:
                continue
            if not expr.matches(other.metadata.labels):
                continue
            for rule in other.rules:
                if rule not in rules:
                    rules.append(rule)
    return rules


class ClusterRoleAggregationController(Controller):
    """Keeps the rules of aggregated ClusterRoles the union of the roles they select."""

    name = "clusterrole-aggregation"

    async def setup(self) -> None:
        self.roles = self.ctx.informers.informer("clusterroles")
        await self.roles.add_handlers(lambda _r: self._enqueue_aggregated(),
                                      lambda _o, _n: self._enqueue_aggregated(),
                                      lambda _r: self._enqueue_aggregated())

    def _enqueue_aggregated(self) -> None:
        """Any change may matter to any aggregated role (the selectors decide); there are
        few ClusterRoles, so queue every aggregated one, as Kubernetes does."""
        for role in self.roles.list():
            if role.HasField("aggregation_rule"):
                self.enqueue(role)

    async def reconcile(self, key: str) -> None:
        role = self.roles.get(key)
        if role is None or not role.HasField("aggregation_rule"):
            return
        rules = aggregated_rules(role, self.roles.list())
        if list(role.rules) == rules:
            return
        new = clone(role)
        del new.rules[:]
        new.rules.extend(rules)
        # pinned to the cached version: a Conflict is retried on a fresher cache
        await self.client.resource("clusterroles", "").update(new)

"""ClusterRole aggregation: the union of the selected roles' rules (a table over the pure
function), and the controller over a fake API (what it writes, and that chains and
changes propagate)."""

from __future__ import annotations

import pytest

from navarch._labels import SelectorError
from navarch.v1 import rbac_pb2
from services.controllers.clusterroleaggregation import (
    ClusterRoleAggregationController,
    aggregated_rules,
)
from tests.unit.workload_harness import Harness

AGG = "rbac.example.com/aggregate-to-"


def rule(verbs: str, resources: str, group: str = "") -> rbac_pb2.PolicyRule:
    return rbac_pb2.PolicyRule(verbs=verbs.split(","), api_groups=[group],
                               resources=resources.split(","))


def role(name: str, rules: list[rbac_pb2.PolicyRule] = (),  # type: ignore[assignment]
         labels: dict[str, str] | None = None,
         selectors: list[dict[str, str]] | None = None) -> rbac_pb2.ClusterRole:
    r = rbac_pb2.ClusterRole(api_version="rbac.authorization.k8s.io/v1", kind="ClusterRole",
                             rules=rules)
    r.metadata.name = name
    r.metadata.labels.update(labels or {})
    if selectors is not None:
        r.aggregation_rule.SetInParent()
        for match in selectors:
            r.aggregation_rule.cluster_role_selectors.add().match_labels.update(match)
    return r


READ_PODS = rule("get,list,watch", "pods")
READ_SVC = rule("get,list,watch", "services")
EDIT_PODS = rule("create,update,delete", "pods")
SCALE = rule("update", "deployments/scale", "apps")
TO_VIEW = {AGG + "view": "true"}
TO_EDIT = {AGG + "edit": "true"}


@pytest.mark.parametrize(("selectors", "others", "expected"), [
    ([TO_VIEW], [], []),
    ([TO_VIEW], [role("b", [READ_SVC], TO_VIEW), role("a", [READ_PODS], TO_VIEW)],
     [READ_PODS, READ_SVC]),  # by name, not by list order
    ([TO_VIEW], [role("a", [READ_PODS], TO_VIEW), role("b", [READ_PODS, READ_SVC], TO_VIEW)],
     [READ_PODS, READ_SVC]),  # duplicates dropped
    ([TO_VIEW], [role("a", [READ_PODS, READ_PODS], TO_VIEW)], [READ_PODS]),
    ([TO_VIEW], [role("a", [READ_PODS], TO_EDIT), role("b", [READ_SVC])], []),  # unselected
    ([TO_EDIT, TO_VIEW], [role("a", [READ_PODS], TO_VIEW), role("z", [EDIT_PODS], TO_EDIT)],
     [EDIT_PODS, READ_PODS]),  # selector by selector
    ([TO_EDIT, TO_VIEW], [role("a", [READ_PODS, SCALE], {**TO_VIEW, **TO_EDIT})],
     [READ_PODS, SCALE]),  # matched twice, counted once
    ([{}], [role("a", [READ_PODS]), role("b", [SCALE], TO_VIEW)],
     [READ_PODS, SCALE]),  # an empty selector selects every role
    ([TO_VIEW], [role("a", [READ_PODS], TO_VIEW)], [READ_PODS]),  # never itself
], ids=["nothing-selected", "sorted-by-name", "deduplicated", "duplicate-in-one-role",
        "unselected", "selector-order", "two-selectors-one-role", "empty-selector",
        "not-itself"])
def test_aggregated_rules(selectors: list[dict[str, str]], others: list[rbac_pb2.ClusterRole],
                          expected: list[rbac_pb2.PolicyRule]) -> None:
    me = role("self", [EDIT_PODS], TO_VIEW, selectors=selectors)  # matches TO_VIEW itself
    assert aggregated_rules(me, [me, *others]) == expected


def test_invalid_selector_raises() -> None:
    me = role("self", selectors=[])
    me.aggregation_rule.cluster_role_selectors.add().match_expressions.add(
        key="a", operator="In")
    with pytest.raises(SelectorError):
        aggregated_rules(me, [role("a", [READ_PODS])])


@pytest.mark.asyncio
async def test_controller_aggregates_chains_and_follows_changes() -> None:
    h = Harness(ClusterRoleAggregationController, [
        role("admin", selectors=[{AGG + "admin": "true"}]),
        role("edit", [READ_SVC], {AGG + "admin": "true"}, selectors=[TO_EDIT]),
        role("view", labels=TO_EDIT, selectors=[TO_VIEW]),
        role("pods-view", [READ_PODS], TO_VIEW),
        role("pods-edit", [EDIT_PODS], TO_EDIT),
        role("plain", [SCALE]),
    ])
    await h.start()
    try:
        stored = {r.metadata.name: r for r in h.client.stored("clusterroles")}
        assert list(stored["view"].rules) == [READ_PODS]
        assert list(stored["edit"].rules) == [EDIT_PODS, READ_PODS]  # by-hand rule replaced
        assert list(stored["admin"].rules) == [EDIT_PODS, READ_PODS]  # through edit
        assert list(stored["plain"].rules) == [SCALE]
        # admin may be written more than once while edit converges under it
        assert set(h.client.writes()) == {("update", "clusterroles", n)
                                          for n in ("admin", "edit", "view")}

        h.client.actions.clear()
        await h.step()
        assert h.client.writes() == []  # converged: nothing more to write

        # a new source role flows up the chain; removing one takes its rules away
        await h.client.resource("clusterroles", "").create(
            role("scale", [SCALE], TO_VIEW))
        await h.step()
        stored = {r.metadata.name: r for r in h.client.stored("clusterroles")}
        assert list(stored["view"].rules) == [READ_PODS, SCALE]
        assert list(stored["admin"].rules) == [EDIT_PODS, READ_PODS, SCALE]
        await h.client.resource("clusterroles", "").delete("pods-view")
        await h.step()
        stored = {r.metadata.name: r for r in h.client.stored("clusterroles")}
        assert list(stored["view"].rules) == [SCALE]
        assert list(stored["admin"].rules) == [EDIT_PODS, SCALE]
    finally:
        await h.stop()

"""The clusterrole-aggregation controller as a process (``navarch controllers``) over the
real API server: an aggregated ClusterRole gets the rules of the roles it selects, in
name order, through a chain of aggregated roles, and follows roles being added, changed
and deleted. Labels carry a per-test suffix, since ClusterRoles are cluster-wide."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

import navarch
from tests.api.util import eventually, obj
from tests.control.conftest import Daemons

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def tag(client: navarch.Client) -> AsyncIterator[str]:
    """A suffix for this test's role names and labels; its roles are deleted after."""
    suffix = uuid.uuid4().hex[:8]
    yield suffix
    roles = client.resource("clusterroles", "")
    for role in (await roles.list()).items:
        if role.metadata.name.endswith(suffix):
            await roles.delete(role.metadata.name)


def role(name: str, rules: list[dict[str, Any]] = (),  # type: ignore[assignment]
         labels: dict[str, str] | None = None, aggregates: str = "") -> Any:
    doc: dict[str, Any] = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                           "metadata": {"name": name, "labels": labels or {}},
                           "rules": list(rules)}
    if aggregates:
        doc["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {aggregates:
                                                                           "true"}}]}
    return obj(doc)


def read(*resources: str) -> dict[str, Any]:
    return {"apiGroups": [""], "resources": list(resources), "verbs": ["get", "list"]}


async def test_aggregated_roles_follow_their_sources(daemons: Daemons,
                                                     client: navarch.Client,
                                                     tag: str) -> None:
    to_top, to_mid = f"example.com/top-{tag}", f"example.com/mid-{tag}"
    roles = client.resource("clusterroles", "")
    await roles.create(role(f"top-{tag}", aggregates=to_top))
    await roles.create(role(f"mid-{tag}", [read("secrets")], {to_top: "true"},
                            aggregates=to_mid))
    await roles.create(role(f"b-{tag}", [read("services")], {to_mid: "true"}))
    await roles.create(role(f"a-{tag}", [read("pods"), read("services")], {to_mid: "true"}))
    await roles.create(role(f"other-{tag}", [read("nodes")]))
    daemons.start("controllers", "--controllers", "clusterrole-aggregation",
                  "--lease-name", f"cra-{tag}")

    def resources_of(r: Any) -> list[list[str]]:
        return [list(rule.resources) for rule in r.rules]

    async def rules(name: str, want: list[list[str]]) -> bool:
        return resources_of(await roles.get(f"{name}-{tag}")) == want

    # the by-hand rule of mid is replaced; a's rules first (by name); duplicates once
    await eventually(lambda: rules("mid", [["pods"], ["services"]]), 20, "mid aggregated")
    await eventually(lambda: rules("top", [["pods"], ["services"]]), 20, "top aggregated")
    assert resources_of(await roles.get(f"other-{tag}")) == [["nodes"]]

    # a role labelled later is picked up, all the way up the chain
    await roles.create(role(f"c-{tag}", [read("configmaps")], {to_mid: "true"}))
    await eventually(lambda: rules("top", [["pods"], ["services"], ["configmaps"]]), 20,
                     "a new source to reach the top")

    # a changed source, and a deleted one
    c = await roles.get(f"c-{tag}")
    c.rules[0].verbs.append("watch")
    await roles.update(c)
    await roles.delete(f"a-{tag}")

    async def top_settled() -> bool:
        top = await roles.get(f"top-{tag}")
        return [(list(r.resources), list(r.verbs)) for r in top.rules] == [
            (["services"], ["get", "list"]), (["configmaps"], ["get", "list", "watch"])]
    await eventually(top_settled, 20, "the change and the deletion to reach the top")

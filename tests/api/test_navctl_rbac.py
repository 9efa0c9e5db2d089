"""navctl and RBAC objects end to end, against a real API server: ``create role|
clusterrole|rolebinding|clusterrolebinding`` (read back with the SDK), ``get`` and
``describe`` of each, and ``auth can-i`` against the default authorizer, which allows
everything (the RBAC mode is opt-in; its end-to-end tests are the API server's).

Cluster-scoped objects get unique names and are deleted on the way out, since the API
server is shared by the module.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest_asyncio
import yaml

import navarch
from tests.api.harness import ApiServerProcess
from tests.api.test_navctl import navctl

RBAC = "rbac.authorization.k8s.io"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def cells(line: str) -> list[str]:
    """The cells of a table line (cells are at least 3 spaces apart)."""
    return re.split(r"\s{3,}", line.strip())


@pytest_asyncio.fixture
async def unique(client: navarch.Client) -> AsyncIterator[str]:
    """A name prefix of this test's own; the cluster-scoped RBAC objects named with it
    are deleted afterwards."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    yield prefix
    for kinds in (client.clusterrolebindings(), client.clusterroles()):
        for item in (await kinds.list()).items:
            if item.metadata.name.startswith(prefix):
                await kinds.delete(item.metadata.name)


async def test_create_get_and_describe_a_role(apiserver: ApiServerProcess,
                                              client: navarch.Client, ns: str) -> None:
    made = await navctl(apiserver, "-n", ns, "create", "role", "pod-reader",
                        "--verb=get,list", "--verb=watch", "--resource=pods,deploy",
                        "--resource=pods/log")
    assert (made.code, made.out, made.err) == (
        0, f"role.{RBAC}/pod-reader created\n", "")
    role = await client.roles(ns).get("pod-reader")
    assert [(list(r.api_groups), list(r.resources), list(r.verbs)) for r in role.rules] == [
        ([""], ["pods", "pods/log"], ["get", "list", "watch"]),
        (["apps"], ["deployments"], ["get", "list", "watch"])]

    again = await navctl(apiserver, "-n", ns, "create", "role", "pod-reader", "--verb=get",
                         "--resource=pods")
    assert (again.code, again.out, again.err) == (
        1, "", f'Error from server (AlreadyExists): roles.{RBAC} "pod-reader" already '
               "exists\n")
    unknown = await navctl(apiserver, "-n", ns, "create", "role", "r", "--verb=get",
                           "--resource=widgets")
    assert (unknown.code, unknown.out, unknown.err) == (
        1, "", 'error: the server doesn\'t have a resource type "widgets"\n')
    odd = await navctl(apiserver, "-n", ns, "create", "role", "odd", "--verb=frob",
                       "--resource=pods", "--resource-name=web", "--dry-run=server",
                       "-o", "name")
    assert (odd.code, odd.out, odd.err) == (
        0, f"role.{RBAC}/odd\n", "Warning: 'frob' is not a standard resource verb\n")

    table = await navctl(apiserver, "-n", ns, "get", "roles")
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert cells(lines[0]) == ["NAME", "CREATED AT"]
    assert [cells(line)[0] for line in lines[1:]] == ["pod-reader"]
    created = cells(lines[1])[1]
    assert RFC3339.match(created)
    assert abs((datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                - datetime.now(UTC)).total_seconds()) < 300

    described = await navctl(apiserver, "-n", ns, "describe", "role", "pod-reader")
    assert (described.code, described.err) == (0, "")
    assert described.out.splitlines() == [
        "Name:         pod-reader",
        "Labels:       <none>",
        "Annotations:  <none>",
        "PolicyRule:",
        "  Resources         Non-Resource URLs  Resource Names  Verbs",
        "  ---------         -----------------  --------------  -----",
        "  pods/log          []                 []              [get list watch]",
        "  pods              []                 []              [get list watch]",
        "  deployments.apps  []                 []              [get list watch]",
    ]


async def test_create_get_and_describe_a_clusterrole(apiserver: ApiServerProcess,
                                                     client: navarch.Client,
                                                     unique: str) -> None:
    name = f"{unique}-health"
    made = await navctl(apiserver, "create", "clusterrole", name, "--verb=get",
                        "--non-resource-url=/healthz,/logs/*")
    assert (made.code, made.out, made.err) == (0, f"clusterrole.{RBAC}/{name} created\n", "")
    stored = await client.clusterroles().get(name)
    assert (stored.metadata.namespace, [list(r.non_resource_urls) for r in stored.rules]) == (
        "", [["/healthz", "/logs/*"]])

    preview = await navctl(apiserver, "-n", "elsewhere", "create", "clusterrole", "agg",
                           "--aggregation-rule=rbac.example.com/aggregate-to-view=true",
                           "--dry-run=client", "-o", "yaml")
    assert preview.code == 0, preview.err
    doc = yaml.safe_load(preview.out)
    assert (doc["kind"], doc["metadata"], doc["aggregationRule"]) == (
        "ClusterRole", {"name": "agg"},
        {"clusterRoleSelectors": [{"matchLabels": {
            "rbac.example.com/aggregate-to-view": "true"}}]})
    refused = await navctl(apiserver, "create", "clusterrole", "bad", "--verb=list",
                           "--non-resource-url=/healthz")
    assert (refused.code, refused.err) == (1, "error: invalid verb: 'list' for "
                                              "nonResourceURL\n")

    table = await navctl(apiserver, "get", "clusterrole", name)
    assert table.code == 0, table.err
    assert [cells(line)[0] for line in table.out.splitlines()] == ["NAME", name]
    described = await navctl(apiserver, "describe", f"clusterroles/{name}")
    assert described.out.splitlines()[3:] == [
        "PolicyRule:",
        "  Resources  Non-Resource URLs  Resource Names  Verbs",
        "  ---------  -----------------  --------------  -----",
        "             [/healthz]         []              [get]",
        "             [/logs/*]          []              [get]",
    ]


async def test_create_get_and_describe_bindings(apiserver: ApiServerProcess,
                                                client: navarch.Client, ns: str,
                                                unique: str) -> None:
    made = await navctl(apiserver, "-n", ns, "create", "rolebinding", "admin",
                        "--clusterrole=admin", "--user=user1", "--user=user2",
                        "--group=group1", "--serviceaccount=monitoring:sa-dev")
    assert (made.code, made.out, made.err) == (
        0, f"rolebinding.{RBAC}/admin created\n", "")
    binding = await client.rolebindings(ns).get("admin")
    assert (binding.role_ref.api_group, binding.role_ref.kind, binding.role_ref.name) == (
        RBAC, "ClusterRole", "admin")
    assert [(s.kind, s.api_group, s.name, s.namespace) for s in binding.subjects] == [
        ("User", RBAC, "user1", ""), ("User", RBAC, "user2", ""),
        ("Group", RBAC, "group1", ""), ("ServiceAccount", "", "sa-dev", "monitoring")]
    again = await navctl(apiserver, "-n", ns, "create", "rolebinding", "admin",
                         "--role=admin", "--user=user1")
    assert (again.code, again.out, again.err) == (
        1, "", f'error: failed to create rolebinding: rolebindings.{RBAC} "admin" already '
               "exists\n")
    neither = await navctl(apiserver, "-n", ns, "create", "rolebinding", "x", "--user=a")
    assert (neither.code, neither.err) == (
        1, "error: exactly one of clusterrole or role must be specified\n")

    wide = await navctl(apiserver, "-n", ns, "get", "rolebindings", "-o", "wide")
    assert wide.code == 0, wide.err
    lines = wide.out.splitlines()
    assert cells(lines[0]) == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    row = cells(lines[1])
    assert row[:2] == ["admin", "ClusterRole/admin"] and row[3:] == [
        "user1, user2", "group1", "monitoring/sa-dev"]
    described = await navctl(apiserver, "-n", ns, "describe", "rolebinding", "admin")
    assert described.out.splitlines() == [
        "Name:         admin",
        "Labels:       <none>",
        "Annotations:  <none>",
        "Role:",
        "  Kind:  ClusterRole",
        "  Name:  admin",
        "Subjects:",
        "  Kind            Name    Namespace",
        "  ----            ----    ---------",
        "  User            user1   ",
        "  User            user2   ",
        "  Group           group1  ",
        "  ServiceAccount  sa-dev  monitoring",
    ]

    name = f"{unique}-root"
    made = await navctl(apiserver, "create", "clusterrolebinding", name,
                        "--clusterrole=cluster-admin", "--group=system:masters")
    assert (made.code, made.out, made.err) == (
        0, f"clusterrolebinding.{RBAC}/{name} created\n", "")
    stored = await client.clusterrolebindings().get(name)
    assert (stored.metadata.namespace, stored.role_ref.name, stored.subjects[0].name) == (
        "", "cluster-admin", "system:masters")
    missing = await navctl(apiserver, "create", "clusterrolebinding", "x", "--user=a")
    assert (missing.code, missing.err) == (1, 'error: required flag(s) "clusterrole" not '
                                              "set\n")
    table = await navctl(apiserver, "get", "clusterrolebinding", name)
    assert [cells(line)[:2] for line in table.out.splitlines()] == [
        ["NAME", "ROLE"], [name, "ClusterRole/cluster-admin"]]
    described = await navctl(apiserver, "describe", "clusterrolebinding", name)
    assert described.out.splitlines()[3:] == [
        "Role:", "  Kind:  ClusterRole", "  Name:  cluster-admin", "Subjects:",
        "  Kind   Name            Namespace", "  ----   ----            ---------",
        "  Group  system:masters  "]


async def test_can_i_against_the_default_authorizer(apiserver: ApiServerProcess,
                                                    ns: str) -> None:
    """The default authorizer allows everything: yes, whoever asks."""
    assert await navctl(apiserver, "auth", "can-i", "create", "pods") == (
        await navctl(apiserver, "-n", ns, "auth", "can-i", "delete", "deployments.apps/web"))
    yes = await navctl(apiserver, "auth", "can-i", "create", "pods")
    assert (yes.code, yes.out, yes.err) == (0, "yes\n", "")
    nodes = await navctl(apiserver, "--token", "anything", "auth", "can-i", "list", "nodes")
    assert (nodes.code, nodes.out, nodes.err) == (
        0, "yes\n", "Warning: resource 'nodes' is not namespace scoped\n\n")
    quiet = await navctl(apiserver, "auth", "can-i", "*", "*", "-A", "-q")
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
    url = await navctl(apiserver, "auth", "can-i", "get", "/healthz")
    assert (url.code, url.out) == (0, "yes\n")

"""RBAC and token authentication against a real API server (``--authorization-mode=RBAC
--token-auth-file``), on both stores: who may do what, in Kubernetes' words; access
reviews; the escalation check on role and binding writes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

import navarch
from navarch.v1 import rbac_pb2
from tests.api.harness import ApiServerProcess
from tests.api.util import eventually, obj, pod
from tests.store.cluster import StoreCluster

RBAC = "rbac.authorization.k8s.io"
TOKENS = {"admin": 't-admin,admin,uid-a,"system:masters"',
          "alice": 't-alice,alice,uid-1,"dev"',
          "bob": "t-bob,bob,uid-2"}


@pytest.fixture(scope="module")
def secured(store: StoreCluster, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[ApiServerProcess]:
    """An API server with RBAC and a token file."""
    work = tmp_path_factory.mktemp("rbac")
    tokens = work / "tokens.csv"
    tokens.write_text("\n".join(TOKENS.values()) + "\n")
    proc = ApiServerProcess(store.endpoints, work, [
        "--authorization-mode", "RBAC", "--token-auth-file", str(tokens)])
    try:
        proc.start()
    except BaseException:
        print(proc.log_tail())
        proc.stop()
        raise
    yield proc
    proc.stop()


def client_of(server: ApiServerProcess, user: str | None) -> navarch.Client:
    metadata = [("authorization", f"Bearer t-{user}")] if user else []
    return navarch.Client(server.address, timeout=20.0, metadata=metadata)


@pytest_asyncio.fixture
async def admin(secured: ApiServerProcess) -> AsyncIterator[navarch.Client]:
    c = client_of(secured, "admin")
    try:
        yield c
    finally:
        await c.close()


@pytest_asyncio.fixture
async def alice(secured: ApiServerProcess) -> AsyncIterator[navarch.Client]:
    c = client_of(secured, "alice")
    try:
        yield c
    finally:
        await c.close()


@pytest_asyncio.fixture
async def team(admin: navarch.Client) -> AsyncIterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    ns = navarch.v1.core_pb2.Namespace()
    ns.metadata.name = name
    await admin.namespaces().create(ns)
    yield name


def role(name: str, ns: str, *rules: dict[str, Any]) -> Any:
    return obj({"apiVersion": f"{RBAC}/v1", "kind": "Role",
                "metadata": {"name": name, "namespace": ns}, "rules": list(rules)})


def binding(binding_name: str, ns: str, ref_kind: str, role_name: str, **subject: str) -> Any:
    return obj({"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
                "metadata": {"name": binding_name, "namespace": ns},
                "subjects": [{"apiGroup": RBAC, **subject}],
                "roleRef": {"apiGroup": RBAC, "kind": ref_kind, "name": role_name}})


async def allowed(call: Any) -> bool:
    try:
        await call()
    except navarch.Forbidden:
        return False
    return True


async def test_anonymous_and_unknown_tokens(secured: ApiServerProcess) -> None:
    anonymous = client_of(secured, None)
    stranger = navarch.Client(secured.address, timeout=20.0,
                              metadata=[("authorization", "Bearer not-a-token")])
    try:
        with pytest.raises(navarch.Forbidden) as err:
            await anonymous.pods("default").list()
        assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert err.value.message == (
            'pods is forbidden: User "system:anonymous" cannot list resource "pods" in API '
            'group "" in the namespace "default"')
        assert (await anonymous.version()).version  # system:public-info-viewer
        with pytest.raises(navarch.Forbidden, match='cannot get path "/apis"'):
            await anonymous.api_resources()  # discovery is for authenticated users
        with pytest.raises(navarch.Unauthorized):
            await stranger.pods("default").list()
    finally:
        await anonymous.close()
        await stranger.close()


async def test_a_role_bound_in_a_namespace_grants_there_only(
        admin: navarch.Client, alice: navarch.Client, team: str) -> None:
    assert await admin.api_resources()  # system:masters: everything
    await admin.pods(team).create(pod("web", team))
    with pytest.raises(navarch.Forbidden, match=f'in the namespace "{team}"'):
        await alice.pods(team).list()
    await admin.resource("roles", team).create(role("pod-reader", team, {
        "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}))
    await admin.resource("rolebindings", team).create(
        binding("read-pods", team, "Role", "pod-reader", kind="User", name="alice"))
    listed = await eventually(lambda: allowed(lambda: alice.pods(team).list()), 10,
                              "the binding to take effect")
    assert listed
    assert (await alice.pods(team).get("web")).metadata.name == "web"
    with pytest.raises(navarch.Forbidden, match='pods "web" is forbidden: User "alice" '
                       'cannot delete resource "pods"'):
        await alice.pods(team).delete("web")
    with pytest.raises(navarch.Forbidden):
        await alice.pods("default").list()
    with pytest.raises(navarch.Forbidden, match="at the cluster scope"):
        await alice.pods("").list()  # all namespaces needs a cluster-wide grant

    # a group subject, and a ClusterRole bound in the namespace
    await admin.resource("clusterroles", "").create(obj({
        "apiVersion": f"{RBAC}/v1", "kind": "ClusterRole",
        "metadata": {"name": f"cm-reader-{team}"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]}))
    await admin.resource("rolebindings", team).create(
        binding("dev-cm", team, "ClusterRole", f"cm-reader-{team}", kind="Group", name="dev"))
    assert await eventually(lambda: allowed(lambda: alice.configmaps(team).list()), 10,
                            "the group binding to take effect")
    with pytest.raises(navarch.Forbidden):
        await alice.configmaps("default").list()


async def access(client: navarch.Client, verb: str, resource: str, ns: str) -> Any:
    review = rbac_pb2.SelfSubjectAccessReview(api_version="authorization.k8s.io/v1",
                                              kind="SelfSubjectAccessReview")
    ra = review.spec.resource_attributes
    ra.verb, ra.resource, ra.namespace = verb, resource, ns
    req = navarch.v1.api_pb2.CreateRequest(resource="selfsubjectaccessreviews")
    req.object.Pack(review)
    answer = rbac_pb2.SelfSubjectAccessReview()
    (await client.call("Create", req)).object.Unpack(answer)
    return answer


async def test_access_reviews_answer_for_the_caller(admin: navarch.Client,
                                                    alice: navarch.Client, team: str) -> None:
    await admin.resource("roles", team).create(role("svc-reader", team, {
        "apiGroups": [""], "resources": ["services"], "verbs": ["list"]}))
    await admin.resource("rolebindings", team).create(
        binding("svc", team, "Role", "svc-reader", kind="User", name="alice"))

    async def can_list() -> bool:
        return bool((await access(alice, "list", "services", team)).status.allowed)
    assert await eventually(can_list, 10, "the review to allow")
    assert not (await access(alice, "delete", "services", team)).status.allowed
    assert (await access(admin, "delete", "nodes", "")).status.allowed
    with pytest.raises(navarch.Invalid, match="exactly one of nonResourceAttributes or "
                       "resourceAttributes"):
        req = navarch.v1.api_pb2.CreateRequest(resource="selfsubjectaccessreviews")
        req.object.Pack(rbac_pb2.SelfSubjectAccessReview())
        await alice.call("Create", req)
    with pytest.raises(navarch.ApiError, match="does not allow this method") as err:
        await admin.call("List", navarch.v1.api_pb2.ListRequest(
            resource="selfsubjectaccessreviews"))
    assert err.value.code == grpc.StatusCode.UNIMPLEMENTED


async def test_roles_and_bindings_grant_no_more_than_their_writer_holds(
        admin: navarch.Client, alice: navarch.Client, team: str) -> None:
    await admin.resource("roles", team).create(role("rbac-writer", team, {
        "apiGroups": [RBAC], "resources": ["roles", "rolebindings"],
        "verbs": ["create", "get", "list"]}, {
        "apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}))
    await admin.resource("rolebindings", team).create(
        binding("writer", team, "Role", "rbac-writer", kind="User", name="alice"))
    await eventually(lambda: allowed(lambda: alice.resource("roles", team).list()), 10,
                     "alice's rights to take effect")

    # a role with what she holds: fine; with more: refused, the rule named
    await alice.resource("roles", team).create(role("get-pods", team, {
        "apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}))
    with pytest.raises(navarch.Forbidden) as err:
        await alice.resource("roles", team).create(role("secrets", team, {
            "apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}))
    assert err.value.message == (
        f'roles.{RBAC} "secrets" is forbidden: user "alice" (groups=["dev" '
        '"system:authenticated"]) is attempting to grant RBAC permissions not currently '
        'held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}')
    with pytest.raises(navarch.NotFound):
        await admin.resource("roles", team).get("secrets")

    # binding bob to a role she holds: fine; to cluster-admin: refused
    await alice.resource("rolebindings", team).create(
        binding("bob-pods", team, "Role", "get-pods", kind="User", name="bob"))
    with pytest.raises(navarch.Forbidden, match="not currently held"):
        await alice.resource("rolebindings", team).create(
            binding("bob-admin", team, "ClusterRole", "cluster-admin", kind="User",
                    name="bob"))
    with pytest.raises(navarch.NotFound):
        await admin.resource("rolebindings", team).get("bob-admin")
    # system:masters may grant anything
    await admin.resource("rolebindings", team).create(
        binding("bob-admin", team, "ClusterRole", "cluster-admin", kind="User", name="bob"))


async def test_bootstrap_policy_lets_users_discover(secured: ApiServerProcess,
                                                    admin: navarch.Client) -> None:
    names = {r.metadata.name for r in (await admin.resource("clusterroles", "").list()).items}
    assert {"cluster-admin", "admin", "edit", "view", "system:discovery"} <= names
    bob = client_of(secured, "bob")
    try:
        assert await bob.api_resources()  # system:discovery, bound to system:authenticated
    finally:
        await bob.close()


def test_bad_security_flags_are_refused_with_the_flag(store: StoreCluster,
                                                      tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "short.csv").write_text("t,alice\n")
    for args, words in (
            (["--authorization-mode", "RBAC,Magic"], "--authorization-mode: unknown mode "
                                                     "'Magic'; supported: AlwaysAllow, "
                                                     "AlwaysDeny, RBAC"),
            (["--token-auth-file", str(tmp_path / "short.csv")],
             "must have at least 3 columns"),
            (["--anonymous-auth", "false"], "--anonymous-auth=false needs --token-auth-file")):
        done = subprocess.run([sys.executable, "-m", "navarch", "apiserver",
                               "--store-endpoints", ",".join(store.endpoints), *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2
        assert words in done.stderr

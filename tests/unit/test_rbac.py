"""The RBAC authorizer, the escalation check and token authentication, as pure logic over
in-memory roles and bindings (the API server runs the same code over its watch caches)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from navarch._kinds import storage_kind
from navarch.v1 import rbac_pb2
from services.apiserver.auth import (
    CURRENT_USER,
    Attributes,
    Decision,
    PrivilegedGroup,
    TokenFileAuthenticator,
    TokenFileError,
    Union,
    UserInfo,
    read_token_file,
)
from services.apiserver.errors import ApiError
from services.apiserver.rbac import EscalationCheck, RBACAuthorizer, rule_allows, uncovered


def rule(verbs: str, resources: str = "", groups: str = "", names: str = "",
         urls: str = "") -> rbac_pb2.PolicyRule:
    def split(text: str) -> list[str]:
        return text.split(",") if text else []
    return rbac_pb2.PolicyRule(verbs=split(verbs), resources=split(resources),
                               api_groups=groups.split(",") if resources else [],
                               resource_names=split(names), non_resource_urls=split(urls))


def attrs(verb: str, resource: str, sub: str = "", ns: str = "", name: str = "",
          group: str = "") -> Attributes:
    return Attributes(verb, resource, sub, ns, name, group)


@pytest.mark.parametrize(("r", "request_", "allowed"), [
    (rule("get", "pods"), attrs("get", "pods"), True),
    (rule("get", "pods"), attrs("list", "pods"), False),
    (rule("*", "pods"), attrs("delete", "pods"), True),
    (rule("get", "pods"), attrs("get", "pods", group="apps"), False),
    (rule("get", "deployments", "apps"), attrs("get", "deployments", group="apps"), True),
    (rule("get", "*", "*"), attrs("get", "deployments", group="apps"), True),
    (rule("get", "pods"), attrs("get", "pods", "log"), False),  # a subresource is apart
    (rule("get", "pods/log"), attrs("get", "pods", "log"), True),
    (rule("get", "*/log"), attrs("get", "pods", "log"), True),
    (rule("get", "*/log"), attrs("get", "pods"), False),
    (rule("get", "*"), attrs("get", "pods", "log"), True),
    (rule("get", "pods", names="web"), attrs("get", "pods", name="web"), True),
    (rule("get", "pods", names="web"), attrs("get", "pods", name="db"), False),
    (rule("list", "pods", names="web"), attrs("list", "pods"), False),  # lists carry no name
    (rule("get", urls="/healthz"), Attributes("get", "", path="/healthz"), True),
    (rule("get", urls="/api/*"), Attributes("get", "", path="/api/v1"), True),
    (rule("get", urls="/api/*"), Attributes("get", "", path="/apis"), False),
    (rule("get", urls="*"), Attributes("get", "", path="/version"), True),
    (rule("get", "pods"), Attributes("get", "", path="/version"), False),
])
def test_rule_allows(r: rbac_pb2.PolicyRule, request_: Attributes, allowed: bool) -> None:
    assert rule_allows(r, request_) is allowed


class Source:
    """Roles and bindings in memory."""

    def __init__(self) -> None:
        self.crbs: list[rbac_pb2.ClusterRoleBinding] = []
        self.rbs: list[rbac_pb2.RoleBinding] = []
        self.croles: dict[str, rbac_pb2.ClusterRole] = {}
        self.roles: dict[tuple[str, str], rbac_pb2.Role] = {}

    def cluster_role_bindings(self) -> list[rbac_pb2.ClusterRoleBinding]:
        return self.crbs

    def role_bindings(self, namespace: str) -> list[rbac_pb2.RoleBinding]:
        return [b for b in self.rbs if b.metadata.namespace == namespace]

    def cluster_role(self, name: str) -> rbac_pb2.ClusterRole | None:
        return self.croles.get(name)

    def role(self, namespace: str, name: str) -> rbac_pb2.Role | None:
        return self.roles.get((namespace, name))

    def add_cluster_role(self, name: str, *rules: rbac_pb2.PolicyRule) -> None:
        r = rbac_pb2.ClusterRole(rules=rules)
        r.metadata.name = name
        self.croles[name] = r

    def add_role(self, ns: str, name: str, *rules: rbac_pb2.PolicyRule) -> None:
        r = rbac_pb2.Role(rules=rules)
        r.metadata.name, r.metadata.namespace = name, ns
        self.roles[(ns, name)] = r

    def bind(self, ns: str, kind: str, role: str, *subjects: tuple[str, str, str]) -> None:
        subs = [rbac_pb2.Subject(kind=k, name=n, namespace=sns) for k, n, sns in subjects]
        ref = rbac_pb2.RoleRef(api_group="rbac.authorization.k8s.io", kind=kind, name=role)
        if ns:
            b = rbac_pb2.RoleBinding(subjects=subs, role_ref=ref)
            b.metadata.namespace = ns
            self.rbs.append(b)
        else:
            self.crbs.append(rbac_pb2.ClusterRoleBinding(subjects=subs, role_ref=ref))


ALICE = UserInfo("alice", ("dev", "system:authenticated"))
BOB = UserInfo("bob", ("system:authenticated",))
SA = UserInfo("system:serviceaccount:ci:builder", ("system:serviceaccounts",))


@pytest.fixture
def source() -> Source:
    s = Source()
    s.add_cluster_role("view", rule("get,list,watch", "pods,services"))
    s.add_cluster_role("node-reader", rule("get,list", "nodes"))
    s.add_role("team", "deployer", rule("create,update", "deployments", "apps"))
    s.bind("", "ClusterRole", "node-reader", ("Group", "dev", ""))
    s.bind("team", "ClusterRole", "view", ("User", "alice", ""))       # a ClusterRole, in team
    s.bind("team", "Role", "deployer", ("ServiceAccount", "builder", "ci"))
    s.bind("team", "Role", "missing", ("User", "bob", ""))             # dangling: nothing
    return s


@pytest.mark.parametrize(("user", "request_", "allowed"), [
    (ALICE, attrs("list", "nodes"), True),                   # group, cluster-wide
    (ALICE, attrs("list", "nodes", ns="other"), True),        # a cluster grant holds anywhere
    (ALICE, attrs("get", "pods", ns="team"), True),           # ClusterRole bound in team
    (ALICE, attrs("get", "pods", ns="other"), False),         # ... only there
    (ALICE, attrs("get", "pods"), False),                     # ... not cluster-wide
    (ALICE, attrs("delete", "pods", ns="team"), False),
    (SA, attrs("create", "deployments", ns="team", group="apps"), True),
    (SA, attrs("create", "deployments", ns="ci", group="apps"), False),
    (BOB, attrs("get", "pods", ns="team"), False),
    (BOB, attrs("list", "nodes"), False),
])
def test_bindings_grant_their_roles_where_they_apply(
        source: Source, user: UserInfo, request_: Attributes, allowed: bool) -> None:
    assert RBACAuthorizer(source).authorize(user, request_).allowed is allowed


def test_system_masters_go_first_and_a_union_takes_any_allow(source: Source) -> None:
    chain = Union([PrivilegedGroup(), RBACAuthorizer(source)])
    root = UserInfo("root", ("system:masters",))
    assert chain.authorize(root, attrs("delete", "nodes", name="n1")).allowed
    assert chain.authorize(ALICE, attrs("list", "nodes")).allowed
    assert not chain.authorize(BOB, attrs("list", "nodes")).allowed


@pytest.mark.parametrize(("owned", "wanted", "missing"), [
    ([rule("*", "*", "*")], [rule("get,delete", "pods,secrets")], 0),
    ([rule("get,list", "pods")], [rule("get", "pods")], 0),
    ([rule("get", "pods")], [rule("get,delete", "pods")], 1),
    ([rule("get", "pods")], [rule("*", "pods")], 1),          # "*" is not "get"
    ([rule("get", "pods/*")], [rule("get", "pods/log")], 0),
    ([rule("get", "*/log")], [rule("get", "pods/log")], 0),
    ([rule("get", "pods", names="a,b")], [rule("get", "pods", names="a")], 0),
    ([rule("get", "pods", names="a")], [rule("get", "pods")], 1),
    ([rule("get", urls="/api/*")], [rule("get", urls="/api/v1")], 0),
    ([rule("get", "pods"), rule("list", "pods")], [rule("get,list", "pods")], 0),
])
def test_uncovered_checks_every_single_grant(owned: list[Any], wanted: list[Any],
                                             missing: int) -> None:
    assert len(uncovered(owned, wanted)) == missing


def test_escalation_needs_the_permissions_or_the_special_verb(source: Source) -> None:
    source.add_cluster_role("rbac-writer", rule("create,update", "roles,rolebindings",
                                                "rbac.authorization.k8s.io"))
    source.bind("team", "ClusterRole", "rbac-writer", ("User", "alice", ""))
    authorizer = RBACAuthorizer(source)
    check = EscalationCheck(authorizer, Union([PrivilegedGroup(), authorizer]).authorize)
    role_kind, binding_kind = storage_kind("roles"), storage_kind("rolebindings")

    held = rbac_pb2.Role(rules=[rule("get", "pods")])
    held.metadata.name, held.metadata.namespace = "ok", "team"
    more = rbac_pb2.Role(rules=[rule("get", "pods"), rule("delete", "secrets")])
    more.metadata.name, more.metadata.namespace = "more", "team"
    token = CURRENT_USER.set(ALICE)
    try:
        check(role_kind, held)  # alice holds get pods in team
        with pytest.raises(ApiError) as err:
            check(role_kind, more)
        assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert err.value.message.startswith(
            'roles.rbac.authorization.k8s.io "more" is forbidden: user "alice" (groups=["dev" '
            '"system:authenticated"]) is attempting to grant RBAC permissions not currently '
            'held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["delete"]}')
        binding = rbac_pb2.RoleBinding(role_ref=rbac_pb2.RoleRef(
            api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"))
        binding.metadata.name, binding.metadata.namespace = "b", "team"
        check(binding_kind, binding)  # alice holds view in team
        binding.role_ref.name = "node-reader"
        check(binding_kind, binding)  # ... and node-reader everywhere
        source.add_cluster_role("admin", rule("*", "*", "*"))
        binding.role_ref.name = "admin"
        with pytest.raises(ApiError, match="not currently held"):
            check(binding_kind, binding)
        # the bind verb on that role lifts the check
        source.add_cluster_role("binder", rule("bind", "clusterroles",
                                               "rbac.authorization.k8s.io", names="admin"))
        source.bind("team", "ClusterRole", "binder", ("User", "alice", ""))
        check(binding_kind, binding)
    finally:
        CURRENT_USER.reset(token)
    root = CURRENT_USER.set(UserInfo("root", ("system:masters",)))
    try:
        check(role_kind, more)
    finally:
        CURRENT_USER.reset(root)


def test_token_file_and_bearer_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('t-alice,alice,uid-1,"dev,ops"\n,ghost,uid-0\nt-bob,bob,uid-2\n')
    tokens = read_token_file(path)
    assert set(tokens) == {"t-alice", "t-bob"}  # the empty token is skipped
    auth = TokenFileAuthenticator(tokens)
    assert auth.authenticate([("authorization", "Bearer t-alice")]) == UserInfo(
        "alice", ("dev", "ops", "system:authenticated"), "uid-1")
    assert auth.authenticate([("authorization", "bearer t-bob")]) == UserInfo(
        "bob", ("system:authenticated",), "uid-2")
    assert auth.authenticate([("authorization", "Bearer nope")]) is None
    assert auth.authenticate([("authorization", "Basic dTpw")]) is None
    assert auth.authenticate([]) == UserInfo("system:anonymous", ("system:unauthenticated",))
    assert TokenFileAuthenticator(tokens, anonymous=False).authenticate([]) is None
    (tmp_path / "short.csv").write_text("t,alice\n")
    with pytest.raises(TokenFileError, match="must have at least 3 columns"):
        read_token_file(tmp_path / "short.csv")
    with pytest.raises(TokenFileError, match="No such file"):
        read_token_file(tmp_path / "absent.csv")


def test_decisions_carry_no_reason_by_default() -> None:
    assert Decision(True) == Decision(True, "")

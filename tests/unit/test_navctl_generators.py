"""Objects navctl makes from flags (navarch/_navctl/generators.py and roles.py), pure,
and how the command line reaches them (``--`` and the create subcommands, ``create pdb``
and the RBAC ones included)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from navarch._navctl import parse_args
from navarch._navctl.errors import NavctlError
from navarch._navctl.generators import (
    configmap_from,
    container_name,
    deployment_from,
    label_selector_from,
    pdb_from,
    pod_from,
    secret_from,
)
from navarch._navctl.roles import (
    aggregation_labels,
    binding_from,
    clusterrole_from,
    comma_list,
    role_from,
)


@pytest.mark.parametrize(("image", "name"), [
    ("nginx", "nginx"), ("nginx:1.25", "nginx"),
    ("registry.k8s.io/e2e-test-images/agnhost:2.39", "agnhost"),
    ("localhost:5000/team/My_App@sha256:abc", "my-app"),
])
def test_container_names_come_from_the_image(image: str, name: str) -> None:
    assert container_name(image) == name


def test_run_makes_one_labelled_pod() -> None:
    pod = pod_from("web", "busybox", args=["sleep", "60"], command=False, env=["A=1"],
                   port=8080, labels="", restart="Never", pull_policy="")
    assert pod["metadata"]["labels"] == {"run": "web"}
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["containers"] == [{"name": "web", "image": "busybox",
                                          "args": ["sleep", "60"],
                                          "env": [{"name": "A", "value": "1"}],
                                          "ports": [{"containerPort": 8080}]}]
    as_command = pod_from("web", "busybox", args=["sh"], command=True, env=[], port=None,
                          labels="app=x,tier=y", restart="Always", pull_policy="Never")
    assert as_command["metadata"]["labels"] == {"app": "x", "tier": "y"}
    assert as_command["spec"]["containers"][0]["command"] == ["sh"]
    with pytest.raises(NavctlError, match="invalid restart policy"):
        pod_from("web", "busybox", args=[], command=False, env=[], port=None, labels="",
                 restart="Sometimes", pull_policy="")
    with pytest.raises(NavctlError, match="--image is required"):
        pod_from("web", "", args=[], command=False, env=[], port=None, labels="",
                 restart="Always", pull_policy="")


def test_create_deployment_as_the_hello_minikube_tutorial() -> None:
    d = deployment_from("hello-node", ["registry.k8s.io/e2e-test-images/agnhost:2.39"],
                        replicas=1, port=None,
                        command=["/agnhost", "netexec", "--http-port=8080"])
    assert d["spec"]["selector"] == {"matchLabels": {"app": "hello-node"}}
    assert d["spec"]["template"]["metadata"]["labels"] == {"app": "hello-node"}
    assert d["spec"]["template"]["spec"]["containers"] == [{
        "name": "agnhost", "image": "registry.k8s.io/e2e-test-images/agnhost:2.39",
        "command": ["/agnhost", "netexec", "--http-port=8080"]}]
    two = deployment_from("pair", ["web:1", "side:2"], replicas=3, port=80, command=[])
    assert [c["name"] for c in two["spec"]["template"]["spec"]["containers"]] == [
        "web", "side"]
    with pytest.raises(NavctlError, match="cannot specify multiple --image options and "
                                          "command"):
        deployment_from("pair", ["web:1", "side:2"], replicas=1, port=None, command=["x"])


def test_configmap_and_secret_sources(tmp_path: Path) -> None:
    (tmp_path / "app.properties").write_text("color=blue\n")
    (tmp_path / "logo.bin").write_bytes(b"\xff\xd8")
    env = tmp_path / "vars.env"
    env.write_text("# comment\nMODE=prod\n\nLEVEL=3\n")
    cm = configmap_from("cfg", ["a=1"], [str(tmp_path / "app.properties"),
                                         f"img={tmp_path / 'logo.bin'}"], [str(env)])
    assert cm["data"] == {"a": "1", "app.properties": "color=blue\n", "MODE": "prod",
                          "LEVEL": "3"}
    assert cm["binaryData"] == {"img": base64.b64encode(b"\xff\xd8").decode()}
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "x").write_text("1")
    (folder / "y").write_text("2")
    assert configmap_from("dir", [], [str(folder)], [])["data"] == {"x": "1", "y": "2"}
    secret = secret_from("s", ["password=pw"], [], [], "")
    assert (secret["type"], secret["data"]) == ("Opaque", {"password": "cHc="})


@pytest.mark.parametrize(("literals", "why"), [
    (["novalue"], "invalid literal source novalue, expected key=value"),
    (["a=1", "a=2"], "cannot add key a, another key by that name already exists"),
    (["bad key=1"], '"bad key" is not a valid key name'),
])
def test_bad_sources_say_why(literals: list[str], why: str) -> None:
    with pytest.raises(NavctlError, match=why):
        configmap_from("cfg", literals, [], [])


def test_command_lines() -> None:
    args = parse_args(["run", "web", "--image=busybox", "-n", "demo", "--", "sleep", "60"])
    assert (args.generate, args.name, args.image, args.after_dashes, args.namespace) == (
        "pod", "web", "busybox", ["sleep", "60"], "demo")
    args = parse_args(["create", "deploy", "web", "--image", "a:1", "--image", "b:2",
                       "--replicas", "3"])
    assert (args.generate, args.image, args.replicas) == ("deployment", ["a:1", "b:2"], 3)
    args = parse_args(["create", "secret", "generic", "s", "--from-literal", "k=v"])
    assert (args.generate, args.from_literal) == ("secret", ["k=v"])
    args = parse_args(["create", "cm", "c", "--from-literal=k=v", "--dry-run", "-o", "yaml"])
    assert (args.generate, args.dry_run, args.output) == ("configmap", "client", "yaml")


# --- create poddisruptionbudget ---------------------------------------------------------------

def test_create_pdb_as_kubectls_examples() -> None:
    assert pdb_from("my-pdb", "app=rails", min_available="1", max_unavailable="") == {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "my-pdb"},
        "spec": {"selector": {"matchLabels": {"app": "rails"}}, "minAvailable": 1}}
    half = pdb_from("my-pdb", "app=nginx", min_available="", max_unavailable="50%")
    assert half["spec"] == {"selector": {"matchLabels": {"app": "nginx"}},
                            "maxUnavailable": "50%"}


@pytest.mark.parametrize(("selector", "minimum", "maximum", "why"), [
    ("", "1", "", "a selector must be specified"),
    ("app=web", "", "", "one of min-available or max-unavailable must be specified"),
    ("app=web", "1", "1", "min-available and max-unavailable cannot be both specified"),
    ("app=web", "10Gb", "", "invalid format specified for min-available"),
    ("app=web", "", "-1", "invalid format specified for max-unavailable"),
    ("app=web", "", "1.5%", "invalid format specified for max-unavailable"),
])
def test_create_pdb_refuses_as_kubectl(selector: str, minimum: str, maximum: str,
                                       why: str) -> None:
    with pytest.raises(NavctlError, match=f"^{why}$"):
        pdb_from("p", selector, min_available=minimum, max_unavailable=maximum)


@pytest.mark.parametrize(("text", "selector"), [
    ("app=web", {"matchLabels": {"app": "web"}}),
    ("app==web,tier=front", {"matchLabels": {"app": "web", "tier": "front"}}),
    ("app=web,tier in (b,a),!canary,track", {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "canary", "operator": "DoesNotExist"},
                             {"key": "tier", "operator": "In", "values": ["a", "b"]},
                             {"key": "track", "operator": "Exists"}]}),
    ("env notin (dev)", {"matchExpressions": [{"key": "env", "operator": "NotIn",
                                               "values": ["dev"]}]}),
])
def test_pdb_selector_text_becomes_a_label_selector(text: str, selector: dict[str, Any]
                                                    ) -> None:
    assert label_selector_from(text) == selector


@pytest.mark.parametrize(("text", "why"), [
    ("app!=web", '"!=" is not a valid label selector operator'),
    ("replicas>2", "\"gt\" isn't supported in label selectors"),
    ("app=web,", "couldn't parse the selector string \"app=web,\": "),
])
def test_pdb_selectors_kubectl_refuses(text: str, why: str) -> None:
    with pytest.raises(NavctlError, match=re.escape(why)):
        label_selector_from(text)


def test_create_pdb_command_line() -> None:
    for alias in ("poddisruptionbudget", "pdb"):
        args = parse_args(["create", alias, "p", "--selector=app=web", "--min-available",
                           "50%", "--dry-run=client", "-o", "yaml", "-n", "demo"])
        assert (args.generate, args.name, args.selector, args.min_available,
                args.max_unavailable, args.dry_run, args.output, args.namespace) == (
            "poddisruptionbudget", "p", "app=web", "50%", "", "client", "yaml", "demo")


# --- create role / clusterrole (kubectl's create_role.go, create_clusterrole.go) -----------

RBAC = "rbac.authorization.k8s.io"


def role_rules(verbs: list[str], resources: list[str], names: list[str] | None = None
               ) -> list[dict[str, Any]]:
    made = role_from("r", verbs=verbs, resources=resources, resource_names=names or [])
    assert made.object["apiVersion"] == f"{RBAC}/v1" and made.object["kind"] == "Role"
    assert made.warnings == ()
    return list(made.object["rules"])


@pytest.mark.parametrize(("verbs", "resources", "names", "rules"), [
    # kubectl's examples
    (["get", "list", "watch"], ["pods"], [],
     [{"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]}]),
    (["get"], ["pods"], ["readablepod", "anotherpod"],
     [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"],
       "resourceNames": ["readablepod", "anotherpod"]}]),
    (["get", "list", "watch"], ["rs.apps"], [],
     [{"verbs": ["get", "list", "watch"], "apiGroups": ["apps"],
       "resources": ["replicasets"]}]),
    (["get", "list", "watch"], ["pods", "pods/status"], [],
     [{"verbs": ["get", "list", "watch"], "apiGroups": [""],
       "resources": ["pods", "pods/status"]}]),
    # short names and singulars are resolved; a rule per group, groups sorted
    (["get"], ["deploy", "po", "cronjob", "Pods/log"], [],
     [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods", "pods/log"]},
      {"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"]},
      {"verbs": ["get"], "apiGroups": ["batch"], "resources": ["cronjobs"]}]),
    # duplicates go; "*" verb replaces the others; a bare "*" resource replaces the others
    (["get", "get", "list"], ["pods", "pod"], ["a", "a"],
     [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"],
       "resourceNames": ["a"]}]),
    (["get", "*", "list"], ["pods"], [],
     [{"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]}]),
    (["get"], ["pods", "*", "deployments"], [],
     [{"verbs": ["get"], "apiGroups": [""], "resources": ["*"]}]),
    (["get"], ["*.apps"], [], [{"verbs": ["get"], "apiGroups": ["apps"], "resources": ["*"]}]),
    # special verbs on their own resources, served or not
    (["bind", "escalate"], ["roles.rbac.authorization.k8s.io"], [],
     [{"verbs": ["bind", "escalate"], "apiGroups": [RBAC], "resources": ["roles"]}]),
    (["impersonate"], ["users", "groups", "serviceaccounts"], [],
     [{"verbs": ["impersonate"], "apiGroups": [""],
       "resources": ["users", "groups", "serviceaccounts"]}]),
    (["use"], ["podsecuritypolicies.policy"], [],
     [{"verbs": ["use"], "apiGroups": ["policy"], "resources": ["podsecuritypolicies"]}]),
])
def test_create_role_rules_as_kubectl(verbs: list[str], resources: list[str],
                                      names: list[str], rules: list[dict[str, Any]]) -> None:
    assert role_rules(verbs, resources, names) == rules


@pytest.mark.parametrize(("verbs", "resources", "why"), [
    ([], ["pods"], "at least one verb must be specified"),
    (["get"], [], "at least one resource must be specified"),
    (["get"], ["foo"], 'the server doesn\'t have a resource type "foo"'),
    (["get"], ["foo.apps"], 'the server doesn\'t have a resource type "foo" in group "apps"'),
    (["get"], ["pods.apps"], 'the server doesn\'t have a resource type "pods" in group "apps"'),
    (["get"], [".apps"], "resource must be specified if apiGroup/subresource specified"),
    (["get"], ["/log"], "resource must be specified if apiGroup/subresource specified"),
    (["bind"], ["pods"], "can not perform 'bind' on 'pods' in group ''"),
    (["get", "impersonate"], ["deploy"],
     "can not perform 'impersonate' on 'deployments' in group 'apps'"),
    (["use"], ["podsecuritypolicies"],
     "can not perform 'use' on 'podsecuritypolicies' in group ''"),
])
def test_create_role_refuses_as_kubectl(verbs: list[str], resources: list[str],
                                        why: str) -> None:
    with pytest.raises(NavctlError, match=f"^{re.escape(why)}$"):
        role_from("r", verbs=verbs, resources=resources, resource_names=[])


def test_create_role_warns_of_verbs_kubectl_does_not_know() -> None:
    made = role_from("r", verbs=["get", "frob"], resources=["pods"], resource_names=[])
    assert made.warnings == ("Warning: 'frob' is not a standard resource verb",)
    assert made.object["rules"][0]["verbs"] == ["get", "frob"]
    # checks stop at a "*" resource (kubectl's validateResource returns there)
    starred = role_from("r", verbs=["bind"], resources=["roles", "*.apps", "pods"],
                        resource_names=[])
    assert [r["apiGroups"] for r in starred.object["rules"]] == [[""], ["apps"], [RBAC]]


def test_create_clusterrole_as_kubectls_examples() -> None:
    made = clusterrole_from("foo", verbs=["get"], resources=[], resource_names=[],
                            non_resource_urls=["/logs/*", "/logs/*", "/healthz"],
                            aggregation_rule=[])
    assert made.object == {
        "apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": "foo"},
        "rules": [{"verbs": ["get"], "nonResourceURLs": ["/logs/*", "/healthz"]}]}
    both = clusterrole_from("foo", verbs=["get", "delete"], resources=["pods"],
                            resource_names=[], non_resource_urls=["*"], aggregation_rule=[])
    assert both.object["rules"] == [
        {"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods"]},
        {"verbs": ["get", "delete"], "nonResourceURLs": ["*"]}]
    posting = clusterrole_from("poster", verbs=["post"], resources=["pods"],
                               resource_names=[], non_resource_urls=["/api/*"],
                               aggregation_rule=[])
    assert posting.warnings == ("Warning: 'post' is not a standard resource verb",)
    monitoring = clusterrole_from(
        "monitoring", verbs=[], resources=[], resource_names=[], non_resource_urls=[],
        aggregation_rule=["rbac.example.com/aggregate-to-monitoring=true"])
    assert monitoring.object == {
        "apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": "monitoring"},
        "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": {"rbac.example.com/aggregate-to-monitoring": "true"}}]}}


@pytest.mark.parametrize(("verbs", "resources", "urls", "aggregation", "why"), [
    (["get"], [], [], ["a=b"], "aggregation rule must be specified without nonResourceURLs, "
                               "verbs, resources or resourceNames"),
    ([], [], [], [], "at least one verb must be specified"),
    (["get"], [], [], [], "one of resource or nonResourceURL must be specified"),
    (["list"], [], ["/healthz"], [], "invalid verb: 'list' for nonResourceURL"),
    (["get"], [], ["healthz"], [], "nonResourceURL should start with /"),
    (["get"], [], [""], [], "nonResourceURL should start with /"),
    (["get"], [], ["/logs/*/x"], [],
     "nonResourceURL only supports wildcard matches when '*' is at the end"),
    (["get"], ["foo"], ["/healthz"], [], 'the server doesn\'t have a resource type "foo"'),
    ([], [], [], ["a"], 'invalid argument "a" for "--aggregation-rule" flag: malformed pair, '
                        "expect string=string"),
])
def test_create_clusterrole_refuses_as_kubectl(verbs: list[str], resources: list[str],
                                               urls: list[str], aggregation: list[str],
                                               why: str) -> None:
    with pytest.raises(NavctlError, match=f"^{re.escape(why)}$"):
        clusterrole_from("c", verbs=verbs, resources=resources, resource_names=[],
                         non_resource_urls=urls, aggregation_rule=aggregation)


def test_flag_lists_split_as_pflag() -> None:
    assert comma_list(["get,list", "watch", ""]) == ["get", "list", "watch"]
    assert aggregation_labels(["a=1, b = 2", "c=3,"]) == {"a": "1", "b": "2", "c": "3"}


# --- create rolebinding / clusterrolebinding -------------------------------------------------

def test_create_rolebinding_as_kubectls_examples() -> None:
    admin = binding_from("RoleBinding", "admin", role="", clusterrole="admin",
                         users=["user1", "user2"], groups=["group1"], service_accounts=[])
    assert admin == {
        "apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": "admin"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "user1"},
                     {"kind": "User", "apiGroup": RBAC, "name": "user2"},
                     {"kind": "Group", "apiGroup": RBAC, "name": "group1"}]}
    by_role = binding_from("RoleBinding", "admin-binding", role="admin", clusterrole="",
                           users=[], groups=[], service_accounts=["monitoring:sa-dev"])
    assert (by_role["roleRef"], by_role["subjects"]) == (
        {"apiGroup": RBAC, "kind": "Role", "name": "admin"},
        [{"kind": "ServiceAccount", "namespace": "monitoring", "name": "sa-dev"}])
    cluster = binding_from("ClusterRoleBinding", "root", role="", clusterrole="cluster-admin",
                           users=["root"], groups=[], service_accounts=[])
    assert (cluster["kind"], cluster["roleRef"]["kind"]) == ("ClusterRoleBinding",
                                                             "ClusterRole")
    bare = binding_from("RoleBinding", "nobody", role="r", clusterrole="", users=[],
                        groups=[], service_accounts=[])
    assert "subjects" not in bare


@pytest.mark.parametrize(("kind", "role", "clusterrole", "accounts", "why"), [
    ("RoleBinding", "", "", [], "exactly one of clusterrole or role must be specified"),
    ("RoleBinding", "a", "b", [], "exactly one of clusterrole or role must be specified"),
    ("ClusterRoleBinding", "", "", [], 'required flag(s) "clusterrole" not set'),
    ("RoleBinding", "a", "", ["dev"], "serviceaccount must be <namespace>:<name>"),
    ("RoleBinding", "a", "", ["dev:"], "serviceaccount must be <namespace>:<name>"),
    ("ClusterRoleBinding", "", "c", ["a:b:c"], "serviceaccount must be <namespace>:<name>"),
])
def test_create_bindings_refuse_as_kubectl(kind: str, role: str, clusterrole: str,
                                           accounts: list[str], why: str) -> None:
    with pytest.raises(NavctlError, match=f"^{re.escape(why)}$"):
        binding_from(kind, "b", role=role, clusterrole=clusterrole, users=[], groups=[],
                     service_accounts=accounts)


def test_create_rbac_command_lines() -> None:
    args = parse_args(["create", "role", "pod-reader", "--verb=get,list", "--verb", "watch",
                       "--resource=pods", "--resource-name=a", "--resource-name=b,c",
                       "-n", "demo", "--dry-run=client", "-o", "yaml"])
    assert (args.generate, args.name, args.verb, args.resource, args.resource_name,
            args.namespace, args.dry_run, args.output) == (
        "role", "pod-reader", ["get,list", "watch"], ["pods"], ["a", "b,c"], "demo",
        "client", "yaml")
    args = parse_args(["create", "clusterrole", "foo", "--verb=get",
                       "--non-resource-url=/logs/*", "--aggregation-rule=a=b"])
    assert (args.generate, args.non_resource_url, args.aggregation_rule) == (
        "clusterrole", ["/logs/*"], ["a=b"])
    args = parse_args(["create", "rolebinding", "admin", "--clusterrole=admin",
                       "--user=user1", "--user=user2", "--group=group1",
                       "--serviceaccount=monitoring:sa-dev"])
    assert (args.generate, args.clusterrole, args.role, args.user, args.group,
            args.serviceaccount) == ("rolebinding", "admin", "", ["user1", "user2"],
                                     ["group1"], ["monitoring:sa-dev"])
    args = parse_args(["--token", "s3cret", "create", "clusterrolebinding", "root",
                       "--clusterrole=cluster-admin", "--user=root"])
    assert (args.generate, args.clusterrole, args.user, args.token) == (
        "clusterrolebinding", "cluster-admin", ["root"], "s3cret")
    with pytest.raises(SystemExit):  # --role is rolebinding's only
        parse_args(["create", "clusterrolebinding", "root", "--role=x"])

"""Objects navctl makes from flags (navarch/_navctl/generators.py), pure, and how the
command line reaches them (``--`` and the create subcommands, ``create pdb`` included)."""

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

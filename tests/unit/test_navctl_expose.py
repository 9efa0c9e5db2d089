"""navctl expose, the pure part: the Service built for each kind of object, its ports and
selector, and the refusals worded as kubectl words them."""

from __future__ import annotations

from typing import Any

import pytest

from navarch._kinds import resource
from navarch._navctl import parse_args
from navarch._navctl.errors import NavctlError
from navarch._navctl.expose import (
    ExposeOptions,
    check_exposable,
    exposed_message,
    exposed_ports,
    parse_label_spec,
    pod_selector,
    port_protocols,
    service_for,
)

Doc = dict[str, Any]


def _container(*ports: Doc) -> Doc:
    return {"name": "c", "image": "localhost/web:1", "ports": list(ports)}


def deployment(*containers: Doc, selector: Doc | None = None,
               labels: dict[str, str] | None = None, kind: str = "Deployment") -> Doc:
    meta: Doc = {"name": "web", "namespace": "demo"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta,
            "spec": {"selector": {"matchLabels": {"app": "web"}} if selector is None
                     else selector,
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": list(containers)}}}}


def pod(*containers: Doc, labels: dict[str, str] | None = None, name: str = "web") -> Doc:
    meta: Doc = {"name": name}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": list(containers)}}


def service(*ports: Doc, selector: dict[str, str] | None = None) -> Doc:
    spec: Doc = {"ports": list(ports)}
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "front", "labels": {"tier": "front"}}, "spec": spec}


# --- what can be exposed, and the selector ---------------------------------------------

@pytest.mark.parametrize("name", ["deploy", "rs", "po", "svc", "deployments", "Pod"])
def test_exposable_kinds(name: str) -> None:
    check_exposable(resource(name))


@pytest.mark.parametrize(("name", "message"), [
    ("sts", "cannot expose a StatefulSet.apps"),
    ("cm", "cannot expose a ConfigMap"),
    ("jobs", "cannot expose a Job.batch"),
])
def test_other_kinds_are_refused(name: str, message: str) -> None:
    with pytest.raises(NavctlError, match=f"^{message}$"):
        check_exposable(resource(name))


@pytest.mark.parametrize(("obj", "selector"), [
    (deployment(), {"app": "web"}),
    (deployment(kind="ReplicaSet", selector={"matchLabels": {"app": "web", "v": "2"}}),
     {"app": "web", "v": "2"}),
    (pod(labels={"run": "web", "tier": "a"}), {"run": "web", "tier": "a"}),
    (service(selector={"app": "api"}), {"app": "api"}),
])
def test_selector_from_each_kind(obj: Doc, selector: dict[str, str]) -> None:
    assert pod_selector(obj) == selector


_PREFIX = "couldn't retrieve selectors via --selector flag or introspection: "


@pytest.mark.parametrize(("obj", "reason"), [
    (pod(labels={}), "the pod has no labels and cannot be exposed"),
    (service(), "the service has no pod selector set"),
    (deployment(selector={}), "invalid deployment: no selectors, therefore cannot be exposed"),
    (deployment(kind="ReplicaSet", selector={"matchExpressions": [
        {"key": "app", "operator": "Exists"}]}),
     "invalid replicaset: no selectors, therefore cannot be exposed"),
    (deployment(selector={"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]},
        {"key": "canary", "operator": "DoesNotExist"}]}),
     'couldn\'t convert expressions - "[{Key:tier Operator:In Values:[a b]} '
     '{Key:canary Operator:DoesNotExist Values:[]}]" to map-based selector format'),
])
def test_objects_without_a_usable_selector(obj: Doc, reason: str) -> None:
    with pytest.raises(NavctlError) as info:
        pod_selector(obj)
    assert str(info.value) == _PREFIX + reason


def test_a_selector_flag_needs_no_introspection() -> None:
    svc = service_for(pod(labels={}), ExposeOptions(port="80", selector="app=x,tier=y"))
    assert svc["spec"]["selector"] == {"app": "x", "tier": "y"}


# --- ports -----------------------------------------------------------------------------

def test_ports_of_every_container_once_in_order() -> None:
    obj = deployment(_container({"containerPort": 8080}, {"containerPort": 53,
                                                          "protocol": "UDP"}),
                     _container({"containerPort": 8080}, {"containerPort": 53}))
    assert exposed_ports(obj) == [8080, 53]
    assert port_protocols(obj) == {8080: ["TCP"], 53: ["UDP", "TCP"]}


def _ports(obj: Doc, **flags: str) -> list[Doc]:
    ports: list[Doc] = service_for(obj, ExposeOptions(**flags))["spec"].get("ports", [])
    return ports


@pytest.mark.parametrize(("obj", "flags", "ports"), [
    # one container port: unnamed, targetPort the same number
    (deployment(_container({"containerPort": 8080, "name": "http"})), {},
     [{"port": 8080, "protocol": "TCP", "targetPort": 8080}]),
    # --port wins over introspection; the target defaults to it
    (deployment(_container({"containerPort": 8080})), {"port": "80"},
     [{"port": 80, "protocol": "TCP", "targetPort": 80}]),
    # --target-port: a number or a container port's name
    (deployment(_container({"containerPort": 8080})), {"port": "80", "target_port": "8080"},
     [{"port": 80, "protocol": "TCP", "targetPort": 8080}]),
    (deployment(_container({"containerPort": 8080})), {"port": "80", "target_port": "http"},
     [{"port": 80, "protocol": "TCP", "targetPort": "http"}]),
    # several ports: all of them, named port-1, port-2
    (pod(_container({"containerPort": 80}), _container({"containerPort": 443}),
         labels={"app": "web"}), {},
     [{"port": 80, "protocol": "TCP", "name": "port-1", "targetPort": 80},
      {"port": 443, "protocol": "TCP", "name": "port-2", "targetPort": 443}]),
    (deployment(), {"port": "80,443", "target_port": "web"},
     [{"port": 80, "protocol": "TCP", "name": "port-1", "targetPort": "web"},
      {"port": 443, "protocol": "TCP", "name": "port-2", "targetPort": "web"}]),
    # the container's protocol is kept...
    (deployment(_container({"containerPort": 5000, "protocol": "UDP"})), {},
     [{"port": 5000, "protocol": "UDP", "targetPort": 5000}]),
    (deployment(_container({"containerPort": 5000, "protocol": "SCTP"})), {"port": "5000"},
     [{"port": 5000, "protocol": "SCTP", "targetPort": 5000}]),
    # ...unless --protocol says otherwise
    (deployment(_container({"containerPort": 5000, "protocol": "UDP"})),
     {"protocol": "TCP"}, [{"port": 5000, "protocol": "TCP", "targetPort": 5000}]),
    # a port served over two protocols becomes two ports
    (deployment(_container({"containerPort": 53, "protocol": "UDP"},
                           {"containerPort": 53, "protocol": "TCP"})), {},
     [{"port": 53, "protocol": "UDP", "name": "port-1-udp", "targetPort": 53},
      {"port": 53, "protocol": "TCP", "name": "port-1-tcp", "targetPort": 53}]),
    # a Service's ports (not its target ports)
    (service({"port": 80, "targetPort": 8080}, {"port": 81, "protocol": "UDP"},
             selector={"app": "web"}), {},
     [{"port": 80, "protocol": "TCP", "name": "port-1", "targetPort": 80},
      {"port": 81, "protocol": "UDP", "name": "port-2", "targetPort": 81}]),
    # headless: no port needed
    (deployment(), {"cluster_ip": "None"}, []),
])
def test_service_ports(obj: Doc, flags: dict[str, str], ports: list[Doc]) -> None:
    assert _ports(obj, **flags) == ports


@pytest.mark.parametrize(("obj", "flags", "message"), [
    (deployment(_container()), {}, "couldn't find port via --port flag or introspection"),
    (pod(labels={"app": "web"}), {"cluster_ip": "10.96.0.9"},
     "couldn't find port via --port flag or introspection"),
    (deployment(), {"port": "http"},
     'invalid port "http" in --port: a port number such as 80 is expected'),
    (deployment(), {"port": "80,"},
     'invalid port "" in --port: a port number such as 80 is expected'),
])
def test_port_errors(obj: Doc, flags: dict[str, str], message: str) -> None:
    with pytest.raises(NavctlError) as info:
        service_for(obj, ExposeOptions(**flags))
    assert str(info.value) == message


# --- the whole Service -----------------------------------------------------------------

def test_service_for_a_deployment_takes_its_name_labels_and_selector() -> None:
    obj = deployment(_container({"containerPort": 8080}), labels={"app": "web", "team": "a"})
    assert service_for(obj, ExposeOptions(type="NodePort")) == {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "labels": {"app": "web", "team": "a"}},
        "spec": {"ports": [{"port": 8080, "protocol": "TCP", "targetPort": 8080}],
                 "selector": {"app": "web"}, "type": "NodePort"}}


def test_flags_override_and_add() -> None:
    obj = pod(_container({"containerPort": 80}), labels={"run": "web"})
    options = ExposeOptions(name="front", labels="svc=front,tier=web", type="LoadBalancer",
                            cluster_ip="None", session_affinity="ClientIP",
                            external_ip="192.0.2.10", protocol="UDP", port="4100")
    assert service_for(obj, options) == {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "front", "labels": {"svc": "front", "tier": "web"}},
        "spec": {"ports": [{"port": 4100, "protocol": "UDP", "targetPort": 4100}],
                 "selector": {"run": "web"}, "externalIPs": ["192.0.2.10"],
                 "type": "LoadBalancer", "sessionAffinity": "ClientIP",
                 "clusterIP": "None"}}


def test_an_unlabelled_object_gives_an_unlabelled_service() -> None:
    svc = service_for(deployment(_container({"containerPort": 80})), ExposeOptions())
    assert svc["metadata"] == {"name": "web"}


def test_a_long_name_is_cut_to_a_dns_label_unless_named() -> None:
    long = "a-name-that-is-toooo-big-for-a-service-because-it-can-only-handle-63-characters"
    obj = pod(_container({"containerPort": 80}), labels={"app": "x"}, name=long)
    assert service_for(obj, ExposeOptions())["metadata"]["name"] == long[:63]
    assert service_for(obj, ExposeOptions(name="short"))["metadata"]["name"] == "short"


@pytest.mark.parametrize(("flags", "message"), [
    ({"selector": "app"}, "unexpected label spec: app"),
    ({"selector": "app==web"}, "unexpected label spec: app==web"),
    ({"labels": "a=1,=2"}, "unexpected empty label key"),
    ({"session_affinity": "Sticky"}, "unknown session affinity: Sticky"),
])
def test_malformed_flags(flags: dict[str, str], message: str) -> None:
    obj = deployment(_container({"containerPort": 80}))
    with pytest.raises(NavctlError) as info:
        service_for(obj, ExposeOptions(**flags))
    assert str(info.value) == message


def test_label_spec() -> None:
    assert parse_label_spec("a=1,b=") == {"a": "1", "b": ""}


@pytest.mark.parametrize(("dry_run", "line"), [
    ("none", "service/web exposed"),
    ("client", "service/web exposed (dry run)"),
    ("server", "service/web exposed (server dry run)"),
])
def test_exposed_message(dry_run: str, line: str) -> None:
    assert exposed_message("web", dry_run) == line


def test_command_line() -> None:
    args = parse_args(["expose", "deploy", "web", "--port=8080", "--type", "NodePort",
                       "-n", "demo", "--target-port", "http", "-l", "a=b", "--dry-run",
                       "-o", "yaml"])
    assert (args.command, args.targets, args.port, args.type, args.namespace,
            args.target_port, args.labels, args.dry_run, args.output) == (
        "expose", ["deploy", "web"], "8080", "NodePort", "demo", "http", "a=b", "client",
        "yaml")
    files = parse_args(["expose", "-f", "web.yaml", "--cluster-ip=None"])
    assert (files.filename, files.targets, files.cluster_ip) == (["web.yaml"], [], "None")

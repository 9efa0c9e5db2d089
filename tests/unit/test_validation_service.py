"""Service and Endpoints validation."""

from __future__ import annotations

from typing import Any

import pytest

from navarch import _codec
from services.apiserver import validation
from tests.unit.apiserver_cases import (
    DELETE,
    assert_problems,
    build,
    load,
    mutate,
    problems,
    update_problems,
)

SERVICE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
}

DOC_SERVICES = {
    "my-service": """
apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  selector:
    app.kubernetes.io/name: MyApp
  ports:
    - protocol: TCP
      port: 80
      targetPort: 9376
""",
    "named-target-port": """
apiVersion: v1
kind: Service
metadata:
  name: nginx-service
spec:
  selector:
    app.kubernetes.io/name: proxy
  ports:
  - name: name-of-service-port
    protocol: TCP
    port: 80
    targetPort: http-web-svc
""",
    "multi-port": """
apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  selector:
    app.kubernetes.io/name: MyApp
  ports:
    - name: http
      protocol: TCP
      port: 80
      targetPort: 9376
    - name: https
      protocol: TCP
      port: 443
      targetPort: 9377
""",
    "node-port": """
apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  type: NodePort
  selector:
    app.kubernetes.io/name: MyApp
  ports:
    - port: 80
      targetPort: 80
      nodePort: 30007
""",
    "load-balancer": """
apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  selector:
    app.kubernetes.io/name: MyApp
  ports:
    - protocol: TCP
      port: 80
      targetPort: 9376
  clusterIP: 10.0.171.239
  type: LoadBalancer
""",
    "external-name": """
apiVersion: v1
kind: Service
metadata:
  name: my-service
  namespace: prod
spec:
  type: ExternalName
  externalName: my.database.example.com
""",
    "headless": """
apiVersion: v1
kind: Service
metadata:
  name: nginx
  labels:
    app: nginx
spec:
  ports:
  - port: 80
    name: web
  clusterIP: None
  selector:
    app: nginx
""",
    "external-ips": """
apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  selector:
    app.kubernetes.io/name: MyApp
  ports:
    - name: http
      protocol: TCP
      port: 80
      targetPort: 49152
  externalIPs:
    - 198.51.100.32
""",
}


@pytest.mark.parametrize("name", sorted(DOC_SERVICES))
def test_documentation_services_are_valid(name: str) -> None:
    assert problems("Service", load(DOC_SERVICES[name])) == []


INVALID: list[tuple[str, list[tuple[str, Any]], list[tuple[str, str]]]] = [
    ("name starts with a digit", [("metadata.name", "1web")],
     [("metadata.name", "DNS-1035 label")]),
    ("no ports", [("spec.ports", [])], [("spec.ports", "Required value")]),
    ("port zero", [("spec.ports.0.port", 0)], [("spec.ports[0].port", "between 1 and 65535")]),
    ("unnamed second port", [("spec.ports.1", {"port": 443})],
     [("spec.ports[0].name", "more than one port"), ("spec.ports[1].name", "Required value")]),
    ("port name", [("spec.ports.0.name", "HTTP")], [("spec.ports[0].name", "RFC 1123 label")]),
    ("duplicate port names", [("spec.ports.0.name", "a"),
                              ("spec.ports.1", {"name": "a", "port": 443})],
     [("spec.ports[1].name", 'Duplicate value: "a"')]),
    ("duplicate port", [("spec.ports.0.name", "a"), ("spec.ports.1", {"name": "b", "port": 80})],
     [("spec.ports[1]", 'Duplicate value: "80/TCP"')]),
    ("target port name", [("spec.ports.0.targetPort", "http_web")],
     [("spec.ports[0].targetPort", "lower-case")]),
    ("target port number", [("spec.ports.0.targetPort", 70000)],
     [("spec.ports[0].targetPort", "between 1 and 65535")]),
    ("protocol", [("spec.ports.0.protocol", "HTTP")],
     [("spec.ports[0].protocol", 'Unsupported value: "HTTP"')]),
    ("type", [("spec.type", "Internal")], [("spec.type", 'Unsupported value: "Internal"')]),
    ("headless NodePort", [("spec.type", "NodePort"), ("spec.clusterIP", "None")],
     [("spec.clusterIP", "may not be set to 'None' for NodePort services")]),
    ("bad clusterIP", [("spec.clusterIP", "10.96.0.300")],
     [("spec.clusterIP", '"None" for a headless service')]),
    ("clusterIPs mismatch", [("spec.clusterIP", "10.96.0.10"), ("spec.clusterIPs", ["10.96.0.11"])],
     [("spec.clusterIPs", "first element must match `clusterIP`")]),
    ("external name missing", [("spec.type", "ExternalName"), ("spec.ports", DELETE)],
     [("spec.externalName", "Required value")]),
    ("external name invalid",
     [("spec.type", "ExternalName"), ("spec.externalName", "db_1.example")],
     [("spec.externalName", "RFC 1123 subdomain")]),
    ("session affinity", [("spec.sessionAffinity", "Cookie")],
     [("spec.sessionAffinity", 'Unsupported value: "Cookie"')]),
    ("affinity timeout", [("spec.sessionAffinity", "ClientIP"),
                          ("spec.sessionAffinityConfig", {"clientIP": {"timeoutSeconds": 0}})],
     [("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "greater than 0")]),
    ("external traffic policy value", [("spec.type", "NodePort"),
                                       ("spec.externalTrafficPolicy", "Nearby")],
     [("spec.externalTrafficPolicy", 'Unsupported value: "Nearby"')]),
    ("internal traffic policy", [("spec.internalTrafficPolicy", "Node")],
     [("spec.internalTrafficPolicy", 'Unsupported value: "Node"')]),
    ("selector", [("spec.selector", {"app": "a b"})], [("spec.selector", 'Invalid value: "a b"')]),
    ("external IP", [("spec.externalIPs", ["300.1.1.1"])],
     [("spec.externalIPs[0]", "valid IP address")]),
    ("source ranges on ClusterIP", [("spec.loadBalancerSourceRanges", ["10.0.0.0/8"])],
     [("spec.loadBalancerSourceRanges", "only be used when `type` is 'LoadBalancer'")]),
    ("ip family", [("spec.ipFamilies", ["IPv5"])],
     [("spec.ipFamilies[0]", 'Unsupported value: "IPv5"')]),
]


@pytest.mark.parametrize(("changes", "expected"), [(c, e) for _, c, e in INVALID],
                         ids=[name for name, _, _ in INVALID])
def test_invalid_services(changes: list[tuple[str, Any]],
                          expected: list[tuple[str, str]]) -> None:
    assert_problems(problems("Service", mutate(SERVICE, *changes)), expected)


# Without defaulting (which drops fields a type does not use), the rules still hold.
UNDEFAULTED: list[tuple[str, list[tuple[str, Any]], list[tuple[str, str]]]] = [
    ("node port on ClusterIP", [("spec.ports.0.nodePort", 30001)],
     [("spec.ports[0].nodePort", "may not be used when `type` is 'ClusterIP'")]),
    ("clusterIP on ExternalName", [("spec.type", "ExternalName"),
                                   ("spec.externalName", "db.example.com"),
                                   ("spec.clusterIP", "10.96.0.10")],
     [("spec.clusterIP", "may not be set for ExternalName services")]),
    ("external traffic policy on ClusterIP", [("spec.externalTrafficPolicy", "Local")],
     [("spec.externalTrafficPolicy", "externally-accessible")]),
]


@pytest.mark.parametrize(("changes", "expected"), [(c, e) for _, c, e in UNDEFAULTED],
                         ids=[name for name, _, _ in UNDEFAULTED])
def test_type_dependent_fields(changes: list[tuple[str, Any]],
                               expected: list[tuple[str, str]]) -> None:
    doc = mutate(SERVICE, ("spec.sessionAffinity", "None"), ("spec.type", "ClusterIP"),
                 ("spec.internalTrafficPolicy", "Cluster"), ("spec.ports.0.protocol", "TCP"),
                 *changes)
    svc = build("Service", doc, defaulted=False)
    assert_problems([(v.path, v.message) for v in validation.validate("Service", svc)],
                    expected)


ALLOCATED = mutate(SERVICE, ("spec.clusterIP", "10.96.0.10"), ("spec.clusterIPs", ["10.96.0.10"]))

UPDATES: list[tuple[str, list[tuple[str, Any]], list[tuple[str, str]]]] = [
    ("same IP", [], []),
    ("IP left out", [("spec.clusterIP", DELETE), ("spec.clusterIPs", DELETE)], []),
    ("ports change", [("spec.ports.0.port", 81)], []),
    ("new IP", [("spec.clusterIP", "10.96.0.11"), ("spec.clusterIPs", ["10.96.0.11"])],
     [("spec.clusterIP", "field is immutable"), ("spec.clusterIPs[0]", "field is immutable")]),
    ("to headless", [("spec.clusterIP", "None"), ("spec.clusterIPs", ["None"])],
     [("spec.clusterIP", "field is immutable"), ("spec.clusterIPs[0]", "field is immutable")]),
    ("to ExternalName", [("spec.type", "ExternalName"), ("spec.externalName", "db.example.com")],
     []),
]


@pytest.mark.parametrize(("changes", "expected"), [(c, e) for _, c, e in UPDATES],
                         ids=[name for name, _, _ in UPDATES])
def test_service_updates(changes: list[tuple[str, Any]],
                         expected: list[tuple[str, str]]) -> None:
    assert_problems(update_problems("Service", ALLOCATED, mutate(ALLOCATED, *changes)), expected)


def test_type_change_needs_no_other_edit() -> None:
    """A stored NodePort Service, echoed back with only its type changed, is valid."""
    node_port = mutate(ALLOCATED, ("spec.type", "LoadBalancer"), ("spec.ports.0.nodePort", 30007),
                       ("spec.externalTrafficPolicy", "Local"))
    stored = _codec.to_dict(build("Service", node_port))
    assert update_problems("Service", stored, mutate(stored, ("spec.type", "ClusterIP"))) == []
    changed = build("Service", mutate(stored, ("spec.type", "ClusterIP")))
    spec = changed.spec  # type: ignore[attr-defined]
    assert (spec.ports[0].node_port, spec.external_traffic_policy) == (0, "")
    assert not spec.HasField("allocate_load_balancer_node_ports")


# --- Endpoints -----------------------------------------------------------------------------

ENDPOINTS = load("""
apiVersion: v1
kind: Endpoints
metadata:
  name: my-service
subsets:
  - addresses:
      - ip: 192.0.2.42
    ports:
      - port: 9376
""")


def test_documentation_endpoints_are_valid() -> None:
    assert problems("Endpoints", ENDPOINTS) == []


ENDPOINT_CASES: list[tuple[str, list[tuple[str, Any]], list[tuple[str, str]]]] = [
    ("bad IP", [("subsets.0.addresses.0.ip", "192.0.2")],
     [("subsets[0].addresses[0].ip", "valid IP address")]),
    ("loopback", [("subsets.0.addresses.0.ip", "127.0.0.1")],
     [("subsets[0].addresses[0].ip", "loopback")]),
    ("link-local", [("subsets.0.notReadyAddresses", [{"ip": "169.254.1.1"}])],
     [("subsets[0].notReadyAddresses[0].ip", "link-local")]),
    ("no addresses", [("subsets.0.addresses", [])],
     [("subsets[0]", "must specify `addresses` or `notReadyAddresses`")]),
    ("port", [("subsets.0.ports.0.port", 0)], [("subsets[0].ports[0].port", "between 1")]),
    ("unnamed ports", [("subsets.0.ports.1", {"port": 80})],
     [("subsets[0].ports[0].name", "Required value"),
      ("subsets[0].ports[1].name", "Required value")]),
    ("protocol", [("subsets.0.ports.0.protocol", "IP")],
     [("subsets[0].ports[0].protocol", "Unsupported value")]),
    ("hostname", [("subsets.0.addresses.0.hostname", "web.0")],
     [("subsets[0].addresses[0].hostname", "must not contain dots")]),
]


@pytest.mark.parametrize(("changes", "expected"), [(c, e) for _, c, e in ENDPOINT_CASES],
                         ids=[name for name, _, _ in ENDPOINT_CASES])
def test_invalid_endpoints(changes: list[tuple[str, Any]],
                           expected: list[tuple[str, str]]) -> None:
    assert_problems(problems("Endpoints", mutate(ENDPOINTS, *changes)), expected)

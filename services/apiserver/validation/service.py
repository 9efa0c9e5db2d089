"""Services and Endpoints.

A Service's clusterIP and nodePorts are allocated after validation (allocators.py), so a
new Service here may have neither; on update an empty clusterIP means "keep the one I
had" and is carried over by the allocator.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from navarch import _names
from navarch.v1 import core_pb2

from ..errors import duplicate, forbidden, immutable, invalid, required
from .common import Errors, check_labels, check_names, check_port_name_or_number, check_value
from .containers import PROTOCOLS
from .meta import check_object_meta

__all__ = [
    "SERVICE_TYPES", "externally_accessible", "validate_endpoints", "validate_service",
    "validate_service_update",
]

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
_NODE_PORT_TYPES = ("LoadBalancer", "NodePort")
_AFFINITIES = ("ClientIP", "None")
_TRAFFIC_POLICIES = ("Cluster", "Local")
_FAMILIES = ("IPv4", "IPv6")
_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")
_MAX_AFFINITY_SECONDS = 86400
_IP_RULE = 'must be a valid IP address (e.g. 10.9.8.7), "None" for a headless service, or empty'


def validate_service(svc: core_pb2.Service) -> Errors:
    """Every problem with a Service."""
    spec = svc.spec
    errors = check_object_meta("Service", svc.metadata)
    errors += check_value("spec.type", spec.type, SERVICE_TYPES)
    errors += _check_ports(spec)
    errors += _check_cluster_ip(spec)
    errors += _check_external_name(spec)
    errors += _check_affinity(spec)
    errors += _check_traffic(spec)
    errors += check_labels("spec.selector", spec.selector)
    for i, ip in enumerate(spec.external_ips):
        errors += check_names(f"spec.externalIPs[{i}]", ip, _names.ip_address)
    errors += _check_families(spec)
    if spec.load_balancer_source_ranges and spec.type != "LoadBalancer":
        errors.append(forbidden("spec.loadBalancerSourceRanges",
                                "may only be used when `type` is 'LoadBalancer'"))
    for i, cidr in enumerate(spec.load_balancer_source_ranges):
        errors += check_names(f"spec.loadBalancerSourceRanges[{i}]", cidr, _names.cidr)
    return errors


def _headless(spec: core_pb2.ServiceSpec) -> bool:
    return spec.cluster_ip == "None"


def _check_ports(spec: core_pb2.ServiceSpec) -> Errors:
    errors: Errors = []
    if not spec.ports and spec.type != "ExternalName" and not _headless(spec):
        errors.append(required("spec.ports"))
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    node_ports: set[tuple[int, str]] = set()
    for i, port in enumerate(spec.ports):
        at = f"spec.ports[{i}]"
        if not port.name and len(spec.ports) > 1:
            errors.append(required(f"{at}.name", "a name is required when a service has more "
                                   "than one port"))
        elif port.name:
            errors += check_names(f"{at}.name", port.name, _names.dns1123_label)
            if port.name in names:
                errors.append(duplicate(f"{at}.name", port.name))
            names.add(port.name)
        errors += check_value(f"{at}.protocol", port.protocol, PROTOCOLS)
        errors += [invalid(f"{at}.port", port.port, m) for m in _names.port_number(port.port)]
        if (port.port, port.protocol) in seen:
            errors.append(duplicate(at, f"{port.port}/{port.protocol}"))
        seen.add((port.port, port.protocol))
        if port.target_port:
            errors += check_port_name_or_number(f"{at}.targetPort", port.target_port)
        if port.HasField("app_protocol"):
            errors += check_names(f"{at}.appProtocol", port.app_protocol, _names.qualified_name)
        errors += _check_node_port(at, port, spec.type, node_ports)
    return errors


def _check_node_port(at: str, port: core_pb2.ServicePort, kind: str,
                     seen: set[tuple[int, str]]) -> Errors:
    if not port.node_port:
        return []
    if kind not in _NODE_PORT_TYPES:
        return [forbidden(f"{at}.nodePort", f"may not be used when `type` is '{kind}'")]
    errors = [invalid(f"{at}.nodePort", port.node_port, m)
              for m in _names.port_number(port.node_port)]
    if (port.node_port, port.protocol) in seen:
        errors.append(duplicate(f"{at}.nodePort", port.node_port))
    seen.add((port.node_port, port.protocol))
    return errors


def _check_cluster_ip(spec: core_pb2.ServiceSpec) -> Errors:
    errors: Errors = []
    if spec.type == "ExternalName":
        if spec.cluster_ip:
            errors.append(forbidden("spec.clusterIP", "may not be set for ExternalName "
                                    "services"))
        if spec.cluster_ips:
            errors.append(forbidden("spec.clusterIPs", "may not be set for ExternalName "
                                    "services"))
        return errors
    if _headless(spec) and spec.type in _NODE_PORT_TYPES:
        errors.append(invalid("spec.clusterIP", "None",
                              f"may not be set to 'None' for {spec.type} services"))
    elif spec.cluster_ip and not _headless(spec) and _names.ip_address(spec.cluster_ip):
        errors.append(invalid("spec.clusterIP", spec.cluster_ip, _IP_RULE))
    for i, ip in enumerate(spec.cluster_ips):
        if ip != "None":
            errors += check_names(f"spec.clusterIPs[{i}]", ip, _names.ip_address)
    if spec.cluster_ips and spec.cluster_ip and spec.cluster_ips[0] != spec.cluster_ip:
        errors.append(invalid("spec.clusterIPs", ",".join(spec.cluster_ips),
                              "the first element must match `clusterIP`"))
    if len(spec.cluster_ips) > 2:
        errors.append(invalid("spec.clusterIPs", ",".join(spec.cluster_ips),
                              "may hold at most two entries (one per IP family)"))
    return errors


def _check_external_name(spec: core_pb2.ServiceSpec) -> Errors:
    if spec.type != "ExternalName":
        return []
    if not spec.external_name:
        return [required("spec.externalName")]
    name = spec.external_name[:-1] if spec.external_name.endswith(".") else spec.external_name
    return [invalid("spec.externalName", spec.external_name, m)
            for m in _names.dns1123_subdomain(name)]


def _check_affinity(spec: core_pb2.ServiceSpec) -> Errors:
    errors = check_value("spec.sessionAffinity", spec.session_affinity, _AFFINITIES)
    has_config = spec.HasField("session_affinity_config")
    if spec.session_affinity == "None" and has_config:
        errors.append(forbidden("spec.sessionAffinityConfig",
                                "must not be set when session affinity is None"))
    if spec.session_affinity == "ClientIP":
        timeout = spec.session_affinity_config.client_ip
        if not timeout.HasField("timeout_seconds"):
            errors.append(required("spec.sessionAffinityConfig.clientIP.timeoutSeconds"))
        elif not 0 < timeout.timeout_seconds <= _MAX_AFFINITY_SECONDS:
            errors.append(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                                  timeout.timeout_seconds, "must be greater than 0 and at "
                                  f"most {_MAX_AFFINITY_SECONDS}"))
    return errors


def externally_accessible(spec: core_pb2.ServiceSpec) -> bool:
    """NodePort and LoadBalancer Services, and ClusterIP ones with external IPs."""
    return spec.type in _NODE_PORT_TYPES or (spec.type == "ClusterIP"
                                              and bool(spec.external_ips))


def _check_traffic(spec: core_pb2.ServiceSpec) -> Errors:
    errors: Errors = []
    if spec.external_traffic_policy:
        if not externally_accessible(spec):
            errors.append(invalid("spec.externalTrafficPolicy", spec.external_traffic_policy,
                                  "may only be set for externally-accessible services "
                                  "(NodePort, LoadBalancer, or with externalIPs)"))
        else:
            errors += check_value("spec.externalTrafficPolicy", spec.external_traffic_policy,
                                  _TRAFFIC_POLICIES)
    if spec.HasField("internal_traffic_policy"):
        errors += check_value("spec.internalTrafficPolicy", spec.internal_traffic_policy,
                              _TRAFFIC_POLICIES)
    elif spec.type in ("ClusterIP", *_NODE_PORT_TYPES):
        errors.append(required("spec.internalTrafficPolicy"))
    if spec.health_check_node_port:
        if spec.type != "LoadBalancer" or spec.external_traffic_policy != "Local":
            errors.append(invalid("spec.healthCheckNodePort", spec.health_check_node_port,
                                  "may only be set when `type` is 'LoadBalancer' and "
                                  "`externalTrafficPolicy` is 'Local'"))
        else:
            errors += [invalid("spec.healthCheckNodePort", spec.health_check_node_port, m)
                       for m in _names.port_number(spec.health_check_node_port)]
    return errors


def _check_families(spec: core_pb2.ServiceSpec) -> Errors:
    errors: Errors = []
    if spec.HasField("ip_family_policy"):
        errors += check_value("spec.ipFamilyPolicy", spec.ip_family_policy, _FAMILY_POLICIES)
    seen: set[str] = set()
    for i, family in enumerate(spec.ip_families):
        errors += check_value(f"spec.ipFamilies[{i}]", family, _FAMILIES)
        if family in seen:
            errors.append(duplicate(f"spec.ipFamilies[{i}]", family))
        seen.add(family)
    if spec.ip_family_policy == "SingleStack" and len(spec.ip_families) > 1:
        errors.append(invalid("spec.ipFamilies", ",".join(spec.ip_families),
                              "may hold only one family when `ipFamilyPolicy` is "
                              "'SingleStack'"))
    return errors


def validate_service_update(new: core_pb2.Service, old: core_pb2.Service) -> Errors:
    """clusterIP cannot change once allocated (except to or from ExternalName); an empty
    one keeps the old value."""
    a, b = new.spec, old.spec
    if "ExternalName" in (a.type, b.type) or not a.cluster_ip or not b.cluster_ip:
        return []
    errors: Errors = []
    if a.cluster_ip != b.cluster_ip:
        errors.append(immutable("spec.clusterIP", a.cluster_ip))
    if a.cluster_ips and b.cluster_ips and a.cluster_ips[0] != b.cluster_ips[0]:
        errors.append(immutable("spec.clusterIPs[0]", a.cluster_ips[0]))
    if a.ip_families and b.ip_families and a.ip_families[0] != b.ip_families[0]:
        errors.append(immutable("spec.ipFamilies[0]", a.ip_families[0]))
    return errors


# --- Endpoints ----------------------------------------------------------------------------

def validate_endpoints(ep: core_pb2.Endpoints) -> Errors:
    """Every problem with an Endpoints object: addresses are valid IPs outside loopback
    and link-local ranges, ports are named and numbered correctly."""
    errors = check_object_meta("Endpoints", ep.metadata)
    for i, subset in enumerate(ep.subsets):
        at = f"subsets[{i}]"
        if not subset.addresses and not subset.not_ready_addresses:
            errors.append(required(at, "must specify `addresses` or `notReadyAddresses`"))
        errors += _check_addresses(f"{at}.addresses", subset.addresses)
        errors += _check_addresses(f"{at}.notReadyAddresses", subset.not_ready_addresses)
        errors += _check_endpoint_ports(f"{at}.ports", subset.ports)
    return errors


def _check_addresses(path: str, addresses: Iterable[core_pb2.EndpointAddress]) -> Errors:
    errors: Errors = []
    for i, addr in enumerate(addresses):
        at = f"{path}[{i}]"
        problems = _names.ip_address(addr.ip)
        errors += [invalid(f"{at}.ip", addr.ip, m) for m in problems]
        if not problems:
            errors += _check_endpoint_ip(f"{at}.ip", addr.ip)
        if addr.hostname:
            errors += check_names(f"{at}.hostname", addr.hostname, _names.dns1123_label)
        if addr.HasField("node_name"):
            errors += check_names(f"{at}.nodeName", addr.node_name, _names.dns1123_subdomain)
    return errors


def _check_endpoint_ip(p: str, ip: str) -> Errors:
    addr = ipaddress.ip_address(ip)
    if addr.is_unspecified:
        return [invalid(p, ip, "may not be unspecified (0.0.0.0, ::)")]
    if addr.is_loopback:
        return [invalid(p, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)")]
    if addr.is_link_local:
        return [invalid(p, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")]
    if addr.is_multicast:
        return [invalid(p, ip, "may not be in the multicast range (224.0.0.0/4, ff00::/8)")]
    return []


def _check_endpoint_ports(path: str, ports: Iterable[core_pb2.EndpointPort]) -> Errors:
    listed = list(ports)
    errors: Errors = []
    names: set[str] = set()
    for i, port in enumerate(listed):
        at = f"{path}[{i}]"
        if not port.name and len(listed) > 1:
            errors.append(required(f"{at}.name"))
        elif port.name:
            errors += check_names(f"{at}.name", port.name, _names.dns1123_label)
            if port.name in names:
                errors.append(duplicate(f"{at}.name", port.name))
            names.add(port.name)
        errors += [invalid(f"{at}.port", port.port, m) for m in _names.port_number(port.port)]
        errors += check_value(f"{at}.protocol", port.protocol, PROTOCOLS)
        if port.HasField("app_protocol"):
            errors += check_names(f"{at}.appProtocol", port.app_protocol, _names.qualified_name)
    return errors

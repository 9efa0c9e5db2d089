"""Containers: names, images, ports, environment, resources, mounts, probes, lifecycle.

``check_containers`` validates one list (``containers`` or ``initContainers``) of a pod
spec; names must be unique across both lists, so the caller passes the set of names seen.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from navarch import _names
from navarch.v1 import core_pb2

from ..errors import duplicate, forbidden, invalid, not_supported, required
from .common import (
    Errors,
    check_names,
    check_nonnegative,
    check_port_name_or_number,
    check_quantity,
    check_relative_path,
    check_value,
    key,
    not_found,
    parse_quantity,
)

__all__ = ["ContainerContext", "check_containers", "check_object_field_ref",
           "check_resource_field_ref"]

PROTOCOLS = ("SCTP", "TCP", "UDP")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
_PROPAGATIONS = ("Bidirectional", "HostToContainer", "None")
_RECURSIVE_READ_ONLY = ("Disabled", "Enabled", "IfPossible")
_SCHEMES = ("HTTP", "HTTPS")
_STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_OVERCOMMITTABLE = frozenset(_STANDARD_RESOURCES)
_MAX_ID = 2147483647
_HEADER_NAME = re.compile(r"[-A-Za-z0-9]+")

ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.hostIP", "status.hostIPs",
                   "status.podIP", "status.podIPs")
ENV_RESOURCES = ("limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                 "requests.ephemeral-storage", "requests.memory")
_CPU_DIVISORS = ("1m", "1")
_MEMORY_DIVISORS = ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti",
                    "1Pi", "1Ei")
_SUBSCRIPTED = re.compile(r"(metadata\.(?:labels|annotations))\['(.*)'\]")


@dataclass
class ContainerContext:
    """What the containers of one pod spec share: its volumes, the names already used,
    the host ports claimed, the pod-level settings some checks depend on."""

    volumes: Mapping[str, core_pb2.Volume]
    host_network: bool = False
    grace_period: int | None = None
    names: set[str] = field(default_factory=set)
    host_ports: set[tuple[str, int, str]] = field(default_factory=set)


def check_containers(path: str, containers: Iterable[core_pb2.Container],
                     ctx: ContainerContext, *, init: bool) -> Errors:
    """Every problem with one list of containers (``init`` for initContainers)."""
    errors: Errors = []
    for i, ctr in enumerate(containers):
        errors += _check_container(f"{path}[{i}]", ctr, ctx, init)
    return errors


def _check_container(at: str, ctr: core_pb2.Container, ctx: ContainerContext,
                     init: bool) -> Errors:
    errors: Errors = []
    if not ctr.name:
        errors.append(required(f"{at}.name"))
    else:
        errors += check_names(f"{at}.name", ctr.name, _names.dns1123_label)
        if ctr.name in ctx.names:
            errors.append(duplicate(f"{at}.name", ctr.name))
        ctx.names.add(ctr.name)
    if not ctr.image:
        errors.append(required(f"{at}.image"))
    elif ctr.image.strip() != ctr.image:
        errors.append(invalid(f"{at}.image", ctr.image,
                              "must not have leading or trailing whitespace"))
    errors += check_value(f"{at}.imagePullPolicy", ctr.image_pull_policy, _PULL_POLICIES)
    errors += check_value(f"{at}.terminationMessagePolicy", ctr.termination_message_policy,
                          _MESSAGE_POLICIES)
    sidecar = init and ctr.HasField("restart_policy") and ctr.restart_policy == "Always"
    errors += _check_restart_policy(at, ctr, init)
    errors += _check_ports(at, ctr.ports, ctx)
    errors += _check_env(at, ctr.env)
    errors += _check_env_from(at, ctr.env_from)
    errors += _check_resources(f"{at}.resources", ctr.resources)
    errors += _check_mounts(at, ctr, ctx)
    errors += _check_probes(at, ctr, init and not sidecar, ctx)
    errors += _check_security_context(f"{at}.securityContext", ctr)
    if ctr.stdin_once and not ctr.stdin:
        errors.append(forbidden(f"{at}.stdinOnce", "cannot be true when stdin is false"))
    return errors


def _check_restart_policy(at: str, ctr: core_pb2.Container, init: bool) -> Errors:
    if not ctr.HasField("restart_policy"):
        return []
    if not init:
        return [forbidden(f"{at}.restartPolicy", "may not be set for non-init containers")]
    return check_value(f"{at}.restartPolicy", ctr.restart_policy, ("Always",))


# --- ports --------------------------------------------------------------------------------

def _check_ports(at: str, ports: Iterable[core_pb2.ContainerPort],
                 ctx: ContainerContext) -> Errors:
    errors: Errors = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = f"{at}.ports[{i}]"
        if port.name:
            errors += check_names(f"{p}.name", port.name, _names.port_name)
            if port.name in names:
                errors.append(duplicate(f"{p}.name", port.name))
            names.add(port.name)
        if port.container_port == 0:
            errors.append(required(f"{p}.containerPort"))
        else:
            errors += [invalid(f"{p}.containerPort", port.container_port, m)
                       for m in _names.port_number(port.container_port)]
        if port.host_port:
            errors += [invalid(f"{p}.hostPort", port.host_port, m)
                       for m in _names.port_number(port.host_port)]
        if ctx.host_network and port.host_port and port.host_port != port.container_port:
            errors.append(invalid(f"{p}.hostPort", port.host_port,
                                  "must match `containerPort` when `hostNetwork` is true"))
        errors += check_value(f"{p}.protocol", port.protocol, PROTOCOLS)
        if port.host_ip:
            errors += check_names(f"{p}.hostIP", port.host_ip, _names.ip_address)
        if port.host_port:
            claim = (port.host_ip, port.host_port, port.protocol)
            if claim in ctx.host_ports:
                errors.append(duplicate(f"{p}.hostPort", f"{port.host_port}/{port.protocol}"))
            ctx.host_ports.add(claim)
    return errors


# --- environment --------------------------------------------------------------------------

def _check_env(at: str, env: Iterable[core_pb2.EnvVar]) -> Errors:
    errors: Errors = []
    for i, var in enumerate(env):
        p = f"{at}.env[{i}]"
        if not var.name:
            errors.append(required(f"{p}.name"))
        else:
            errors += check_names(f"{p}.name", var.name, _names.env_var_name)
        if var.HasField("value_from"):
            errors += _check_env_source(f"{p}.valueFrom", var.value_from, bool(var.value))
    return errors


def _check_env_source(p: str, src: core_pb2.EnvVarSource, has_value: bool) -> Errors:
    errors: Errors = []
    sources = [name for name in ("field_ref", "resource_field_ref", "config_map_key_ref",
                                 "secret_key_ref") if src.HasField(name)]
    if has_value:
        errors.append(invalid(p, "", "may not be specified when `value` is not empty"))
    if not sources:
        errors.append(invalid(p, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                              "`configMapKeyRef` or `secretKeyRef`"))
    elif len(sources) > 1:
        errors.append(invalid(p, "", "may not have more than one field specified at a time"))
    if src.HasField("field_ref"):
        errors += check_object_field_ref(f"{p}.fieldRef", src.field_ref, ENV_FIELD_PATHS)
    if src.HasField("resource_field_ref"):
        errors += check_resource_field_ref(f"{p}.resourceFieldRef", src.resource_field_ref,
                                           ENV_RESOURCES, container_required=False)
    for name, json in (("config_map_key_ref", "configMapKeyRef"),
                       ("secret_key_ref", "secretKeyRef")):
        if src.HasField(name):
            ref = getattr(src, name)
            errors += _check_key_ref(f"{p}.{json}", ref.name, ref.key)
    return errors


def _check_key_ref(p: str, name: str, ref_key: str) -> Errors:
    errors: Errors = []
    if not name:
        errors.append(required(f"{p}.name"))
    if not ref_key:
        errors.append(required(f"{p}.key"))
    else:
        errors += check_names(f"{p}.key", ref_key, _names.config_map_key)
    return errors


def check_object_field_ref(p: str, ref: core_pb2.ObjectFieldSelector,
                           supported: Collection[str]) -> Errors:
    """A downward-API field reference: apiVersion v1 and one of ``supported`` paths, or a
    single label or annotation (``metadata.labels['app']``)."""
    errors: Errors = []
    if not ref.api_version:
        errors.append(required(f"{p}.apiVersion"))
    elif ref.api_version != "v1":
        errors.append(not_supported(f"{p}.apiVersion", ref.api_version, ("v1",)))
    if not ref.field_path:
        errors.append(required(f"{p}.fieldPath"))
        return errors
    sub = _SUBSCRIPTED.fullmatch(ref.field_path)
    if sub is not None:
        check = _names.qualified_name if sub.group(1).endswith("labels") else _names.annotation_key
        errors += [invalid(f"{p}.fieldPath", ref.field_path, m) for m in check(sub.group(2))]
    elif ref.field_path not in supported:
        errors.append(not_supported(f"{p}.fieldPath", ref.field_path, supported))
    return errors


def check_resource_field_ref(p: str, ref: core_pb2.ResourceFieldSelector,
                             supported: Collection[str], *,
                             container_required: bool) -> Errors:
    """A downward-API resource reference: a supported resource and a divisor that suits it."""
    errors: Errors = []
    if container_required and not ref.container_name:
        errors.append(required(f"{p}.containerName"))
    if not ref.resource:
        errors.append(required(f"{p}.resource"))
        return errors
    if ref.resource not in supported:
        errors.append(not_supported(f"{p}.resource", ref.resource, supported))
        return errors
    if ref.divisor:
        divisors = _CPU_DIVISORS if ref.resource.endswith(".cpu") else _MEMORY_DIVISORS
        value = parse_quantity(ref.divisor)
        allowed = [parse_quantity(d) for d in divisors]
        if value is None or value not in allowed:
            errors.append(not_supported(f"{p}.divisor", ref.divisor, divisors))
    return errors


def _check_env_from(at: str, sources: Iterable[core_pb2.EnvFromSource]) -> Errors:
    errors: Errors = []
    for i, src in enumerate(sources):
        p = f"{at}.envFrom[{i}]"
        if src.prefix:
            errors += check_names(f"{p}.prefix", src.prefix, _names.env_var_name)
        refs = [(json, getattr(src, name)) for name, json in
                (("config_map_ref", "configMapRef"), ("secret_ref", "secretRef"))
                if src.HasField(name)]
        if not refs:
            errors.append(invalid(p, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(refs) > 1:
            errors.append(invalid(p, "", "may not have more than one field specified at a time"))
        for json, ref in refs:
            if not ref.name:
                errors.append(required(f"{p}.{json}.name"))
            else:
                errors += check_names(f"{p}.{json}.name", ref.name, _names.dns1123_subdomain)
    return errors


# --- resources ----------------------------------------------------------------------------

def _check_resource_name(p: str, name: str) -> Errors:
    if name in _STANDARD_RESOURCES or name.startswith("hugepages-"):
        return []
    if "/" not in name:
        return [invalid(p, name, "must be a standard resource for containers (cpu, memory, "
                        "ephemeral-storage, hugepages-<size>) or a fully qualified extended "
                        "resource name (example.com/gpu)")]
    return check_names(p, name, _names.qualified_name)


def _check_resources(p: str, res: core_pb2.ResourceRequirements) -> Errors:
    errors: Errors = []
    for kind, values in (("limits", res.limits), ("requests", res.requests)):
        for name in sorted(values):
            at = key(f"{p}.{kind}", name)
            errors += _check_resource_name(at, name)
            errors += check_quantity(at, values[name])
            if name not in _OVERCOMMITTABLE and not name.startswith("hugepages-"):
                quantity = parse_quantity(values[name])
                if quantity is not None and quantity.milli_value() % 1000:
                    errors.append(invalid(at, values[name], "must be an integer"))
    for name in sorted(res.requests):
        if not _check_resource_name(p, name):
            errors += _compare_request(p, name, res)
    return errors


def _compare_request(p: str, name: str, res: core_pb2.ResourceRequirements) -> Errors:
    request = parse_quantity(res.requests[name])
    at = key(f"{p}.requests", name)
    overcommit = name in _OVERCOMMITTABLE
    if name not in res.limits:
        if overcommit:
            return []
        return [forbidden(key(f"{p}.limits", name),
                          "a limit must be set for resources that cannot be overcommitted")]
    limit = parse_quantity(res.limits[name])
    if request is None or limit is None:
        return []
    if overcommit and request > limit:
        return [invalid(at, res.requests[name],
                        f"must be less than or equal to {name} limit of {res.limits[name]}")]
    if not overcommit and request != limit:
        return [invalid(at, res.requests[name],
                        f"must be equal to {name} limit of {res.limits[name]}")]
    return []


# --- mounts -------------------------------------------------------------------------------

def _check_mounts(at: str, ctr: core_pb2.Container, ctx: ContainerContext) -> Errors:
    errors: Errors = []
    paths: set[str] = set()
    privileged = ctr.security_context.HasField("privileged") and ctr.security_context.privileged
    for i, mnt in enumerate(ctr.volume_mounts):
        p = f"{at}.volumeMounts[{i}]"
        if not mnt.name:
            errors.append(required(f"{p}.name"))
        elif mnt.name not in ctx.volumes:
            errors.append(not_found(f"{p}.name", mnt.name))
        errors += _check_mount_path(f"{p}.mountPath", mnt.mount_path, paths)
        if mnt.sub_path:
            errors += check_relative_path(f"{p}.subPath", mnt.sub_path)
        if mnt.sub_path_expr:
            if mnt.sub_path:
                errors.append(invalid(f"{p}.subPathExpr", mnt.sub_path_expr,
                                      "subPathExpr and subPath are mutually exclusive"))
            errors += check_relative_path(f"{p}.subPathExpr", mnt.sub_path_expr)
        errors += _check_propagation(p, mnt, privileged)
    for i, dev in enumerate(ctr.volume_devices):
        p = f"{at}.volumeDevices[{i}]"
        if not dev.name:
            errors.append(required(f"{p}.name"))
        elif dev.name not in ctx.volumes:
            errors.append(not_found(f"{p}.name", dev.name))
        errors += _check_mount_path(f"{p}.devicePath", dev.device_path, paths)
    return errors


def _check_mount_path(p: str, value: str, seen: set[str]) -> Errors:
    if not value:
        return [required(p)]
    errors: Errors = []
    if not value.startswith("/"):
        errors.append(invalid(p, value, "must be an absolute path"))
    if value in seen:
        errors.append(invalid(p, value, "must be unique"))
    seen.add(value)
    return errors


def _check_propagation(p: str, mnt: core_pb2.VolumeMount, privileged: bool) -> Errors:
    errors: Errors = []
    if mnt.mount_propagation:
        errors += check_value(f"{p}.mountPropagation", mnt.mount_propagation, _PROPAGATIONS)
        if mnt.mount_propagation == "Bidirectional" and not privileged:
            errors.append(forbidden(f"{p}.mountPropagation", "Bidirectional mount propagation "
                                    "is available only to privileged containers"))
    if mnt.HasField("recursive_read_only"):
        errors += check_value(f"{p}.recursiveReadOnly", mnt.recursive_read_only,
                              _RECURSIVE_READ_ONLY)
        if mnt.recursive_read_only in ("Enabled", "IfPossible") and not mnt.read_only:
            errors.append(forbidden(f"{p}.recursiveReadOnly", "may only be specified when "
                                    "readOnly is true"))
    return errors


# --- probes and lifecycle -----------------------------------------------------------------

def _check_probes(at: str, ctr: core_pb2.Container, plain_init: bool,
                  ctx: ContainerContext) -> Errors:
    errors: Errors = []
    for name, json in (("liveness_probe", "livenessProbe"), ("readiness_probe", "readinessProbe"),
                       ("startup_probe", "startupProbe")):
        if not ctr.HasField(name):
            continue
        p = f"{at}.{json}"
        if plain_init:
            errors.append(forbidden(p, "may not be set for init containers without "
                                    "restartPolicy=Always"))
            continue
        probe: core_pb2.Probe = getattr(ctr, name)
        errors += _check_probe(p, probe, ctx)
        if name != "readiness_probe" and probe.success_threshold != 1:
            errors.append(invalid(f"{p}.successThreshold", probe.success_threshold, "must be 1"))
        if name == "readiness_probe" and probe.HasField("termination_grace_period_seconds"):
            errors.append(invalid(f"{p}.terminationGracePeriodSeconds",
                                  probe.termination_grace_period_seconds,
                                  "must not be set for readinessProbes"))
    if ctr.HasField("lifecycle"):
        if plain_init:
            errors.append(forbidden(f"{at}.lifecycle", "may not be set for init containers "
                                    "without restartPolicy=Always"))
        for name, json in (("post_start", "postStart"), ("pre_stop", "preStop")):
            if ctr.lifecycle.HasField(name):
                errors += _check_handler(f"{at}.lifecycle.{json}",
                                         getattr(ctr.lifecycle, name), ctx)
    return errors


def _check_probe(p: str, probe: core_pb2.Probe, ctx: ContainerContext) -> Errors:
    errors = _check_handler(p, probe, ctx)
    errors += check_nonnegative(f"{p}.initialDelaySeconds", probe.initial_delay_seconds)
    for name, json in (("timeout_seconds", "timeoutSeconds"), ("period_seconds", "periodSeconds"),
                       ("success_threshold", "successThreshold"),
                       ("failure_threshold", "failureThreshold")):
        value = getattr(probe, name)
        if value < 1:
            errors.append(invalid(f"{p}.{json}", value, "must be greater than or equal to 1"))
    if probe.HasField("termination_grace_period_seconds") and \
            probe.termination_grace_period_seconds <= 0:
        errors.append(invalid(f"{p}.terminationGracePeriodSeconds",
                              probe.termination_grace_period_seconds, "must be greater than 0"))
    return errors


_HANDLERS = (("exec", "exec"), ("http_get", "httpGet"), ("tcp_socket", "tcpSocket"),
             ("grpc", "grpc"), ("sleep", "sleep"))


def _check_handler(p: str, handler: core_pb2.Probe | core_pb2.LifecycleHandler,
                   ctx: ContainerContext) -> Errors:
    present = [(name, json) for name, json in _HANDLERS
               if name in handler.DESCRIPTOR.fields_by_name and handler.HasField(name)]
    errors: Errors = []
    if not present:
        return [required(p, "must specify a handler type")]
    for _name, json in present[1:]:
        errors.append(forbidden(f"{p}.{json}", "may not specify more than 1 handler type"))
    for name, json in present:
        errors += _check_action(f"{p}.{json}", name, getattr(handler, name), ctx)
    return errors


def _check_action(p: str, name: str, action: object, ctx: ContainerContext) -> Errors:
    if isinstance(action, core_pb2.ExecAction):
        return [] if action.command else [required(f"{p}.command")]
    if isinstance(action, core_pb2.HTTPGetAction):
        errors = [] if action.path else [required(f"{p}.path")]
        errors += check_port_name_or_number(f"{p}.port", action.port)
        errors += check_value(f"{p}.scheme", action.scheme, _SCHEMES)
        for i, header in enumerate(action.http_headers):
            if not _HEADER_NAME.fullmatch(header.name):
                errors.append(invalid(f"{p}.httpHeaders[{i}].name", header.name,
                                      "a valid HTTP header name consists of letters, digits "
                                      "and '-' (e.g. 'X-Header-Name')"))
        return errors
    if isinstance(action, core_pb2.TCPSocketAction):
        return check_port_name_or_number(f"{p}.port", action.port)
    if isinstance(action, core_pb2.GRPCAction):
        return [invalid(f"{p}.port", action.port, m) for m in _names.port_number(action.port)]
    if isinstance(action, core_pb2.SleepAction):
        return _check_sleep(p, action.seconds, ctx.grace_period)
    raise AssertionError(f"unknown handler {name}")


def _check_sleep(p: str, seconds: int, grace: int | None) -> Errors:
    if seconds < 0 or (grace is not None and seconds > grace):
        limit = "" if grace is None else f" and at most terminationGracePeriodSeconds ({grace})"
        return [invalid(f"{p}.seconds", seconds, f"must be non-negative{limit}")]
    return []


# --- security context ---------------------------------------------------------------------

def check_ids(p: str, sc: core_pb2.SecurityContext | core_pb2.PodSecurityContext,
              names: Iterable[tuple[str, str]]) -> Errors:
    """User and group ids within 0..2^31-1."""
    errors: Errors = []
    for name, json in names:
        if sc.HasField(name) and not 0 <= getattr(sc, name) <= _MAX_ID:
            errors.append(invalid(f"{p}.{json}", getattr(sc, name),
                                  f"must be between 0 and {_MAX_ID}, inclusive"))
    return errors


def check_profile(p: str, profile: core_pb2.SeccompProfile | core_pb2.AppArmorProfile) -> Errors:
    """Seccomp/AppArmor profiles: a known type; a localhost profile exactly for Localhost."""
    errors = check_value(f"{p}.type", profile.type, ("Localhost", "RuntimeDefault", "Unconfined"))
    if profile.type == "Localhost" and not profile.localhost_profile:
        errors.append(required(f"{p}.localhostProfile",
                               "must be set when the profile type is Localhost"))
    elif profile.type != "Localhost" and profile.HasField("localhost_profile"):
        errors.append(invalid(f"{p}.localhostProfile", profile.localhost_profile,
                              "can only be set when the profile type is Localhost"))
    return errors


def _check_security_context(p: str, ctr: core_pb2.Container) -> Errors:
    if not ctr.HasField("security_context"):
        return []
    sc = ctr.security_context
    errors = check_ids(p, sc, (("run_as_user", "runAsUser"), ("run_as_group", "runAsGroup")))
    if sc.HasField("proc_mount"):
        errors += check_value(f"{p}.procMount", sc.proc_mount, ("Default", "Unmasked"))
    for name, json in (("seccomp_profile", "seccompProfile"),
                       ("app_armor_profile", "appArmorProfile")):
        if sc.HasField(name):
            errors += check_profile(f"{p}.{json}", getattr(sc, name))
    no_escalation = sc.HasField("allow_privilege_escalation") and not sc.allow_privilege_escalation
    if no_escalation and sc.HasField("privileged") and sc.privileged:
        errors.append(invalid(f"{p}.allowPrivilegeEscalation", False,
                              "cannot set `allowPrivilegeEscalation` to false and "
                              "`privileged` to true"))
    if no_escalation and "CAP_SYS_ADMIN" in sc.capabilities.add:
        errors.append(invalid(f"{p}.allowPrivilegeEscalation", False,
                              "cannot set `allowPrivilegeEscalation` to false and "
                              "`capabilities.add` CAP_SYS_ADMIN"))
    return errors

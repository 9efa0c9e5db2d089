"""Pods, pod templates and the pod spec they share; what a pod update may change."""

from __future__ import annotations

from collections.abc import Iterable

from navarch import _names
from navarch.v1 import core_pb2

from ..errors import duplicate, forbidden, invalid, required
from .common import (
    Errors,
    changed_fields,
    check_labels,
    check_names,
    check_nonnegative,
    check_quantity,
    check_value,
    copy_field,
    key,
)
from .containers import ContainerContext, check_containers, check_ids, check_profile
from .meta import check_annotations, check_object_meta
from .scheduling import check_affinity, check_tolerations, check_topology_spread
from .volumes import check_volumes

__all__ = [
    "RESTART_POLICIES", "check_pod_spec", "check_pod_template_spec", "validate_pod",
    "validate_pod_template", "validate_pod_update",
]

RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_PREEMPTION = ("Never", "PreemptLowerPriority")
_OS_NAMES = ("linux", "windows")
_MAX_INT32 = 2147483647
_MAX_NAMESERVERS = 3
_MAX_SEARCHES = 32
_MAX_SEARCH_CHARS = 2048

_POD_UPDATE_RULE = (
    "pod updates may not change fields other than `spec.containers[*].image`, "
    "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` "
    "(only additions to existing tolerations), `spec.terminationGracePeriodSeconds` and "
    "`spec.schedulingGates` (only removals)")


def check_pod_spec(path: str, spec: core_pb2.PodSpec, *,
                   restart_policies: tuple[str, ...] = RESTART_POLICIES) -> Errors:
    """Every problem with a pod spec at ``path`` (``spec`` or ``spec.template.spec``) whose
    owner accepts ``restart_policies``."""
    errors = check_volumes(f"{path}.volumes", spec.volumes)
    volumes = {v.name: v for v in spec.volumes if v.name}
    grace = (spec.termination_grace_period_seconds
             if spec.HasField("termination_grace_period_seconds") else None)
    names: set[str] = set()
    init_ctx = ContainerContext(volumes, spec.host_network, grace, names)
    errors += check_containers(f"{path}.initContainers", spec.init_containers, init_ctx,
                               init=True)
    if not spec.containers:
        errors.append(required(f"{path}.containers"))
    ctx = ContainerContext(volumes, spec.host_network, grace, names)
    errors += check_containers(f"{path}.containers", spec.containers, ctx, init=False)
    errors += check_value(f"{path}.restartPolicy", spec.restart_policy, restart_policies)
    errors += _check_dns(path, spec)
    errors += check_labels(f"{path}.nodeSelector", spec.node_selector)
    errors += _check_names(path, spec)
    errors += _check_numbers(path, spec)
    errors += _check_pod_security(path, spec)
    if spec.HasField("affinity"):
        errors += check_affinity(f"{path}.affinity", spec.affinity)
    errors += check_tolerations(f"{path}.tolerations", spec.tolerations)
    errors += check_topology_spread(f"{path}.topologySpreadConstraints",
                                    spec.topology_spread_constraints)
    errors += _check_extras(path, spec)
    return errors


def _check_names(path: str, spec: core_pb2.PodSpec) -> Errors:
    errors: Errors = []
    for value, json, rule in (
            (spec.service_account_name, "serviceAccountName", _names.dns1123_subdomain),
            (spec.node_name, "nodeName", _names.dns1123_subdomain),
            (spec.hostname, "hostname", _names.dns1123_label),
            (spec.subdomain, "subdomain", _names.dns1123_label),
            (spec.scheduler_name, "schedulerName", _names.dns1123_subdomain),
            (spec.priority_class_name, "priorityClassName", _names.dns1123_subdomain)):
        if value:
            errors += check_names(f"{path}.{json}", value, rule)
    if spec.HasField("runtime_class_name"):
        errors += check_names(f"{path}.runtimeClassName", spec.runtime_class_name,
                              _names.dns1123_subdomain)
    for i, secret in enumerate(spec.image_pull_secrets):
        if not secret.name:
            errors.append(required(f"{path}.imagePullSecrets[{i}].name"))
    return errors


def _check_numbers(path: str, spec: core_pb2.PodSpec) -> Errors:
    errors: Errors = []
    if spec.HasField("termination_grace_period_seconds"):
        errors += check_nonnegative(f"{path}.terminationGracePeriodSeconds",
                                    spec.termination_grace_period_seconds)
    if spec.HasField("active_deadline_seconds") and \
            not 1 <= spec.active_deadline_seconds <= _MAX_INT32:
        errors.append(invalid(f"{path}.activeDeadlineSeconds", spec.active_deadline_seconds,
                              f"must be between 1 and {_MAX_INT32}, inclusive"))
    for name in sorted(spec.overhead):
        errors += check_quantity(key(f"{path}.overhead", name), spec.overhead[name])
    return errors


def _check_dns(path: str, spec: core_pb2.PodSpec) -> Errors:
    errors = check_value(f"{path}.dnsPolicy", spec.dns_policy, _DNS_POLICIES)
    if spec.dns_policy == "None" and not spec.HasField("dns_config"):
        errors.append(required(f"{path}.dnsConfig",
                               "must provide `dnsConfig` when `dnsPolicy` is None"))
    if not spec.HasField("dns_config"):
        return errors
    cfg, at = spec.dns_config, f"{path}.dnsConfig"
    if spec.dns_policy == "None" and not cfg.nameservers:
        errors.append(required(f"{at}.nameservers",
                               "must provide at least one DNS nameserver when `dnsPolicy` "
                               "is None"))
    if len(cfg.nameservers) > _MAX_NAMESERVERS:
        errors.append(invalid(f"{at}.nameservers", ",".join(cfg.nameservers),
                              f"must not have more than {_MAX_NAMESERVERS} nameservers"))
    for i, ns in enumerate(cfg.nameservers):
        errors += check_names(f"{at}.nameservers[{i}]", ns, _names.ip_address)
    errors += _check_searches(f"{at}.searches", cfg.searches)
    for i, opt in enumerate(cfg.options):
        if not opt.name:
            errors.append(required(f"{at}.options[{i}].name", "must not be empty"))
    return errors


def _check_searches(at: str, searches: Iterable[str]) -> Errors:
    domains = list(searches)
    errors: Errors = []
    if len(domains) > _MAX_SEARCHES:
        errors.append(invalid(at, ",".join(domains),
                              f"must not have more than {_MAX_SEARCHES} search paths"))
    if len(" ".join(domains)) > _MAX_SEARCH_CHARS:
        errors.append(invalid(at, ",".join(domains), "must not have more than "
                              f"{_MAX_SEARCH_CHARS} characters (including spaces) in the "
                              "search list"))
    for i, domain in enumerate(domains):
        name = domain[:-1] if domain.endswith(".") else domain
        errors += [invalid(f"{at}[{i}]", domain, m) for m in _names.dns1123_subdomain(name)]
    return errors


def _check_pod_security(path: str, spec: core_pb2.PodSpec) -> Errors:
    errors: Errors = []
    if spec.HasField("share_process_namespace") and spec.share_process_namespace \
            and spec.host_pid:
        errors.append(invalid(f"{path}.shareProcessNamespace", True,
                              "ShareProcessNamespace and HostPID cannot both be enabled"))
    if not spec.HasField("security_context"):
        return errors
    p = f"{path}.securityContext"
    sc = spec.security_context
    errors += check_ids(p, sc, (("run_as_user", "runAsUser"), ("run_as_group", "runAsGroup"),
                                ("fs_group", "fsGroup")))
    for i, gid in enumerate(sc.supplemental_groups):
        if not 0 <= gid <= _MAX_INT32:
            errors.append(invalid(f"{p}.supplementalGroups[{i}]", gid,
                                  f"must be between 0 and {_MAX_INT32}, inclusive"))
    if sc.HasField("fs_group_change_policy"):
        errors += check_value(f"{p}.fsGroupChangePolicy", sc.fs_group_change_policy,
                              ("OnRootMismatch", "Always"))
    if sc.HasField("supplemental_groups_policy"):
        errors += check_value(f"{p}.supplementalGroupsPolicy", sc.supplemental_groups_policy,
                              ("Merge", "Strict"))
    for name, json in (("seccomp_profile", "seccompProfile"),
                       ("app_armor_profile", "appArmorProfile")):
        if sc.HasField(name):
            errors += check_profile(f"{p}.{json}", getattr(sc, name))
    errors += _check_sysctls(f"{p}.sysctls", sc.sysctls)
    return errors


def _check_sysctls(p: str, sysctls: Iterable[core_pb2.Sysctl]) -> Errors:
    errors: Errors = []
    seen: set[str] = set()
    for i, sysctl in enumerate(sysctls):
        at = f"{p}[{i}].name"
        if not sysctl.name:
            errors.append(required(at))
            continue
        dotted = sysctl.name.replace("/", ".")
        if len(dotted) > 253 or any(_names.qualified_name(part) or part != part.lower()
                                    for part in dotted.split(".")):
            errors.append(invalid(at, sysctl.name, "must be a sysctl name: lower-case "
                                  "words of letters, digits, '-' and '_' separated by '.' or "
                                  "'/' (e.g. 'net.ipv4.ip_local_port_range'), at most 253 "
                                  "characters"))
        if sysctl.name in seen:
            errors.append(duplicate(at, sysctl.name))
        seen.add(sysctl.name)
    return errors


def _check_extras(path: str, spec: core_pb2.PodSpec) -> Errors:
    errors: Errors = []
    for i, alias in enumerate(spec.host_aliases):
        at = f"{path}.hostAliases[{i}]"
        errors += check_names(f"{at}.ip", alias.ip, _names.ip_address)
        for j, hostname in enumerate(alias.hostnames):
            errors += check_names(f"{at}.hostnames[{j}]", hostname, _names.dns1123_subdomain)
    for i, gate in enumerate(spec.readiness_gates):
        errors += check_names(f"{path}.readinessGates[{i}].conditionType", gate.condition_type,
                              _names.qualified_name)
    if spec.HasField("preemption_policy"):
        errors += check_value(f"{path}.preemptionPolicy", spec.preemption_policy, _PREEMPTION)
    if spec.HasField("os"):
        errors += check_value(f"{path}.os.name", spec.os.name, _OS_NAMES)
    gates: set[str] = set()
    for i, scheduling_gate in enumerate(spec.scheduling_gates):
        at = f"{path}.schedulingGates[{i}].name"
        errors += check_names(at, scheduling_gate.name, _names.qualified_name)
        if scheduling_gate.name in gates:
            errors.append(duplicate(at, scheduling_gate.name))
        gates.add(scheduling_gate.name)
    if spec.scheduling_gates and spec.node_name:
        errors.append(forbidden(f"{path}.nodeName",
                                "cannot be set until all schedulingGates have been cleared"))
    return errors


def check_pod_template_spec(path: str, template: core_pb2.PodTemplateSpec, *,
                            restart_policies: tuple[str, ...] = RESTART_POLICIES) -> Errors:
    """A pod template: its labels, annotations and spec."""
    errors = check_labels(f"{path}.metadata.labels", template.metadata.labels)
    errors += check_annotations(f"{path}.metadata.annotations", template.metadata.annotations)
    errors += check_pod_spec(f"{path}.spec", template.spec, restart_policies=restart_policies)
    return errors


# --- kinds --------------------------------------------------------------------------------

def validate_pod(pod: core_pb2.Pod) -> Errors:
    """Every problem with a new Pod."""
    return check_object_meta("Pod", pod.metadata) + check_pod_spec("spec", pod.spec)


def validate_pod_template(obj: core_pb2.PodTemplate) -> Errors:
    """Every problem with a PodTemplate."""
    return (check_object_meta("PodTemplate", obj.metadata)
            + check_pod_template_spec("template", obj.template))


def validate_pod_update(new: core_pb2.Pod, old: core_pb2.Pod) -> Errors:
    """Only images, activeDeadlineSeconds (set or shortened), tolerations (added to),
    terminationGracePeriodSeconds and schedulingGates (removed) may change in a pod spec."""
    a, b = new.spec, old.spec
    errors = _check_deadline_update(a, b) + _check_tolerations_update(a, b)
    probe = core_pb2.PodSpec()
    probe.CopyFrom(a)
    for mine, theirs in ((probe.containers, b.containers),
                         (probe.init_containers, b.init_containers)):
        for ctr, was in zip(mine, theirs, strict=False):
            ctr.image = was.image
    for name in ("active_deadline_seconds", "termination_grace_period_seconds", "tolerations"):
        copy_field(probe, b, name)
    if {g.name for g in a.scheduling_gates} <= {g.name for g in b.scheduling_gates}:
        copy_field(probe, b, "scheduling_gates")
    if probe != b:
        changed = ", ".join(changed_fields(probe, b, "spec"))
        errors.append(forbidden("spec", f"{_POD_UPDATE_RULE}; changed: {changed}"))
    return errors


def _check_deadline_update(new: core_pb2.PodSpec, old: core_pb2.PodSpec) -> Errors:
    if not old.HasField("active_deadline_seconds"):
        return []
    p = "spec.activeDeadlineSeconds"
    if not new.HasField("active_deadline_seconds"):
        return [invalid(p, "nil", "must not update from a positive integer to nil value")]
    if new.active_deadline_seconds > old.active_deadline_seconds:
        return [invalid(p, new.active_deadline_seconds,
                        "must be less than or equal to previous value")]
    return []


def _toleration_key(t: core_pb2.Toleration) -> tuple[str, str, str, str]:
    return (t.key, t.operator or "Equal", t.value, t.effect)


def _check_tolerations_update(new: core_pb2.PodSpec, old: core_pb2.PodSpec) -> Errors:
    current: dict[tuple[str, str, str, str], core_pb2.Toleration] = {}
    for tol in new.tolerations:
        current.setdefault(_toleration_key(tol), tol)
    for tol in old.tolerations:
        now = current.get(_toleration_key(tol))
        if now is None:
            return [forbidden("spec.tolerations", "existing toleration can not be modified "
                              "except its tolerationSeconds")]
        if tol.HasField("toleration_seconds") and (
                not now.HasField("toleration_seconds")
                or now.toleration_seconds > tol.toleration_seconds):
            return [forbidden("spec.tolerations", "existing toleration can not be modified "
                              "except its tolerationSeconds, which may only be decreased")]
    return []

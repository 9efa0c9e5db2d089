"""``navctl describe`` for each kind; ``describe`` is the entry point.

Kinds without a describer of their own get the generic one (describe_base.py): the
header, then every field of the object, titled as kubectl titles them.
"""

from __future__ import annotations

from datetime import datetime, timezone

from navarch._navctl.columns import format_endpoints, service_external_ip, table_for
from navarch._navctl.describe_base import (
    Related,
    Writer,
    conditions,
    controlled_by,
    describer_for,
    events,
    header,
    labels_and_annotations,
    register,
)
from navarch._navctl.describe_pods import pod_template, pods_status
from navarch._navctl.resources import allocated, pod_amounts, share
from navarch._navctl.values import (
    Obj,
    dig,
    format_labels,
    format_selector,
    human_duration,
    items,
    none_if_empty,
    parse_time,
)

__all__ = ["Related", "describe"]


def describe(obj: Obj, related: Related, now: datetime, tz: timezone | None = None
             ) -> list[str]:
    """The describe output of ``obj`` (its ``kind`` selects the describer). Times print
    in ``tz`` (the local zone when None)."""
    writer = Writer(now, tz)
    describer_for(str(obj.get("kind", "")))(writer, obj, related)
    return writer.render()


def _bool(value: object) -> str:
    return "true" if value else "false"


# --- apps ----------------------------------------------------------------------------------

def _replica_set_summary(rs: Obj) -> str:
    return (f"{dig(rs, 'metadata.name', '')} ({dig(rs, 'status.replicas', 0)}/"
            f"{dig(rs, 'spec.replicas', 0)} replicas created)")


def _new_and_old(deployment: Obj, replicasets: list[Obj]) -> tuple[Obj | None, list[Obj]]:
    """The ReplicaSet of the current revision, and the older ones that still have pods."""
    revision = dig(deployment, "metadata.annotations", {}).get("deployment.kubernetes.io/revision")
    newest: Obj | None = None
    for rs in replicasets:
        rs_revision = dig(rs, "metadata.annotations", {}).get("deployment.kubernetes.io/revision")
        if revision is not None and rs_revision == revision:
            newest = rs
    if newest is None and replicasets:
        newest = max(replicasets, key=lambda r: str(dig(r, "metadata.creationTimestamp", "")))
    old = [rs for rs in replicasets if rs is not newest and
           (dig(rs, "spec.replicas", 0) or dig(rs, "status.replicas", 0))]
    return newest, old


@register("Deployment")
def describe_deployment(w: Writer, d: Obj, related: Related) -> None:
    """Describe a Deployment."""
    header(w, d, created=True)
    spec, status = d.get("spec") or {}, d.get("status") or {}
    w.kv(0, "Selector", format_selector(spec.get("selector")))
    w.kv(0, "Replicas", f"{spec.get('replicas', 0)} desired | "
                        f"{status.get('updatedReplicas', 0)} updated | "
                        f"{status.get('replicas', 0)} total | "
                        f"{status.get('availableReplicas', 0)} available | "
                        f"{status.get('unavailableReplicas', 0)} unavailable")
    strategy = spec.get("strategy") or {}
    w.kv(0, "StrategyType", strategy.get("type", "RollingUpdate"))
    w.kv(0, "MinReadySeconds", spec.get("minReadySeconds", 0))
    rolling = strategy.get("rollingUpdate")
    if rolling is not None or strategy.get("type", "RollingUpdate") == "RollingUpdate":
        rolling = rolling or {}
        w.kv(0, "RollingUpdateStrategy",
             f"{rolling.get('maxUnavailable', '25%')} max unavailable, "
             f"{rolling.get('maxSurge', '25%')} max surge")
    pod_template(w, spec.get("template") or {})
    conditions(w, d)
    newest, old = _new_and_old(d, related.replicasets)
    w.kv(0, "OldReplicaSets", ", ".join(_replica_set_summary(r) for r in old) or "<none>")
    w.kv(0, "NewReplicaSet", _replica_set_summary(newest) if newest else "<none>")
    events(w, related.events)


@register("ReplicaSet")
def describe_replicaset(w: Writer, rs: Obj, related: Related) -> None:
    """Describe a ReplicaSet."""
    w.kv(0, "Name", dig(rs, "metadata.name", ""))
    w.kv(0, "Namespace", dig(rs, "metadata.namespace", ""))
    w.kv(0, "Selector", format_selector(dig(rs, "spec.selector")))
    labels_and_annotations(w, rs)
    controlled_by(w, rs)
    w.kv(0, "Replicas", f"{dig(rs, 'status.replicas', 0)} current / "
                        f"{dig(rs, 'spec.replicas', 0)} desired")
    w.kv(0, "Pods Status", pods_status(related.pods))
    pod_template(w, dig(rs, "spec.template", {}))
    conditions(w, rs)
    events(w, related.events)


@register("StatefulSet")
def describe_statefulset(w: Writer, sts: Obj, related: Related) -> None:
    """Describe a StatefulSet."""
    header(w, sts, created=True)
    spec = sts.get("spec") or {}
    w.kv(0, "Selector", format_selector(spec.get("selector")))
    w.kv(0, "Replicas", f"{spec.get('replicas', 0)} desired | "
                        f"{dig(sts, 'status.replicas', 0)} total")
    strategy = spec.get("updateStrategy") or {}
    w.kv(0, "Update Strategy", strategy.get("type", "RollingUpdate"))
    if "rollingUpdate" in strategy:
        w.kv(1, "Partition", dig(strategy, "rollingUpdate.partition", 0))
    w.kv(0, "Pods Status", pods_status(related.pods))
    pod_template(w, spec.get("template") or {})
    claims = items(sts, "spec.volumeClaimTemplates")
    if not claims:
        w.kv(0, "Volume Claims", "<none>")
    else:
        w.line(0, "Volume Claims:")
        for claim in claims:
            w.kv(1, "Name", dig(claim, "metadata.name", ""))
            w.kv(1, "StorageClass", dig(claim, "spec.storageClassName", ""))
            w.kv(1, "Capacity", dig(claim, "spec.resources.requests", {}).get("storage", ""))
            w.kv(1, "Access Modes", ", ".join(items(claim, "spec.accessModes")))
    events(w, related.events)


@register("DaemonSet")
def describe_daemonset(w: Writer, ds: Obj, related: Related) -> None:
    """Describe a DaemonSet."""
    w.kv(0, "Name", dig(ds, "metadata.name", ""))
    w.kv(0, "Selector", format_selector(dig(ds, "spec.selector")))
    w.kv(0, "Node-Selector", format_labels(dig(ds, "spec.template.spec.nodeSelector")))
    labels_and_annotations(w, ds)
    status = ds.get("status") or {}
    w.kv(0, "Desired Number of Nodes Scheduled", status.get("desiredNumberScheduled", 0))
    w.kv(0, "Current Number of Nodes Scheduled", status.get("currentNumberScheduled", 0))
    w.kv(0, "Number of Nodes Scheduled with Up-to-date Pods",
         status.get("updatedNumberScheduled", 0))
    w.kv(0, "Number of Nodes Scheduled with Available Pods",
         status.get("numberAvailable", 0))
    w.kv(0, "Number of Nodes Misscheduled", status.get("numberMisscheduled", 0))
    w.kv(0, "Pods Status", pods_status(related.pods))
    pod_template(w, dig(ds, "spec.template", {}))
    events(w, related.events)


# --- batch -----------------------------------------------------------------------------

@register("Job")
def describe_job(w: Writer, job: Obj, related: Related) -> None:
    """Describe a Job."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    w.kv(0, "Name", dig(job, "metadata.name", ""))
    w.kv(0, "Namespace", dig(job, "metadata.namespace", ""))
    w.kv(0, "Selector", format_selector(spec.get("selector")))
    labels_and_annotations(w, job)
    controlled_by(w, job)
    w.kv(0, "Parallelism", spec.get("parallelism", 1))
    w.kv(0, "Completions", spec.get("completions", "<unset>"))
    w.kv(0, "Completion Mode", spec.get("completionMode", "NonIndexed"))
    w.kv(0, "Suspend", _bool(spec.get("suspend")))
    w.kv(0, "Backoff Limit", spec.get("backoffLimit", 6))
    start, done = status.get("startTime"), status.get("completionTime")
    if start:
        w.kv(0, "Start Time", w.time(start))
    if done:
        w.kv(0, "Completed At", w.time(done))
    started, finished = parse_time(start), parse_time(done)
    if started is not None:
        end = finished or w.now
        w.kv(0, "Duration", human_duration((end - started).total_seconds()))
    w.kv(0, "Pods Statuses", f"{status.get('active', 0)} Active ({status.get('ready', 0)} "
                             f"Ready) / {status.get('succeeded', 0)} Succeeded / "
                             f"{status.get('failed', 0)} Failed")
    pod_template(w, spec.get("template") or {})
    events(w, related.events)


@register("CronJob")
def describe_cronjob(w: Writer, cj: Obj, related: Related) -> None:
    """Describe a CronJob."""
    spec = cj.get("spec") or {}
    header(w, cj)
    w.kv(0, "Schedule", spec.get("schedule", ""))
    if spec.get("timeZone"):
        w.kv(0, "Time Zone", spec["timeZone"])
    w.kv(0, "Concurrency Policy", spec.get("concurrencyPolicy", "Allow"))
    w.kv(0, "Suspend", _bool(spec.get("suspend")))
    w.kv(0, "Successful Job History Limit", spec.get("successfulJobsHistoryLimit", 3))
    w.kv(0, "Failed Job History Limit", spec.get("failedJobsHistoryLimit", 1))
    w.kv(0, "Starting Deadline Seconds", spec.get("startingDeadlineSeconds", "<unset>"))
    job_spec = dig(spec, "jobTemplate.spec", {})
    w.kv(0, "Selector", format_selector(job_spec.get("selector")))
    w.kv(0, "Parallelism", job_spec.get("parallelism", "<unset>"))
    w.kv(0, "Completions", job_spec.get("completions", "<unset>"))
    pod_template(w, job_spec.get("template") or {})
    last = dig(cj, "status.lastScheduleTime")
    w.kv(0, "Last Schedule Time", w.time(last) if last else "<unset>")
    active = [str(ref.get("name", "")) for ref in items(cj, "status.active")]
    w.kv(0, "Active Jobs", ", ".join(active) or "<none>")
    events(w, related.events)


# --- core ------------------------------------------------------------------------------

def _port_endpoints(port: Obj, endpoints: Obj | None) -> str:
    if endpoints is None:
        return "<none>"
    subsets = []
    for subset in items(endpoints, "subsets"):
        ports = [p for p in subset.get("ports") or [] if p.get("name", "") == port.get("name", "")]
        if ports:
            subsets.append({"addresses": subset.get("addresses") or [], "ports": ports})
    return format_endpoints(subsets) or "<none>"


@register("Service")
def describe_service(w: Writer, svc: Obj, related: Related) -> None:
    """Describe a Service."""
    header(w, svc)
    spec = svc.get("spec") or {}
    svc_type = spec.get("type", "ClusterIP")
    w.kv(0, "Selector", format_labels(spec.get("selector")))
    w.kv(0, "Type", svc_type)
    if spec.get("ipFamilyPolicy"):
        w.kv(0, "IP Family Policy", spec["ipFamilyPolicy"])
    if spec.get("ipFamilies"):
        w.kv(0, "IP Families", ",".join(spec["ipFamilies"]))
    w.kv(0, "IP", none_if_empty(spec.get("clusterIP")))
    if spec.get("clusterIPs"):
        w.kv(0, "IPs", ",".join(spec["clusterIPs"]))
    if spec.get("externalIPs"):
        w.kv(0, "External IPs", ",".join(spec["externalIPs"]))
    if svc_type == "LoadBalancer":
        w.kv(0, "LoadBalancer Ingress", service_external_ip(svc))
    if svc_type == "ExternalName":
        w.kv(0, "External Name", spec.get("externalName", ""))
    for port in items(svc, "spec.ports"):
        name = port.get("name") or "<unset>"
        protocol = port.get("protocol") or "TCP"
        w.kv(0, "Port", f"{name}\t{port.get('port', 0)}/{protocol}")
        target = port.get("targetPort", port.get("port", 0))
        w.kv(0, "TargetPort", f"{target}/{protocol}")
        if port.get("nodePort"):
            w.kv(0, "NodePort", f"{name}\t{port['nodePort']}/{protocol}")
        w.kv(0, "Endpoints", _port_endpoints(port, related.endpoints))
    w.kv(0, "Session Affinity", spec.get("sessionAffinity", "None"))
    if svc_type in ("NodePort", "LoadBalancer"):
        w.kv(0, "External Traffic Policy", spec.get("externalTrafficPolicy", "Cluster"))
    events(w, related.events)


def _node_conditions(w: Writer, node: Obj) -> None:
    found = items(node, "status.conditions")
    if not found:
        w.kv(0, "Conditions", "<none>")
        return
    w.line(0, "Conditions:")
    w.line(1, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage")
    w.line(1, "----\t------\t-----------------\t------------------\t------\t-------")
    for cond in found:
        w.line(1, f"{cond.get('type', '')}\t{cond.get('status', '')}\t"
                  f"{w.time(cond.get('lastHeartbeatTime'))}\t"
                  f"{w.time(cond.get('lastTransitionTime'))}\t{cond.get('reason', '')}\t"
                  f"{cond.get('message', '')}")


def _resource_list(w: Writer, title: str, values: dict[str, str] | None) -> None:
    if not values:
        return
    w.line(0, f"{title}:")
    for name in sorted(values):
        w.kv(1, name, values[name])


_SYSTEM_INFO = (
    ("Machine ID", "machineID"), ("System UUID", "systemUUID"), ("Boot ID", "bootID"),
    ("Kernel Version", "kernelVersion"), ("OS Image", "osImage"),
    ("Operating System", "operatingSystem"), ("Architecture", "architecture"),
    ("Container Runtime Version", "containerRuntimeVersion"),
    ("Kubelet Version", "kubeletVersion"), ("Kube-Proxy Version", "kubeProxyVersion"),
)


def _taint_text(taint: Obj) -> str:
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint.get('key', '')}{value}:{taint.get('effect', '')}"


@register("Node")
def describe_node(w: Writer, node: Obj, related: Related) -> None:
    """Describe a Node, with the pods it runs."""
    w.kv(0, "Name", dig(node, "metadata.name", ""))
    w.kv(0, "Roles", table_for("Node").row(node, w.now)[2])
    labels_and_annotations(w, node)
    w.kv(0, "CreationTimestamp", w.time(dig(node, "metadata.creationTimestamp")))
    w.listing(0, "Taints", [_taint_text(t) for t in items(node, "spec.taints")])
    w.kv(0, "Unschedulable", _bool(dig(node, "spec.unschedulable")))
    _node_conditions(w, node)
    addresses = items(node, "status.addresses")
    if addresses:
        w.line(0, "Addresses:")
        for address in addresses:
            w.kv(1, address.get("type", ""), address.get("address", ""))
    _resource_list(w, "Capacity", dig(node, "status.capacity"))
    _resource_list(w, "Allocatable", dig(node, "status.allocatable"))
    info = dig(node, "status.nodeInfo", {})
    w.line(0, "System Info:")
    for label, key in _SYSTEM_INFO:
        w.kv(1, label, info.get(key, ""))
    if dig(node, "spec.podCIDR"):
        w.kv(0, "PodCIDR", dig(node, "spec.podCIDR"))
        w.kv(0, "PodCIDRs", ",".join(items(node, "spec.podCIDRs")))
    running = [p for p in related.pods
               if dig(p, "status.phase") not in ("Succeeded", "Failed")]
    w.kv(0, "Non-terminated Pods", f"({len(running)} in total)")
    allocatable = dig(node, "status.allocatable")
    if running:
        w.line(1, "Namespace\tName\tCPU Requests\tCPU Limits\tMemory Requests\t"
                  "Memory Limits\tAge")
        w.line(1, "---------\t----\t------------\t----------\t---------------\t"
                  "-------------\t---")
        for pod in running:
            amounts = [share(pod_amounts(pod, field, name), allocatable, name)
                       for name in ("cpu", "memory") for field in ("requests", "limits")]
            w.line(1, "\t".join([str(dig(pod, "metadata.namespace", "")),
                                 str(dig(pod, "metadata.name", "")), *amounts,
                                 w.age(dig(pod, "metadata.creationTimestamp"))]))
    w.line(0, "Allocated resources:")
    w.line(1, "(Total limits may be over 100 percent, i.e., overcommitted.)")
    w.line(1, "Resource\tRequests\tLimits")
    w.line(1, "--------\t--------\t------")
    for name, requests, limits in allocated(running, allocatable):
        w.line(1, f"{name}\t{requests}\t{limits}")
    events(w, related.events)


@register("Namespace")
def describe_namespace(w: Writer, ns: Obj, related: Related) -> None:
    """Describe a Namespace."""
    header(w, ns, namespace=False)
    w.kv(0, "Status", dig(ns, "status.phase", ""))
    conditions(w, ns, ("Type", "Status", "LastTransitionTime", "Reason", "Message"))


@register("ConfigMap")
def describe_configmap(w: Writer, cm: Obj, related: Related) -> None:
    """Describe a ConfigMap: each key, then its value."""
    header(w, cm)
    w.line(0)
    w.line(0, "Data")
    w.line(0, "====")
    for key, value in sorted((cm.get("data") or {}).items()):
        w.line(0, f"{key}:")
        w.line(0, "----")
        w.line(0, str(value))
        w.line(0)
    w.line(0)
    w.line(0, "BinaryData")
    w.line(0, "====")
    for key, value in sorted((cm.get("binaryData") or {}).items()):
        w.kv(0, key, f"{len(str(value)) * 3 // 4} bytes")
    w.line(0)
    events(w, related.events)


@register("Secret")
def describe_secret(w: Writer, secret: Obj, related: Related) -> None:
    """Describe a Secret: key names and sizes, never values."""
    header(w, secret)
    w.line(0)
    w.kv(0, "Type", secret.get("type", "Opaque"))
    w.line(0)
    w.line(0, "Data")
    w.line(0, "====")
    for key, value in sorted((secret.get("data") or {}).items()):
        encoded = str(value)
        size = len(encoded) * 3 // 4 - encoded[-2:].count("=")
        w.kv(0, key, f"{size} bytes")


@register("Endpoints")
def describe_endpoints(w: Writer, ep: Obj, related: Related) -> None:
    """Describe Endpoints."""
    header(w, ep)
    subsets = items(ep, "subsets")
    if not subsets:
        w.kv(0, "Subsets", "")
    else:
        w.line(0, "Subsets:")
        for subset in subsets:
            ready = ",".join(str(a.get("ip", "")) for a in subset.get("addresses") or [])
            not_ready = ",".join(str(a.get("ip", ""))
                                 for a in subset.get("notReadyAddresses") or [])
            w.kv(1, "Addresses", none_if_empty(ready))
            w.kv(1, "NotReadyAddresses", none_if_empty(not_ready))
            w.line(1, "Ports:")
            w.line(2, "Name\tPort\tProtocol")
            w.line(2, "----\t----\t--------")
            for port in subset.get("ports") or []:
                w.line(2, f"{port.get('name') or '<unset>'}\t{port.get('port', 0)}\t"
                          f"{port.get('protocol') or 'TCP'}")
            w.line(0)
    events(w, related.events)


# --- policy ----------------------------------------------------------------------------

@register("PodDisruptionBudget")
def describe_poddisruptionbudget(w: Writer, pdb: Obj, related: Related) -> None:
    """Describe a PodDisruptionBudget: its one amount, its selector, what the disruption
    controller last counted."""
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    w.kv(0, "Name", dig(pdb, "metadata.name", ""))
    w.kv(0, "Namespace", dig(pdb, "metadata.namespace", ""))
    if spec.get("minAvailable") not in (None, ""):
        w.kv(0, "Min available", spec["minAvailable"])
    elif spec.get("maxUnavailable") not in (None, ""):
        w.kv(0, "Max unavailable", spec["maxUnavailable"])
    selector = spec.get("selector")
    w.kv(0, "Selector", "<unset>" if selector is None else format_selector(selector))
    w.line(0, "Status:")
    w.kv(2, "Allowed disruptions", status.get("disruptionsAllowed", 0))
    w.kv(2, "Current", status.get("currentHealthy", 0))
    w.kv(2, "Desired", status.get("desiredHealthy", 0))
    w.kv(2, "Total", status.get("expectedPods", 0))
    events(w, related.events)


# --- rbac --------------------------------------------------------------------------------

def _go_list(values: list[str]) -> str:
    """A string list as Go's ``%v`` prints it: ``[get list]``."""
    return "[" + " ".join(values) + "]"


def _strings(rule: Obj, key: str) -> list[str]:
    return [str(v) for v in rule.get(key) or []]


def breakdown_rule(rule: Obj) -> list[Obj]:
    """One rule per group, resource, verb and resource name (and per non-resource URL
    and verb), as kubectl's rbac.BreakdownRule. A rule without apiGroups breaks into no
    resource rules at all."""
    verbs, names = _strings(rule, "verbs"), _strings(rule, "resourceNames")
    broken: list[Obj] = []
    for group in _strings(rule, "apiGroups"):
        for res in _strings(rule, "resources"):
            for verb in verbs:
                part: Obj = {"apiGroups": [group], "resources": [res], "verbs": [verb]}
                broken += ([{**part, "resourceNames": [name]} for name in names] if names
                           else [part])
    broken += [{"nonResourceURLs": [url], "verbs": [verb]}
               for url in _strings(rule, "nonResourceURLs") for verb in verbs]
    return broken


def _rule_string(rule: Obj) -> str:
    """Go's generated PolicyRule.String(), which kubectl sorts the rules by."""
    return ("&PolicyRule{" + "".join(
        f"{title}:{_go_list(_strings(rule, key))},"
        for title, key in (("Verbs", "verbs"), ("APIGroups", "apiGroups"),
                           ("Resources", "resources"), ("ResourceNames", "resourceNames"),
                           ("NonResourceURLs", "nonResourceURLs"))) + "}")


def compact_rules(rules: list[Obj]) -> list[Obj]:
    """Broken-down rules with the verbs of one group, resource and resource name merged
    (in the order met), sorted as kubectl's describe sorts them (rbac.CompactRules,
    then SortableRuleSlice: by the Go text of the rule, so by verbs first)."""
    merged: dict[tuple[str, str, str | None], Obj] = {}
    others: list[Obj] = []
    for rule in rules:
        if rule.get("nonResourceURLs"):
            others.append(rule)
            continue
        names = _strings(rule, "resourceNames")
        key = (rule["apiGroups"][0], rule["resources"][0], names[0] if names else None)
        if key in merged:
            verbs = merged[key]["verbs"]
            verbs += [v for v in rule["verbs"] if v not in verbs]
        else:
            merged[key] = {**rule, "verbs": list(rule["verbs"])}
    return sorted([*others, *merged.values()], key=_rule_string)


def combine_resource_group(resources: list[str], groups: list[str]) -> str:
    """The Resources cell: ``deployments.apps``, ``pods``, ``deployments.apps/scale``
    (kubectl's CombineResourceGroup, of the first resource and group)."""
    if not resources:
        return ""
    name, sep, sub = resources[0].partition("/")
    if groups and groups[0]:
        name += f".{groups[0]}"
    return f"{name}/{sub}" if sep else name


@register("Role")
@register("ClusterRole")
def describe_role(w: Writer, role: Obj, related: Related) -> None:
    """Describe a Role or ClusterRole: the PolicyRule table, a line per resource (and
    resource name) with its verbs, a line per non-resource URL and verb. As kubectl,
    no namespace and no events."""
    w.kv(0, "Name", dig(role, "metadata.name", ""))
    labels_and_annotations(w, role)
    w.line(0, "PolicyRule:")
    w.line(1, "Resources\tNon-Resource URLs\tResource Names\tVerbs")
    w.line(1, "---------\t-----------------\t--------------\t-----")
    broken = [part for rule in items(role, "rules") for part in breakdown_rule(rule)]
    for rule in compact_rules(broken):
        resources = combine_resource_group(_strings(rule, "resources"),
                                           _strings(rule, "apiGroups"))
        w.line(1, f"{resources}\t{_go_list(_strings(rule, 'nonResourceURLs'))}"
                  f"\t{_go_list(_strings(rule, 'resourceNames'))}"
                  f"\t{_go_list(_strings(rule, 'verbs'))}")


@register("RoleBinding")
@register("ClusterRoleBinding")
def describe_binding(w: Writer, binding: Obj, related: Related) -> None:
    """Describe a RoleBinding or ClusterRoleBinding: the role it grants, its subjects.
    As kubectl, no namespace and no events."""
    w.kv(0, "Name", dig(binding, "metadata.name", ""))
    labels_and_annotations(w, binding)
    ref = dig(binding, "roleRef", {})
    w.line(0, "Role:")
    w.kv(1, "Kind", ref.get("kind", ""))
    w.kv(1, "Name", ref.get("name", ""))
    w.line(0, "Subjects:")
    w.line(1, "Kind\tName\tNamespace")
    w.line(1, "----\t----\t---------")
    for subject in items(binding, "subjects"):
        w.line(1, f"{subject.get('kind', '')}\t{subject.get('name', '')}\t"
                  f"{subject.get('namespace', '')}")

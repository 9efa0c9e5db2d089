"""The columns ``navctl get`` prints for each kind, as kubectl prints them.

Each kind has a ``Table``: its columns (some only with ``-o wide``) and a pure function
from an object (Kubernetes JSON form) and the current time to the row's cells. Kinds
without a table of their own print NAME and AGE.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction

from navarch._navctl.podstatus import pod_summary
from navarch._navctl.values import (
    Obj,
    age,
    dig,
    format_labels,
    format_selector,
    go_duration,
    human_duration,
    items,
    none_if_empty,
    parse_time,
)
from navarch._quantity import Quantity, QuantityError, parse_quantity

__all__ = [
    "Column", "Table", "access_modes", "created_at", "event_last_seen", "event_sort_key",
    "format_endpoints", "int_or_percent", "service_external_ip", "service_ports",
    "subjects_strings", "table_for",
]

RowFunction = Callable[[Obj, datetime], list[str]]


@dataclass(frozen=True)
class Column:
    """One column: its header, and whether only ``-o wide`` shows it."""

    header: str
    wide: bool = False


@dataclass(frozen=True)
class Table:
    """How one kind prints: ``row`` returns one cell per column (wide ones included)."""

    columns: tuple[Column, ...]
    row: RowFunction
    name_column: int | None = 0

    def headers(self, wide: bool) -> list[str]:
        """The headers shown (with or without the wide columns)."""
        return [c.header for c in self.columns if wide or not c.wide]

    def cells(self, obj: Obj, now: datetime, wide: bool) -> list[str]:
        """The cells of ``obj``'s row that are shown."""
        values = self.row(obj, now)
        return [v for c, v in zip(self.columns, values, strict=True) if wide or not c.wide]


_TABLES: dict[str, Table] = {}


def _table(kind: str, headers: str, wide: str = "", *, name_column: int | None = 0
           ) -> Callable[[RowFunction], RowFunction]:
    """Register the row function of ``kind``; headers are separated by ``|``."""
    columns = tuple(Column(h) for h in headers.split("|"))
    columns += tuple(Column(h, wide=True) for h in wide.split("|") if wide)

    def register(fn: RowFunction) -> RowFunction:
        _TABLES[kind] = Table(columns, fn, name_column)
        return fn
    return register


def _name(obj: Obj) -> str:
    return str(dig(obj, "metadata.name", ""))


def _age(obj: Obj, now: datetime) -> str:
    return age(dig(obj, "metadata.creationTimestamp"), now)


def _default_row(obj: Obj, now: datetime) -> list[str]:
    return [_name(obj), _age(obj, now)]


_DEFAULT = Table((Column("NAME"), Column("AGE")), _default_row)


def table_for(kind: str) -> Table:
    """The table of ``kind`` (e.g. ``"Pod"``); NAME and AGE for kinds without one."""
    return _TABLES.get(kind, _DEFAULT)


# --- pod templates -----------------------------------------------------------------------

def _template_columns(template_spec: Obj | None) -> list[str]:
    containers = items(template_spec, "containers")
    return [",".join(str(c.get("name", "")) for c in containers),
            ",".join(str(c.get("image", "")) for c in containers)]


def _int(obj: Obj, path: str) -> int:
    return int(dig(obj, path, 0))


# --- core --------------------------------------------------------------------------------

@_table("Pod", "NAME|READY|STATUS|RESTARTS|AGE", "IP|NODE|NOMINATED NODE|READINESS GATES")
def _pod(pod: Obj, now: datetime) -> list[str]:
    summary = pod_summary(pod)
    restarts = str(summary.restarts)
    if summary.restarts and summary.last_restart is not None:
        restarts += f" ({human_duration((now - summary.last_restart).total_seconds())} ago)"
    gates = [g.get("conditionType") for g in items(pod, "spec.readinessGates")]
    readiness = "<none>"
    if gates:
        true = {c.get("type") for c in items(pod, "status.conditions")
                if c.get("status") == "True"}
        readiness = f"{sum(1 for g in gates if g in true)}/{len(gates)}"
    return [_name(pod), f"{summary.ready}/{summary.total}", summary.status, restarts,
            _age(pod, now), none_if_empty(dig(pod, "status.podIP")),
            none_if_empty(dig(pod, "spec.nodeName")),
            none_if_empty(dig(pod, "status.nominatedNodeName")), readiness]


@_table("PodTemplate", "NAME|CONTAINERS|IMAGES|POD LABELS")
def _podtemplate(obj: Obj, now: datetime) -> list[str]:
    return [_name(obj), *_template_columns(dig(obj, "template.spec")),
            format_labels(dig(obj, "template.metadata.labels"))]


def service_external_ip(svc: Obj) -> str:
    """EXTERNAL-IP of a Service: by type, ``<pending>`` for a LoadBalancer not yet given
    an address."""
    svc_type = dig(svc, "spec.type", "ClusterIP")
    external = [str(ip) for ip in items(svc, "spec.externalIPs")]
    if svc_type == "ExternalName":
        return str(dig(svc, "spec.externalName", ""))
    if svc_type == "LoadBalancer":
        ingress = [str(i.get("ip") or i.get("hostname") or "")
                   for i in items(svc, "status.loadBalancer.ingress")]
        found = [a for a in ingress + external if a]
        return ",".join(found) if found else "<pending>"
    return ",".join(external) if external else "<none>"


def service_ports(ports: Sequence[Obj]) -> str:
    """PORT(S) of a Service: ``80/TCP``, ``80:30007/TCP``, comma-separated, or ``<none>``."""
    shown = []
    for port in ports:
        protocol = port.get("protocol") or "TCP"
        node_port = port.get("nodePort")
        number = port.get("port", 0)
        shown.append(f"{number}:{node_port}/{protocol}" if node_port else f"{number}/{protocol}")
    return ",".join(shown) if shown else "<none>"


@_table("Service", "NAME|TYPE|CLUSTER-IP|EXTERNAL-IP|PORT(S)|AGE", "SELECTOR")
def _service(svc: Obj, now: datetime) -> list[str]:
    return [_name(svc), str(dig(svc, "spec.type", "ClusterIP")),
            none_if_empty(dig(svc, "spec.clusterIP")), service_external_ip(svc),
            service_ports(items(svc, "spec.ports")), _age(svc, now),
            format_labels(dig(svc, "spec.selector"))]


def format_endpoints(subsets: Sequence[Obj], limit: int = 3) -> str:
    """ENDPOINTS: the first ``limit`` ``ip:port`` pairs and ``+ N more...``; ``<none>``
    without subsets."""
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    for subset in subsets:
        addresses = [str(a.get("ip", "")) for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        pairs = ([[ip] for ip in addresses] if not ports else
                 [[_host_port(ip, p.get("port", 0)) for ip in addresses] for p in ports])
        for group in pairs:
            count += len(group)
            shown += group[:max(0, limit - len(shown))]
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if count > limit else text


def _host_port(ip: str, port: object) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@_table("Endpoints", "NAME|ENDPOINTS|AGE")
def _endpoints(ep: Obj, now: datetime) -> list[str]:
    return [_name(ep), format_endpoints(items(ep, "subsets")), _age(ep, now)]


def _node_roles(labels: dict[str, str]) -> str:
    roles = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/"):
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(r for r in roles if r)) or "<none>"


def _node_status(node: Obj) -> str:
    states = []
    for cond in items(node, "status.conditions"):
        if cond.get("type") == "Ready":
            states.append("Ready" if cond.get("status") == "True" else "NotReady")
    if not states:
        states.append("Unknown")
    if dig(node, "spec.unschedulable"):
        states.append("SchedulingDisabled")
    return ",".join(states)


def _node_address(node: Obj, address_type: str) -> str:
    for address in items(node, "status.addresses"):
        if address.get("type") == address_type:
            return str(address.get("address", ""))
    return "<none>"


@_table("Node", "NAME|STATUS|ROLES|AGE|VERSION",
        "INTERNAL-IP|EXTERNAL-IP|OS-IMAGE|KERNEL-VERSION|CONTAINER-RUNTIME")
def _node(node: Obj, now: datetime) -> list[str]:
    info = dig(node, "status.nodeInfo", {})
    return [_name(node), _node_status(node), _node_roles(dig(node, "metadata.labels", {})),
            _age(node, now), str(info.get("kubeletVersion", "")),
            _node_address(node, "InternalIP"), _node_address(node, "ExternalIP"),
            str(info.get("osImage") or "<unknown>"), str(info.get("kernelVersion") or "<unknown>"),
            str(info.get("containerRuntimeVersion") or "<unknown>")]


@_table("Namespace", "NAME|STATUS|AGE")
def _namespace(ns: Obj, now: datetime) -> list[str]:
    return [_name(ns), str(dig(ns, "status.phase", "")), _age(ns, now)]


@_table("ConfigMap", "NAME|DATA|AGE")
def _configmap(cm: Obj, now: datetime) -> list[str]:
    count = len(dig(cm, "data", {})) + len(dig(cm, "binaryData", {}))
    return [_name(cm), str(count), _age(cm, now)]


@_table("Secret", "NAME|TYPE|DATA|AGE")
def _secret(secret: Obj, now: datetime) -> list[str]:
    return [_name(secret), str(dig(secret, "type", "Opaque")),
            str(len(dig(secret, "data", {}))), _age(secret, now)]


@_table("ServiceAccount", "NAME|SECRETS|AGE")
def _serviceaccount(sa: Obj, now: datetime) -> list[str]:
    return [_name(sa), str(len(items(sa, "secrets"))), _age(sa, now)]


def event_last_seen(event: Obj, now: datetime) -> tuple[str, str]:
    """(LAST SEEN, FIRST SEEN) of an event, with ``(x3 over 5m)`` for repeated ones."""
    first = dig(event, "firstTimestamp") or dig(event, "eventTime")
    first_seen = age(first, now)
    last_seen = age(dig(event, "lastTimestamp") or first, now)
    series = dig(event, "series")
    if series is not None:
        last_seen = age(series.get("lastObservedTime"), now)
    elif int(event.get("count") or 0) > 1:
        last_seen = f"{last_seen} (x{event['count']} over {first_seen})"
    return last_seen, first_seen


def event_sort_key(event: Obj) -> float:
    """When an event was last seen, for ordering (oldest first, as ``kubectl events``)."""
    when = (parse_time(dig(event, "series.lastObservedTime"))
            or parse_time(dig(event, "lastTimestamp"))
            or parse_time(dig(event, "eventTime"))
            or parse_time(dig(event, "firstTimestamp"))
            or parse_time(dig(event, "metadata.creationTimestamp")))
    return when.timestamp() if when is not None else 0.0


def _event(event: Obj, now: datetime) -> list[str]:
    last_seen, first_seen = event_last_seen(event, now)
    involved = dig(event, "involvedObject", {})
    target = f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"
    source = dig(event, "source.component") or dig(event, "reportingComponent", "")
    host = dig(event, "source.host")
    if host:
        source = f"{source}, {host}"
    return [last_seen, str(event.get("type", "")), str(event.get("reason", "")), target,
            str(involved.get("fieldPath", "")), str(source),
            str(event.get("message", "")).strip(), first_seen,
            str(event.get("count") or ""), _name(event)]


_TABLES["Event"] = Table(
    (Column("LAST SEEN"), Column("TYPE"), Column("REASON"), Column("OBJECT"),
     Column("SUBOBJECT", True), Column("SOURCE", True), Column("MESSAGE"),
     Column("FIRST SEEN", True), Column("COUNT", True), Column("NAME", True)),
    _event, name_column=None)


def access_modes(modes: Sequence[str]) -> str:
    """Access modes abbreviated as kubectl does (RWO, ROX, RWX, RWOP)."""
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
             "ReadWriteOncePod": "RWOP"}
    return ",".join(short.get(m, m) for m in modes)


@_table("PersistentVolumeClaim", "NAME|STATUS|VOLUME|CAPACITY|ACCESS MODES|STORAGECLASS|AGE",
        "VOLUMEMODE")
def _pvc(pvc: Obj, now: datetime) -> list[str]:
    phase = str(dig(pvc, "status.phase", ""))
    if dig(pvc, "metadata.deletionTimestamp") is not None:
        phase = "Terminating"
    bound = phase == "Bound"
    return [_name(pvc), phase, str(dig(pvc, "spec.volumeName", "")),
            str(dig(pvc, "status.capacity", {}).get("storage", "")) if bound else "",
            access_modes(items(pvc, "status.accessModes")) if bound else "",
            str(dig(pvc, "spec.storageClassName", "")), _age(pvc, now),
            str(dig(pvc, "spec.volumeMode", "Filesystem"))]


@_table("PersistentVolume",
        "NAME|CAPACITY|ACCESS MODES|RECLAIM POLICY|STATUS|CLAIM|STORAGECLASS|REASON|AGE",
        "VOLUMEMODE")
def _pv(pv: Obj, now: datetime) -> list[str]:
    claim = dig(pv, "spec.claimRef")
    claim_text = f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else ""
    phase = str(dig(pv, "status.phase", ""))
    if dig(pv, "metadata.deletionTimestamp") is not None:
        phase = "Terminating"
    return [_name(pv), str(dig(pv, "spec.capacity", {}).get("storage", "")),
            access_modes(items(pv, "spec.accessModes")),
            str(dig(pv, "spec.persistentVolumeReclaimPolicy", "")), phase, claim_text,
            str(dig(pv, "spec.storageClassName", "")), str(dig(pv, "status.reason", "")),
            _age(pv, now), str(dig(pv, "spec.volumeMode", "Filesystem"))]


# --- apps --------------------------------------------------------------------------------

@_table("Deployment", "NAME|READY|UP-TO-DATE|AVAILABLE|AGE", "CONTAINERS|IMAGES|SELECTOR")
def _deployment(d: Obj, now: datetime) -> list[str]:
    return [_name(d), f"{_int(d, 'status.readyReplicas')}/{_int(d, 'spec.replicas')}",
            str(_int(d, "status.updatedReplicas")), str(_int(d, "status.availableReplicas")),
            _age(d, now), *_template_columns(dig(d, "spec.template.spec")),
            format_selector(dig(d, "spec.selector"))]


@_table("ReplicaSet", "NAME|DESIRED|CURRENT|READY|AGE", "CONTAINERS|IMAGES|SELECTOR")
def _replicaset(rs: Obj, now: datetime) -> list[str]:
    return [_name(rs), str(_int(rs, "spec.replicas")), str(_int(rs, "status.replicas")),
            str(_int(rs, "status.readyReplicas")), _age(rs, now),
            *_template_columns(dig(rs, "spec.template.spec")),
            format_selector(dig(rs, "spec.selector"))]


@_table("DaemonSet", "NAME|DESIRED|CURRENT|READY|UP-TO-DATE|AVAILABLE|NODE SELECTOR|AGE",
        "CONTAINERS|IMAGES|SELECTOR")
def _daemonset(ds: Obj, now: datetime) -> list[str]:
    return [_name(ds), str(_int(ds, "status.desiredNumberScheduled")),
            str(_int(ds, "status.currentNumberScheduled")), str(_int(ds, "status.numberReady")),
            str(_int(ds, "status.updatedNumberScheduled")),
            str(_int(ds, "status.numberAvailable")),
            format_labels(dig(ds, "spec.template.spec.nodeSelector")), _age(ds, now),
            *_template_columns(dig(ds, "spec.template.spec")),
            format_selector(dig(ds, "spec.selector"))]


@_table("StatefulSet", "NAME|READY|AGE", "CONTAINERS|IMAGES")
def _statefulset(sts: Obj, now: datetime) -> list[str]:
    return [_name(sts), f"{_int(sts, 'status.readyReplicas')}/{_int(sts, 'spec.replicas')}",
            _age(sts, now), *_template_columns(dig(sts, "spec.template.spec"))]


@_table("ControllerRevision", "NAME|CONTROLLER|REVISION|AGE")
def _controllerrevision(cr: Obj, now: datetime) -> list[str]:
    controller = "<none>"
    for ref in items(cr, "metadata.ownerReferences"):
        if ref.get("controller"):
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            kind = str(ref.get("kind", "")).lower() + (f".{group}" if group else "")
            controller = f"{kind}/{ref.get('name', '')}"
    return [_name(cr), controller, str(_int(cr, "revision")), _age(cr, now)]


# --- batch -------------------------------------------------------------------------------

def _has_condition(obj: Obj, cond_type: str) -> bool:
    return any(c.get("type") == cond_type and c.get("status") == "True"
               for c in items(obj, "status.conditions"))


def _job_status(job: Obj) -> str:
    if _has_condition(job, "Complete"):
        return "Complete"
    if _has_condition(job, "Failed"):
        return "Failed"
    if dig(job, "metadata.deletionTimestamp") is not None:
        return "Terminating"
    if _has_condition(job, "Suspended"):
        return "Suspended"
    if _has_condition(job, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _job_completions(job: Obj) -> str:
    succeeded = _int(job, "status.succeeded")
    completions = dig(job, "spec.completions")
    if completions is not None:
        return f"{succeeded}/{completions}"
    parallelism = _int(job, "spec.parallelism")
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _job_duration(job: Obj, now: datetime) -> str:
    start = parse_time(dig(job, "status.startTime"))
    if start is None:
        return ""
    end = parse_time(dig(job, "status.completionTime")) or now
    return human_duration((end - start).total_seconds())


@_table("Job", "NAME|STATUS|COMPLETIONS|DURATION|AGE", "CONTAINERS|IMAGES|SELECTOR")
def _job(job: Obj, now: datetime) -> list[str]:
    return [_name(job), _job_status(job), _job_completions(job), _job_duration(job, now),
            _age(job, now), *_template_columns(dig(job, "spec.template.spec")),
            format_selector(dig(job, "spec.selector"))]


@_table("CronJob", "NAME|SCHEDULE|TIMEZONE|SUSPEND|ACTIVE|LAST SCHEDULE|AGE",
        "CONTAINERS|IMAGES|SELECTOR")
def _cronjob(cj: Obj, now: datetime) -> list[str]:
    last = dig(cj, "status.lastScheduleTime")
    return [_name(cj), str(dig(cj, "spec.schedule", "")),
            none_if_empty(dig(cj, "spec.timeZone")),
            "True" if dig(cj, "spec.suspend") else "False", str(len(items(cj, "status.active"))),
            age(last, now) if last else "<none>", _age(cj, now),
            *_template_columns(dig(cj, "spec.jobTemplate.spec.template.spec")),
            format_selector(dig(cj, "spec.jobTemplate.spec.selector"))]


# --- autoscaling, coordination --------------------------------------------------------

def _metric_value(value: Obj | None, percent: bool) -> str:
    if not value:
        return "<unknown>"
    if percent and value.get("averageUtilization") is not None:
        return f"{value['averageUtilization']}%"
    return str(value.get("averageValue") or value.get("value") or "<unknown>")


def _hpa_target(metric: Obj, current: Obj | None) -> str:
    metric_type = str(metric.get("type", ""))
    source = metric.get(metric_type[:1].lower() + metric_type[1:]) or {}
    target = source.get("target") or {}
    current_source = (current or {}).get(metric_type[:1].lower() + metric_type[1:]) or {}
    now_value = current_source.get("current")
    percent = target.get("type") == "Utilization" or "averageUtilization" in target
    text = f"{_metric_value(now_value, percent)}/{_metric_value(target, percent)}"
    if metric_type in ("Resource", "ContainerResource"):
        return f"{source.get('name', '')}: {text}"
    return text


def _hpa_targets(hpa: Obj) -> str:
    metrics = items(hpa, "spec.metrics")
    if not metrics:
        return "<none>"
    currents = items(hpa, "status.currentMetrics")
    shown = []
    for index, metric in enumerate(metrics):
        current = currents[index] if index < len(currents) else None
        shown.append(_hpa_target(metric, current))
    if len(shown) > 2:
        return f"{', '.join(shown[:2])} + {len(shown) - 2} more..."
    return ", ".join(shown)


@_table("HorizontalPodAutoscaler", "NAME|REFERENCE|TARGETS|MINPODS|MAXPODS|REPLICAS|AGE")
def _hpa(hpa: Obj, now: datetime) -> list[str]:
    ref = dig(hpa, "spec.scaleTargetRef", {})
    return [_name(hpa), f"{ref.get('kind', '')}/{ref.get('name', '')}", _hpa_targets(hpa),
            str(dig(hpa, "spec.minReplicas", "<unset>")), str(_int(hpa, "spec.maxReplicas")),
            str(_int(hpa, "status.currentReplicas")), _age(hpa, now)]


@_table("PodMetrics", "NAME|CPU|MEMORY|WINDOW")
def _pod_metrics(metrics: Obj, now: datetime) -> list[str]:
    """As metrics-server's table: each resource summed over the containers."""
    return [_name(metrics), _usage_sum(metrics, "cpu"), _usage_sum(metrics, "memory"),
            _window(dig(metrics, "window", ""))]


def _usage_sum(metrics: Obj, resource: str) -> str:
    total = Quantity(Fraction(0))
    for container in items(metrics, "containers"):
        value = dig(container, "usage", {}).get(resource)
        if value is None:
            continue
        try:
            total = total + parse_quantity(value)
        except QuantityError:
            return "<invalid>"
    return str(total)


def _window(text: object) -> str:
    """A window as protobuf's JSON writes a Duration ("30s", "10.500s"), as Go prints it."""
    if not isinstance(text, str) or not text.endswith("s"):
        return "<none>" if not text else str(text)
    try:
        return go_duration(float(text[:-1]))
    except ValueError:
        return text


# --- policy ------------------------------------------------------------------------------

def int_or_percent(value: object) -> str:
    """An IntOrString field (``1``, ``50%``) as kubectl prints it; ``N/A`` when unset."""
    return "N/A" if value is None or value == "" else str(value)


@_table("PodDisruptionBudget", "NAME|MIN AVAILABLE|MAX UNAVAILABLE|ALLOWED DISRUPTIONS|AGE")
def _pdb(pdb: Obj, now: datetime) -> list[str]:
    return [_name(pdb), int_or_percent(dig(pdb, "spec.minAvailable")),
            int_or_percent(dig(pdb, "spec.maxUnavailable")),
            str(_int(pdb, "status.disruptionsAllowed")), _age(pdb, now)]


@_table("Lease", "NAME|HOLDER|AGE")
def _lease(lease: Obj, now: datetime) -> list[str]:
    return [_name(lease), str(dig(lease, "spec.holderIdentity", "")), _age(lease, now)]


# --- rbac --------------------------------------------------------------------------------

def created_at(obj: Obj) -> str:
    """CREATED AT: the creation time in UTC as RFC 3339 (the API server's default table,
    which Roles and ClusterRoles get); Go's zero time when absent."""
    when = parse_time(dig(obj, "metadata.creationTimestamp"))
    if when is None:
        return "0001-01-01T00:00:00Z"
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@_table("Role", "NAME|CREATED AT")
def _role(role: Obj, now: datetime) -> list[str]:
    return [_name(role), created_at(role)]


@_table("ClusterRole", "NAME|CREATED AT")
def _clusterrole(role: Obj, now: datetime) -> list[str]:
    return [_name(role), created_at(role)]


def subjects_strings(subjects: Sequence[Obj]) -> tuple[str, str, str]:
    """USERS, GROUPS and SERVICEACCOUNTS (``namespace/name``), each joined by ``, ``, as
    Kubernetes' rbac.SubjectsStrings; subjects of other kinds are not shown."""
    users, groups, accounts = [], [], []
    for subject in subjects:
        kind, name = subject.get("kind", ""), str(subject.get("name", ""))
        if kind == "ServiceAccount":
            accounts.append(f"{subject.get('namespace', '')}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return ", ".join(users), ", ".join(groups), ", ".join(accounts)


def _binding(binding: Obj, now: datetime) -> list[str]:
    ref = dig(binding, "roleRef", {})
    return [_name(binding), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            _age(binding, now), *subjects_strings(items(binding, "subjects"))]


_table("RoleBinding", "NAME|ROLE|AGE", "USERS|GROUPS|SERVICEACCOUNTS")(_binding)
_table("ClusterRoleBinding", "NAME|ROLE|AGE", "USERS|GROUPS|SERVICEACCOUNTS")(_binding)

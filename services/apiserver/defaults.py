"""Defaulting: the values Kubernetes fills in for fields a manifest leaves out.

``apply(kind, obj)`` runs before validation on every create and update (strategy.py), so:

- it is idempotent: applying it twice leaves the object as applying it once does (an
  update whose client echoed a defaulted object back must compare equal to the stored one);
- it only fills what is unset, never overrides a value the user gave, with two
  normalisations Kubernetes also makes: Secret ``stringData`` is merged into ``data``, and
  resource quantities are written in canonical form (``0.5`` → ``500m``);
- pod-only defaults (requests from limits, enableServiceLinks, priority, the service
  account) apply to Pods, not to pod templates: pods created from a template get them
  when they are created themselves.

Server-generated values that Kubernetes sets outside its defaulters are here too: a
Job's selector and the labels that go with it, a Namespace's ``kubernetes`` finalizer
and ``kubernetes.io/metadata.name`` label, Service IP families.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, TypeVar

from google.protobuf.message import Message

from navarch import _quantity
from navarch.v1 import apps_pb2, autoscaling_pb2, batch_pb2, core_pb2, rbac_pb2

from .validation.batch import CONTROLLER_UID_LABEL, job_labels
from .validation.rbac import RBAC_GROUP
from .validation.volumes import SOURCES as VOLUME_SOURCES

__all__ = ["apply"]

M = TypeVar("M", bound=Message)

DEFAULT_SCHEDULER = "default-scheduler"
DEFAULT_GRACE_SECONDS = 30
DEFAULT_MODE = 0o644
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
_AFFINITY_SECONDS = 10800
_MAX_LABEL_VALUE = 63
_TOKEN_SECONDS = 3600

_DEFAULTERS: dict[str, Callable[[Any], None]] = {}


def _defaults(kind: str, message: type[M]) -> Callable[[Callable[[M], None]],
                                                        Callable[[M], None]]:
    def register(fn: Callable[[M], None]) -> Callable[[M], None]:
        def checked(obj: Message) -> None:
            if not isinstance(obj, message):
                raise TypeError(f"{kind} defaults apply to {message.DESCRIPTOR.full_name}, "
                                f"got {obj.DESCRIPTOR.full_name}")
            fn(obj)
        _DEFAULTERS[kind] = checked
        return fn
    return register


def apply(kind: str, obj: Message) -> None:
    """Fill in the defaults of ``obj`` (a ``kind``), in place. Idempotent."""
    defaulter = _DEFAULTERS.get(kind)
    if defaulter is not None:
        defaulter(obj)


# --- shared pieces -------------------------------------------------------------------------

def _canonical_quantities(values: MutableMapping[str, str]) -> None:
    """Write every parseable quantity in canonical form, rounded up to a thousandth (as
    Kubernetes stores resource lists); leave the rest for validation to report."""
    for name, text in list(values.items()):
        try:
            quantity = _quantity.parse_quantity(text)
        except _quantity.QuantityError:
            continue
        if quantity.milli_value() != quantity.amount * 1000:
            quantity = _quantity.Quantity.from_milli(quantity.milli_value(), quantity.format)
        values[name] = str(quantity)


def _image_tag(image: str) -> str:
    """The tag of an image reference ("latest" when it has neither tag nor digest; none
    for a digest or no image at all)."""
    if not image or "@" in image:
        return ""
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


def _set_if_unset(msg: Message, name: str, value: object) -> None:
    if not msg.HasField(name):
        setattr(msg, name, value)


def _http_get(action: core_pb2.HTTPGetAction) -> None:
    action.path = action.path or "/"
    action.scheme = action.scheme or "HTTP"


def _probe(probe: core_pb2.Probe) -> None:
    probe.timeout_seconds = probe.timeout_seconds or 1
    probe.period_seconds = probe.period_seconds or 10
    probe.success_threshold = probe.success_threshold or 1
    probe.failure_threshold = probe.failure_threshold or 3
    if probe.HasField("http_get"):
        _http_get(probe.http_get)


def _field_ref(ref: core_pb2.ObjectFieldSelector) -> None:
    ref.api_version = ref.api_version or "v1"


def _container(ctr: core_pb2.Container) -> None:
    if not ctr.image_pull_policy:
        ctr.image_pull_policy = "Always" if _image_tag(ctr.image) == "latest" else "IfNotPresent"
    ctr.termination_message_path = ctr.termination_message_path or "/dev/termination-log"
    ctr.termination_message_policy = ctr.termination_message_policy or "File"
    for port in ctr.ports:
        port.protocol = port.protocol or "TCP"
    for var in ctr.env:
        if var.value_from.HasField("field_ref"):
            _field_ref(var.value_from.field_ref)
    for name in ("liveness_probe", "readiness_probe", "startup_probe"):
        if ctr.HasField(name):
            _probe(getattr(ctr, name))
    if ctr.HasField("lifecycle"):
        for handler in (ctr.lifecycle.post_start, ctr.lifecycle.pre_stop):
            if handler.HasField("http_get"):
                _http_get(handler.http_get)
    if ctr.HasField("resources"):
        _canonical_quantities(ctr.resources.limits)
        _canonical_quantities(ctr.resources.requests)


def _volume(vol: core_pb2.Volume) -> None:
    if not any(vol.HasField(name) for name, _ in VOLUME_SOURCES):
        vol.empty_dir.SetInParent()
    for name in ("secret", "config_map", "downward_api", "projected"):
        if vol.HasField(name):
            _set_if_unset(getattr(vol, name), "default_mode", DEFAULT_MODE)
    if vol.HasField("host_path"):
        _set_if_unset(vol.host_path, "type", "")
    for item in vol.downward_api.items:
        if item.HasField("field_ref"):
            _field_ref(item.field_ref)
    for source in vol.projected.sources:
        for item in source.downward_api.items:
            if item.HasField("field_ref"):
                _field_ref(item.field_ref)
        if source.HasField("service_account_token"):
            _set_if_unset(source.service_account_token, "expiration_seconds", _TOKEN_SECONDS)


def _pod_spec(spec: core_pb2.PodSpec, *, restart_policy: bool = True) -> None:
    """Kubernetes' PodSpec defaults; ``restart_policy=False`` for Job templates, which must
    say OnFailure or Never themselves."""
    spec.dns_policy = spec.dns_policy or "ClusterFirst"
    if restart_policy:
        spec.restart_policy = spec.restart_policy or "Always"
    spec.security_context.SetInParent()
    _set_if_unset(spec, "termination_grace_period_seconds", DEFAULT_GRACE_SECONDS)
    spec.scheduler_name = spec.scheduler_name or DEFAULT_SCHEDULER
    for ctr in [*spec.init_containers, *spec.containers]:
        _container(ctr)
    for vol in spec.volumes:
        _volume(vol)
    _canonical_quantities(spec.overhead)


def _template(template: core_pb2.PodTemplateSpec, *, restart_policy: bool = True) -> None:
    _pod_spec(template.spec, restart_policy=restart_policy)


# --- core kinds ----------------------------------------------------------------------------

@_defaults("Pod", core_pb2.Pod)
def _pod(pod: core_pb2.Pod) -> None:
    spec = pod.spec
    _pod_spec(spec)
    for ctr in [*spec.init_containers, *spec.containers]:
        for name, limit in ctr.resources.limits.items():
            ctr.resources.requests.setdefault(name, limit)
        if spec.host_network:
            for port in ctr.ports:
                port.host_port = port.host_port or port.container_port
    _set_if_unset(spec, "enable_service_links", True)
    _set_if_unset(spec, "priority", 0)
    spec.service_account_name = spec.service_account_name or spec.service_account or "default"
    spec.service_account = spec.service_account_name
    _default_toleration_seconds(spec)


DEFAULT_TOLERATION_SECONDS = 300
_NOT_READY_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def _default_toleration_seconds(spec: core_pb2.PodSpec) -> None:
    """Kubernetes' DefaultTolerationSeconds admission: a pod that does not tolerate the
    not-ready/unreachable NoExecute taints itself tolerates them for 300 s."""
    for key in _NOT_READY_TAINTS:
        if any(t.key in (key, "") and t.effect in ("NoExecute", "") for t in spec.tolerations):
            continue
        spec.tolerations.add(key=key, operator="Exists", effect="NoExecute",
                             toleration_seconds=DEFAULT_TOLERATION_SECONDS)


@_defaults("PodTemplate", core_pb2.PodTemplate)
def _pod_template(obj: core_pb2.PodTemplate) -> None:
    _template(obj.template)


@_defaults("Service", core_pb2.Service)
def _service(svc: core_pb2.Service) -> None:
    spec = svc.spec
    spec.session_affinity = spec.session_affinity or "None"
    if spec.session_affinity == "None":
        spec.ClearField("session_affinity_config")
    elif spec.session_affinity == "ClientIP":
        _set_if_unset(spec.session_affinity_config.client_ip, "timeout_seconds",
                      _AFFINITY_SECONDS)
    spec.type = spec.type or "ClusterIP"
    for port in spec.ports:
        port.protocol = port.protocol or "TCP"
        if port.target_port in ("", "0"):
            port.target_port = str(port.port)
    _drop_type_dependent(spec)
    if _externally_accessible(spec):
        spec.external_traffic_policy = spec.external_traffic_policy or "Cluster"
    if spec.type in ("ClusterIP", "NodePort", "LoadBalancer"):
        _set_if_unset(spec, "internal_traffic_policy", "Cluster")
    if spec.type == "LoadBalancer":
        _set_if_unset(spec, "allocate_load_balancer_node_ports", True)
    _ip_families(spec)


def _externally_accessible(spec: core_pb2.ServiceSpec) -> bool:
    return spec.type in ("NodePort", "LoadBalancer") or (
        spec.type == "ClusterIP" and bool(spec.external_ips))


def _drop_type_dependent(spec: core_pb2.ServiceSpec) -> None:
    """Clear what the Service's type does not use, so that changing the type of a stored
    Service (whose fields the client echoes back) needs no other edit, as in Kubernetes:
    node ports outside NodePort/LoadBalancer, the cluster IPs of an ExternalName Service,
    the traffic policy of a Service not reachable from outside, the load-balancer fields
    of any other type. The allocator releases what was held."""
    if spec.type not in ("NodePort", "LoadBalancer"):
        for port in spec.ports:
            port.node_port = 0
    if spec.type == "ExternalName":
        spec.cluster_ip = ""
        spec.ClearField("cluster_ips")
    if not _externally_accessible(spec):
        spec.external_traffic_policy = ""
    if spec.type != "LoadBalancer":
        spec.ClearField("allocate_load_balancer_node_ports")
        spec.health_check_node_port = 0


def _ip_families(spec: core_pb2.ServiceSpec) -> None:
    """Single-stack by default, in the family of a requested clusterIP (IPv4 otherwise);
    an ExternalName Service has no IPs, so no families."""
    if spec.type == "ExternalName":
        spec.ClearField("ip_families")
        spec.ClearField("ip_family_policy")
        return
    _set_if_unset(spec, "ip_family_policy", "SingleStack")
    if not spec.ip_families:
        ip = spec.cluster_ips[0] if spec.cluster_ips else spec.cluster_ip
        spec.ip_families.append("IPv6" if ":" in ip else "IPv4")


@_defaults("Endpoints", core_pb2.Endpoints)
def _endpoints(ep: core_pb2.Endpoints) -> None:
    for subset in ep.subsets:
        for port in subset.ports:
            port.protocol = port.protocol or "TCP"


@_defaults("Secret", core_pb2.Secret)
def _secret(secret: core_pb2.Secret) -> None:
    secret.type = secret.type or "Opaque"
    for key, value in secret.string_data.items():
        secret.data[key] = value.encode()
    secret.ClearField("string_data")


@_defaults("Namespace", core_pb2.Namespace)
def _namespace(ns: core_pb2.Namespace) -> None:
    meta = ns.metadata
    if meta.name:
        meta.labels[NAMESPACE_NAME_LABEL] = meta.name
    # Only while the namespace lives: the namespace controller empties spec.finalizers of
    # a namespace being deleted, and that update must not put the finalizer back.
    if not ns.spec.finalizers and not meta.HasField("deletion_timestamp"):
        ns.spec.finalizers.append("kubernetes")
    ns.status.phase = ns.status.phase or "Active"


@_defaults("Node", core_pb2.Node)
def _node(node: core_pb2.Node) -> None:
    status = node.status
    if not status.allocatable:
        status.allocatable.update(status.capacity)
    _canonical_quantities(status.capacity)
    _canonical_quantities(status.allocatable)


@_defaults("PersistentVolume", core_pb2.PersistentVolume)
def _persistent_volume(pv: core_pb2.PersistentVolume) -> None:
    pv.spec.persistent_volume_reclaim_policy = pv.spec.persistent_volume_reclaim_policy or "Retain"
    _set_if_unset(pv.spec, "volume_mode", "Filesystem")
    _canonical_quantities(pv.spec.capacity)
    pv.status.phase = pv.status.phase or "Pending"


def _claim(pvc: core_pb2.PersistentVolumeClaim) -> None:
    _set_if_unset(pvc.spec, "volume_mode", "Filesystem")
    _canonical_quantities(pvc.spec.resources.requests)
    _canonical_quantities(pvc.spec.resources.limits)
    pvc.status.phase = pvc.status.phase or "Pending"


_defaults("PersistentVolumeClaim", core_pb2.PersistentVolumeClaim)(_claim)


# --- apps ----------------------------------------------------------------------------------

@_defaults("Deployment", apps_pb2.Deployment)
def _deployment(obj: apps_pb2.Deployment) -> None:
    spec = obj.spec
    _set_if_unset(spec, "replicas", 1)
    strategy = spec.strategy
    strategy.type = strategy.type or "RollingUpdate"
    if strategy.type == "RollingUpdate":
        rolling = strategy.rolling_update
        rolling.max_unavailable = rolling.max_unavailable or "25%"
        rolling.max_surge = rolling.max_surge or "25%"
    _set_if_unset(spec, "revision_history_limit", 10)
    _set_if_unset(spec, "progress_deadline_seconds", 600)
    _template(spec.template)


@_defaults("ReplicaSet", apps_pb2.ReplicaSet)
def _replica_set(obj: apps_pb2.ReplicaSet) -> None:
    _set_if_unset(obj.spec, "replicas", 1)
    _template(obj.spec.template)


@_defaults("DaemonSet", apps_pb2.DaemonSet)
def _daemon_set(obj: apps_pb2.DaemonSet) -> None:
    strategy = obj.spec.update_strategy
    strategy.type = strategy.type or "RollingUpdate"
    if strategy.type == "RollingUpdate":
        rolling = strategy.rolling_update
        rolling.max_unavailable = rolling.max_unavailable or "1"
        rolling.max_surge = rolling.max_surge or "0"
    _set_if_unset(obj.spec, "revision_history_limit", 10)
    _template(obj.spec.template)


@_defaults("StatefulSet", apps_pb2.StatefulSet)
def _stateful_set(obj: apps_pb2.StatefulSet) -> None:
    spec = obj.spec
    spec.pod_management_policy = spec.pod_management_policy or "OrderedReady"
    strategy = spec.update_strategy
    if not strategy.type:
        strategy.type = "RollingUpdate"
        strategy.rolling_update.SetInParent()
    if strategy.type == "RollingUpdate" and strategy.HasField("rolling_update"):
        _set_if_unset(strategy.rolling_update, "partition", 0)
    retention = spec.persistent_volume_claim_retention_policy
    retention.when_deleted = retention.when_deleted or "Retain"
    retention.when_scaled = retention.when_scaled or "Retain"
    _set_if_unset(spec, "replicas", 1)
    _set_if_unset(spec, "revision_history_limit", 10)
    for claim in spec.volume_claim_templates:
        _claim(claim)
    _template(spec.template)


# --- batch ---------------------------------------------------------------------------------

@_defaults("Job", batch_pb2.Job)
def _job(job: batch_pb2.Job) -> None:
    spec = job.spec
    if not spec.HasField("completions") and not spec.HasField("parallelism"):
        spec.completions = 1
    _set_if_unset(spec, "parallelism", 1)
    # Kubernetes: with a per-index backoff limit the Job-wide one no longer bounds retries.
    _set_if_unset(spec, "backoff_limit",
                  2**31 - 1 if spec.HasField("backoff_limit_per_index") else 6)
    _set_if_unset(spec, "completion_mode", "NonIndexed")
    _set_if_unset(spec, "suspend", False)
    _set_if_unset(spec, "pod_replacement_policy",
                  "Failed" if spec.HasField("pod_failure_policy") else "TerminatingOrFailed")
    for rule in spec.pod_failure_policy.rules:
        for pattern in rule.on_pod_conditions:
            pattern.status = pattern.status or "True"
    if not (spec.HasField("manual_selector") and spec.manual_selector):
        _generate_selector(job)
    if not job.metadata.labels:
        job.metadata.labels.update(spec.template.metadata.labels)
    _template(spec.template, restart_policy=False)


def _generate_selector(job: batch_pb2.Job) -> None:
    """Label the template with the Job's uid and name and select on the uid, so that the
    Job only ever owns its own pods. Labels the user set are kept (validation rejects
    wrong values). Does nothing until the server has given the Job a uid."""
    meta, spec = job.metadata, job.spec
    if not meta.uid:
        return
    labels = spec.template.metadata.labels
    for label, value in job_labels(meta.uid, meta.name).items():
        if len(value) <= _MAX_LABEL_VALUE:  # a longer name is reported by validation
            labels.setdefault(label, value)
    spec.selector.match_labels.setdefault(CONTROLLER_UID_LABEL, meta.uid)


@_defaults("CronJob", batch_pb2.CronJob)
def _cron_job(cj: batch_pb2.CronJob) -> None:
    spec = cj.spec
    spec.concurrency_policy = spec.concurrency_policy or "Allow"
    _set_if_unset(spec, "suspend", False)
    _set_if_unset(spec, "successful_jobs_history_limit", 3)
    _set_if_unset(spec, "failed_jobs_history_limit", 1)
    _template(spec.job_template.spec.template, restart_policy=False)


# --- autoscaling ---------------------------------------------------------------------------

_CPU_UTILIZATION = 80


@_defaults("HorizontalPodAutoscaler", autoscaling_pb2.HorizontalPodAutoscaler)
def _hpa(hpa: autoscaling_pb2.HorizontalPodAutoscaler) -> None:
    spec = hpa.spec
    _set_if_unset(spec, "min_replicas", 1)
    if not spec.metrics:
        metric = spec.metrics.add(type="Resource")
        metric.resource.name = "cpu"
        metric.resource.target.type = "Utilization"
        metric.resource.target.average_utilization = _CPU_UTILIZATION
    if spec.HasField("behavior"):
        _scaling_rules(spec.behavior.scale_up, stabilization=0,
                       policies=(("Pods", 4, 15), ("Percent", 100, 15)))
        _scaling_rules(spec.behavior.scale_down, stabilization=None,
                       policies=(("Percent", 100, 15),))


def _scaling_rules(rules: autoscaling_pb2.HPAScalingRules, *, stabilization: int | None,
                   policies: tuple[tuple[str, int, int], ...]) -> None:
    """Kubernetes' rules when behavior is given: scale up fast (4 pods or 100% per 15 s),
    scale down by up to 100% per 15 s after the controller's own stabilization window."""
    if stabilization is not None:
        _set_if_unset(rules, "stabilization_window_seconds", stabilization)
    _set_if_unset(rules, "select_policy", "Max")
    if not rules.policies:
        for kind, value, period in policies:
            rules.policies.add(type=kind, value=value, period_seconds=period)


# --- rbac ----------------------------------------------------------------------------------

def _subjects(subjects: Iterable[rbac_pb2.Subject]) -> None:
    """User and Group subjects are of the rbac group; ServiceAccounts keep ""."""
    for subject in subjects:
        if not subject.api_group and subject.kind in ("User", "Group"):
            subject.api_group = RBAC_GROUP


@_defaults("RoleBinding", rbac_pb2.RoleBinding)
def _role_binding(rb: rbac_pb2.RoleBinding) -> None:
    rb.role_ref.api_group = rb.role_ref.api_group or RBAC_GROUP
    _subjects(rb.subjects)


@_defaults("ClusterRoleBinding", rbac_pb2.ClusterRoleBinding)
def _cluster_role_binding(crb: rbac_pb2.ClusterRoleBinding) -> None:
    crb.role_ref.api_group = crb.role_ref.api_group or RBAC_GROUP
    _subjects(crb.subjects)

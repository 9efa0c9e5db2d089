"""Describe sections about pods: containers, probes, environment, mounts, volumes, pod
templates, and the Pod describer itself."""

from __future__ import annotations

from typing import Any

from navarch._navctl.describe_base import (
    Related,
    Writer,
    controlled_by,
    events,
    labels_and_annotations,
    register,
)
from navarch._navctl.podstatus import pod_summary
from navarch._navctl.values import Obj, dig, items

__all__ = ["container_ports", "pod_template", "pods_status", "probe_text"]


def _bool(value: object) -> str:
    return "True" if value else "False"


def container_ports(ports: list[Obj], field: str) -> str:
    """``80/TCP, 443/TCP`` of ``containerPort`` or ``hostPort``."""
    return ", ".join(f"{p.get(field, 0)}/{p.get('protocol') or 'TCP'}" for p in ports)


def probe_text(probe: Obj) -> str:
    """A probe as describe prints it: ``http-get http://:8080/healthz delay=0s timeout=1s
    period=10s #success=1 #failure=3``."""
    if "httpGet" in probe:
        get = probe["httpGet"]
        host = get.get("host", "")
        port = str(get.get("port", ""))
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        action = f"http-get {str(get.get('scheme') or 'HTTP').lower()}://{where}" \
                 f"{get.get('path', '')}"
    elif "tcpSocket" in probe:
        action = f"tcp-socket {dig(probe, 'tcpSocket.host', '')}:{dig(probe, 'tcpSocket.port', '')}"
    elif "grpc" in probe:
        action = f"grpc <pod>:{dig(probe, 'grpc.port', '')} {dig(probe, 'grpc.service', '')}"
    elif "exec" in probe:
        action = f"exec [{' '.join(str(a) for a in dig(probe, 'exec.command', []))}]"
    else:
        action = "unknown"
    return (f"{action} delay={probe.get('initialDelaySeconds', 0)}s "
            f"timeout={probe.get('timeoutSeconds', 1)}s period={probe.get('periodSeconds', 10)}s "
            f"#success={probe.get('successThreshold', 1)} "
            f"#failure={probe.get('failureThreshold', 3)}")


def _state(w: Writer, level: int, title: str, state: Obj) -> None:
    if "running" in state:
        w.kv(level, title, "Running")
        w.kv(level + 1, "Started", w.time(dig(state, "running.startedAt")))
    elif "terminated" in state:
        term = state["terminated"]
        w.kv(level, title, "Terminated")
        if term.get("reason"):
            w.kv(level + 1, "Reason", term["reason"])
        if term.get("message"):
            w.kv(level + 1, "Message", term["message"])
        w.kv(level + 1, "Exit Code", term.get("exitCode", 0))
        if term.get("signal"):
            w.kv(level + 1, "Signal", term["signal"])
        w.kv(level + 1, "Started", w.time(term.get("startedAt")))
        w.kv(level + 1, "Finished", w.time(term.get("finishedAt")))
    else:
        w.kv(level, title, "Waiting")
        if dig(state, "waiting.reason"):
            w.kv(level + 1, "Reason", state["waiting"]["reason"])


def _env_value(env: Obj) -> str:
    if "value" in env:
        return str(env["value"])
    source = env.get("valueFrom") or {}
    if "fieldRef" in source:
        ref = source["fieldRef"]
        return f" ({ref.get('apiVersion', 'v1')}:{ref.get('fieldPath', '')})"
    if "resourceFieldRef" in source:
        ref = source["resourceFieldRef"]
        return f"{ref.get('resource', '')} ({ref.get('containerName', '')})"
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        return (f"<set to the key '{ref.get('key', '')}' of config map '{ref.get('name', '')}'>"
                f"\tOptional: {str(bool(ref.get('optional'))).lower()}")
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        return (f"<set to the key '{ref.get('key', '')}' in secret '{ref.get('name', '')}'>"
                f"\tOptional: {str(bool(ref.get('optional'))).lower()}")
    return ""


def _resources(w: Writer, level: int, container: Obj) -> None:
    for title, key in (("Limits", "limits"), ("Requests", "requests")):
        values: dict[str, Any] = dig(container, f"resources.{key}", {})
        if values:
            w.line(level, f"{title}:")
            for name in sorted(values):
                w.kv(level + 1, name, values[name])


def _environment(w: Writer, level: int, container: Obj) -> None:
    for source in items(container, "envFrom"):
        ref_kind, ref = (("ConfigMap", source["configMapRef"]) if "configMapRef" in source
                         else ("Secret", source.get("secretRef") or {}))
        w.line(level, "Environment Variables from:")
        w.line(level + 1, f"{ref.get('name', '')}\t{ref_kind}\tOptional: "
                          f"{str(bool(ref.get('optional'))).lower()}")
    env = items(container, "env")
    if not env:
        w.kv(level, "Environment", "<none>")
        return
    w.line(level, "Environment:")
    for var in env:
        w.kv(level + 1, var.get("name", ""), _env_value(var))


def _mounts(w: Writer, level: int, container: Obj) -> None:
    mounts = items(container, "volumeMounts")
    if not mounts:
        w.kv(level, "Mounts", "<none>")
        return
    w.line(level, "Mounts:")
    for mount in sorted(mounts, key=lambda m: str(m.get("mountPath", ""))):
        flags = ["ro" if mount.get("readOnly") else "rw"]
        if mount.get("subPath"):
            flags.append(f'path="{mount["subPath"]}"')
        w.line(level + 1, f"{mount.get('mountPath', '')} from {mount.get('name', '')} "
                          f"({','.join(flags)})")


def containers(w: Writer, specs: list[Obj], statuses: list[Obj], *, title: str,
               title_level: int, name_prefix: str = "") -> None:
    """A Containers (or Init Containers) section; with statuses for a pod."""
    by_name = {s.get("name"): s for s in statuses}
    w.line(title_level, f"{title}:")
    for container in specs:
        w.line(1, f"{name_prefix}{container.get('name', '')}:")
        status = by_name.get(container.get("name"))
        if status is not None:
            w.kv(2, "Container ID", status.get("containerID", ""))
        w.kv(2, "Image", container.get("image", ""))
        if status is not None:
            w.kv(2, "Image ID", status.get("imageID", ""))
        ports = items(container, "ports")
        plural = "s" if len(ports) > 1 else ""
        w.kv(2, f"Port{plural}", container_ports(ports, "containerPort") or "<none>")
        w.kv(2, f"Host Port{plural}", container_ports(ports, "hostPort") or "<none>")
        for key, label in (("command", "Command"), ("args", "Args")):
            if container.get(key):
                w.line(2, f"{label}:")
                for arg in container[key]:
                    w.line(3, str(arg))
        if status is not None:
            _state(w, 2, "State", status.get("state") or {})
            if status.get("lastState"):
                _state(w, 2, "Last State", status["lastState"])
            w.kv(2, "Ready", _bool(status.get("ready")))
            w.kv(2, "Restart Count", status.get("restartCount", 0))
        _resources(w, 2, container)
        for key, label in (("livenessProbe", "Liveness"), ("readinessProbe", "Readiness"),
                           ("startupProbe", "Startup")):
            if container.get(key):
                w.kv(2, label, probe_text(container[key]))
        _environment(w, 2, container)
        _mounts(w, 2, container)


_VOLUME_TYPES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "emptyDir": ("EmptyDir (a temporary directory that shares a pod's lifetime)",
                 (("Medium", "medium"), ("SizeLimit", "sizeLimit"))),
    "hostPath": ("HostPath (bare host directory volume)",
                 (("Path", "path"), ("HostPathType", "type"))),
    "configMap": ("ConfigMap (a volume populated by a ConfigMap)",
                  (("Name", "name"), ("Optional", "optional"))),
    "secret": ("Secret (a volume populated by a Secret)",
               (("SecretName", "secretName"), ("Optional", "optional"))),
    "persistentVolumeClaim": (
        "PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)",
        (("ClaimName", "claimName"), ("ReadOnly", "readOnly"))),
    "nfs": ("NFS (an NFS mount that lasts the lifetime of a pod)",
            (("Server", "server"), ("Path", "path"), ("ReadOnly", "readOnly"))),
    "downwardAPI": ("DownwardAPI (a volume populated by information about the pod)", ()),
    "projected": ("Projected (a volume that contains injected data from multiple sources)",
                  ()),
}
_UNSET_DEFAULTS = {"sizeLimit": "<unset>", "optional": "false", "readOnly": "false"}


def volumes(w: Writer, level: int, found: list[Obj]) -> None:
    """The Volumes section."""
    if not found:
        w.kv(level, "Volumes", "<none>")
        return
    w.line(level, "Volumes:")
    for volume in found:
        w.line(level + 1, f"{volume.get('name', '')}:")
        source = next((k for k in _VOLUME_TYPES if k in volume), None)
        if source is None:
            w.kv(level + 2, "Type", "<unknown>")
            continue
        description, fields = _VOLUME_TYPES[source]
        w.kv(level + 2, "Type", description)
        for label, key in fields:
            value = volume[source].get(key, _UNSET_DEFAULTS.get(key, ""))
            w.kv(level + 2, label, str(value).lower() if isinstance(value, bool) else value)


def pod_template(w: Writer, template: Obj) -> None:
    """The ``Pod Template:`` section of a workload."""
    spec = template.get("spec") or {}
    w.line(0, "Pod Template:")
    w.mapping(1, "Labels", dig(template, "metadata.labels"))
    annotations = dig(template, "metadata.annotations")
    if annotations:
        w.mapping(1, "Annotations", annotations, sep=": ")
    if spec.get("serviceAccountName"):
        w.kv(1, "Service Account", spec["serviceAccountName"])
    if items(spec, "initContainers"):
        containers(w, items(spec, "initContainers"), [], title="Init Containers",
                   title_level=1, name_prefix=" ")
    containers(w, items(spec, "containers"), [], title="Containers", title_level=1,
               name_prefix=" ")
    volumes(w, 1, items(spec, "volumes"))
    if spec.get("nodeSelector"):
        w.mapping(1, "Node-Selectors", spec["nodeSelector"])
    if items(spec, "tolerations"):
        w.listing(1, "Tolerations", [toleration_text(t) for t in items(spec, "tolerations")])


def pods_status(pods: list[Obj]) -> str:
    """``3 Running / 0 Waiting / 0 Succeeded / 0 Failed`` of a workload's pods."""
    counts = {"Running": 0, "Pending": 0, "Succeeded": 0, "Failed": 0}
    for pod in pods:
        phase = str(dig(pod, "status.phase", "Pending"))
        if phase in counts:
            counts[phase] += 1
    return (f"{counts['Running']} Running / {counts['Pending']} Waiting / "
            f"{counts['Succeeded']} Succeeded / {counts['Failed']} Failed")


def toleration_text(toleration: Obj) -> str:
    """``key=value:Effect op=Exists for 300s``, as describe prints a toleration."""
    text = str(toleration.get("key", ""))
    if toleration.get("value"):
        text += f"={toleration['value']}"
    if toleration.get("effect"):
        text += f":{toleration['effect']}"
    if toleration.get("operator") == "Exists" and not toleration.get("value"):
        text += " op=Exists" if text else "op=Exists"
    if toleration.get("tolerationSeconds") is not None:
        text += f" for {toleration['tolerationSeconds']}s"
    return text


def _pod_status_lines(w: Writer, pod: Obj) -> None:
    status = pod.get("status") or {}
    deleting = dig(pod, "metadata.deletionTimestamp")
    if deleting:
        grace = dig(pod, "metadata.deletionGracePeriodSeconds", 0)
        w.kv(0, "Status", f"Terminating (lasts {w.age(deleting)})")
        w.kv(0, "Termination Grace Period", f"{grace}s")
    else:
        w.kv(0, "Status", pod_summary(pod).status if status.get("phase") else "Pending")
    if status.get("reason"):
        w.kv(0, "Reason", status["reason"])
    if status.get("message"):
        w.kv(0, "Message", status["message"])
    w.kv(0, "IP", status.get("podIP", ""))
    ips = [str(ip.get("ip", "")) for ip in status.get("podIPs") or []]
    if ips:
        w.line(0, "IPs:")
        for ip in ips:
            w.kv(1, "IP", ip)
    else:
        w.kv(0, "IPs", "<none>")


@register("Pod")
def describe_pod(w: Writer, pod: Obj, related: Related) -> None:
    """Describe a Pod."""
    spec = pod.get("spec") or {}
    w.kv(0, "Name", dig(pod, "metadata.name", ""))
    w.kv(0, "Namespace", dig(pod, "metadata.namespace", ""))
    w.kv(0, "Priority", spec.get("priority", 0))
    if spec.get("priorityClassName"):
        w.kv(0, "Priority Class Name", spec["priorityClassName"])
    w.kv(0, "Service Account", spec.get("serviceAccountName", ""))
    node = spec.get("nodeName")
    host_ip = dig(pod, "status.hostIP")
    w.kv(0, "Node", f"{node}/{host_ip or ''}" if node else "<none>")
    start = dig(pod, "status.startTime")
    if start:
        w.kv(0, "Start Time", w.time(start))
    labels_and_annotations(w, pod)
    _pod_status_lines(w, pod)
    controlled_by(w, pod)
    if dig(pod, "status.nominatedNodeName"):
        w.kv(0, "NominatedNodeName", dig(pod, "status.nominatedNodeName"))
    if items(spec, "initContainers"):
        containers(w, items(spec, "initContainers"), items(pod, "status.initContainerStatuses"),
                   title="Init Containers", title_level=0)
    containers(w, items(spec, "containers"), items(pod, "status.containerStatuses"),
               title="Containers", title_level=0)
    _pod_conditions(w, pod)
    volumes(w, 0, items(spec, "volumes"))
    w.kv(0, "QoS Class", dig(pod, "status.qosClass", ""))
    w.mapping(0, "Node-Selectors", spec.get("nodeSelector"))
    w.listing(0, "Tolerations", [toleration_text(t) for t in items(spec, "tolerations")])
    events(w, related.events)


def _pod_conditions(w: Writer, pod: Obj) -> None:
    found = items(pod, "status.conditions")
    if not found:
        return
    w.line(0, "Conditions:")
    w.line(1, "Type\tStatus")
    for cond in found:
        # kubectl leaves a space after each cell here; keep it for identical output
        w.line(1, f"{cond.get('type', '')} \t{cond.get('status', '')} ")

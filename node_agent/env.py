"""Pure: a container's environment, built as kubelet builds it.

Order (later wins for a repeated name): the Services' docker-link variables, then
``envFrom`` sources in order, then ``env`` in order. ``$(VAR)`` in an ``env`` value, and
in ``command``/``args``, expands to a variable defined before it (``$$`` is a literal
``$``; an unknown reference is left as written). ``valueFrom`` reads ConfigMaps and
Secrets (through an ``ObjectLookup`` the caller filled first), the downward API
(``fieldRef``) and the container's resources (``resourceFieldRef``).

Errors a user can act on raise ``ConfigError``, worded as kubelet words them; the pod
then waits with reason CreateContainerConfigError.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from navarch._quantity import QuantityError, parse_quantity
from navarch.v1 import core_pb2

__all__ = ["ConfigError", "ObjectLookup", "container_env", "expand", "field_value",
           "resource_value", "service_env"]

CONFIG_ERROR = "CreateContainerConfigError"


class ConfigError(Exception):
    """A container cannot be configured: a missing ConfigMap, Secret or key, a bad field."""

    def __init__(self, message: str, reason: str = CONFIG_ERROR) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ObjectLookup(Protocol):
    """ConfigMaps and Secrets by namespace and name (None: not found)."""

    def config_map(self, namespace: str, name: str) -> core_pb2.ConfigMap | None: ...

    def secret(self, namespace: str, name: str) -> core_pb2.Secret | None: ...


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined names are replaced, ``$$`` becomes ``$``,
    anything else (an unknown name, an unclosed ``$(``) stays as written."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close == -1:
                out.append(text[i:])
                break
            name = text[i + 2:close]
            out.append(variables[name] if name in variables else text[i:close + 1])
            i = close + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _env_name(service: str) -> str:
    return service.upper().replace("-", "_").replace(".", "_")


def service_env(services: Iterable[core_pb2.Service], enable_links: bool = True
                ) -> list[tuple[str, str]]:
    """Docker-link style variables of every Service with a cluster IP, sorted by name:
    ``{NAME}_SERVICE_HOST``, ``{NAME}_SERVICE_PORT``, ``{NAME}_SERVICE_PORT_{PORT}``,
    ``{NAME}_PORT`` and ``{NAME}_PORT_{port}_{PROTO}[_PROTO|_PORT|_ADDR]``.
    ``enable_links`` False keeps only the ``kubernetes`` service of ``default``."""
    out: list[tuple[str, str]] = []
    for svc in sorted(services, key=lambda s: (s.metadata.namespace, s.metadata.name)):
        ip = svc.spec.cluster_ip
        if not ip or ip == "None" or not svc.spec.ports:
            continue
        if not enable_links and not (svc.metadata.name == "kubernetes"
                                     and svc.metadata.namespace == "default"):
            continue
        name = _env_name(svc.metadata.name)
        first = svc.spec.ports[0]
        out.append((f"{name}_SERVICE_HOST", ip))
        out.append((f"{name}_SERVICE_PORT", str(first.port)))
        for port in svc.spec.ports:
            if port.name:
                out.append((f"{name}_SERVICE_PORT_{_env_name(port.name)}", str(port.port)))
        proto = (first.protocol or "TCP").lower()
        out.append((f"{name}_PORT", f"{proto}://{ip}:{first.port}"))
        for port in svc.spec.ports:
            proto = (port.protocol or "TCP").lower()
            prefix = f"{name}_PORT_{port.port}_{proto.upper()}"
            out.append((prefix, f"{proto}://{ip}:{port.port}"))
            out.append((f"{prefix}_PROTO", proto))
            out.append((f"{prefix}_PORT", str(port.port)))
            out.append((f"{prefix}_ADDR", ip))
    return out


def field_value(pod: core_pb2.Pod, path: str, pod_ips: Sequence[str] = (),
                host_ip: str = "") -> str:
    """A downward API ``fieldRef`` (the fields kubelet supports for env and volumes)."""
    meta = pod.metadata
    simple = {"metadata.name": meta.name, "metadata.namespace": meta.namespace,
              "metadata.uid": meta.uid, "spec.nodeName": pod.spec.node_name,
              "spec.serviceAccountName": pod.spec.service_account_name,
              "status.hostIP": host_ip or pod.status.host_ip,
              "status.hostIPs": host_ip or pod.status.host_ip,
              "status.podIP": pod_ips[0] if pod_ips else pod.status.pod_ip,
              "status.podIPs": ",".join(pod_ips) if pod_ips else pod.status.pod_ip}
    if path in simple:
        return simple[path]
    for prefix, values in (("metadata.labels", meta.labels),
                           ("metadata.annotations", meta.annotations)):
        if path == prefix:
            return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
        if path.startswith(prefix + "['") and path.endswith("']"):
            return values.get(path[len(prefix) + 2:-2], "")
    raise ConfigError(f"unsupported fieldPath: {path!r}; accepted: "
                      + ", ".join([*simple, "metadata.labels['<key>']",
                                   "metadata.annotations['<key>']"]))


def resource_value(pod: core_pb2.Pod, container_name: str, resource: str, divisor: str,
                   node_allocatable: Mapping[str, str]) -> str:
    """A ``resourceFieldRef``: the container's limit (node allocatable when unset) or
    request, divided by ``divisor`` and rounded up, as kubelet reports it."""
    containers = {c.name: c for c in [*pod.spec.init_containers, *pod.spec.containers]}
    container = containers.get(container_name)
    if container is None:
        raise ConfigError(f"resourceFieldRef: no container named {container_name!r}")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory",
                                                          "ephemeral-storage"):
        raise ConfigError(f"unsupported resource {resource!r}; accepted: limits.cpu, "
                          "limits.memory, limits.ephemeral-storage, requests.cpu, "
                          "requests.memory, requests.ephemeral-storage")
    source = container.resources.limits if kind == "limits" else container.resources.requests
    raw = source.get(name) or (node_allocatable.get(name, "0") if kind == "limits" else "0")
    try:
        value = parse_quantity(raw)
        div = parse_quantity(divisor or "1")
    except QuantityError as exc:
        raise ConfigError(f"resourceFieldRef {resource}: {exc}") from None
    if div.is_zero():
        raise ConfigError(f"resourceFieldRef {resource}: divisor must not be 0")
    if name == "cpu":
        return str(math.ceil(value.milli_value() / div.milli_value()))
    return str(math.ceil(value.value() / max(div.value(), 1)))


def _data(obj: core_pb2.ConfigMap | core_pb2.Secret) -> dict[str, str]:
    if isinstance(obj, core_pb2.Secret):
        out = {k: v.decode("utf-8", errors="replace") for k, v in obj.data.items()}
        out.update(obj.string_data)
        return out
    return {**{k: v.decode("utf-8", errors="replace") for k, v in obj.binary_data.items()},
            **obj.data}


def _optional(ref: object) -> bool:
    return bool(getattr(ref, "optional", False))


def container_env(pod: core_pb2.Pod, container: core_pb2.Container, lookup: ObjectLookup,
                  services_env: Sequence[tuple[str, str]] = (), *,
                  pod_ips: Sequence[str] = (), host_ip: str = "",
                  node_allocatable: Mapping[str, str] | None = None
                  ) -> list[tuple[str, str]]:
    """The environment of ``container``, in order; ConfigError when it cannot be made."""
    ns = pod.metadata.namespace
    env: dict[str, str] = dict(services_env)
    for src in container.env_from:
        obj: core_pb2.ConfigMap | core_pb2.Secret | None
        if src.HasField("config_map_ref"):
            ref = src.config_map_ref
            obj = lookup.config_map(ns, ref.name)
            if obj is None:
                if _optional(ref):
                    continue
                raise ConfigError(f'configmap "{ref.name}" not found')
        elif src.HasField("secret_ref"):
            sref = src.secret_ref
            obj = lookup.secret(ns, sref.name)
            if obj is None:
                if _optional(sref):
                    continue
                raise ConfigError(f'secret "{sref.name}" not found')
        else:
            continue
        for key, value in _data(obj).items():
            name = src.prefix + key
            if name and "=" not in name:
                env[name] = value
    for var in container.env:
        if not var.HasField("value_from"):
            env[var.name] = expand(var.value, env)
            continue
        found = _value_from(pod, container, var, lookup, pod_ips, host_ip,
                            node_allocatable or {})
        if found is not None:
            env[var.name] = found
    return list(env.items())


def _value_from(pod: core_pb2.Pod, container: core_pb2.Container, var: core_pb2.EnvVar,
                lookup: ObjectLookup, pod_ips: Sequence[str], host_ip: str,
                node_allocatable: Mapping[str, str]) -> str | None:
    ns = pod.metadata.namespace
    src = var.value_from
    if src.HasField("config_map_key_ref"):
        ref = src.config_map_key_ref
        cm = lookup.config_map(ns, ref.name)
        if cm is None:
            if _optional(ref):
                return None
            raise ConfigError(f'configmap "{ref.name}" not found')
        data = _data(cm)
        if ref.key not in data:
            if _optional(ref):
                return None
            raise ConfigError(f"couldn't find key {ref.key} in ConfigMap {ns}/{ref.name}")
        return data[ref.key]
    if src.HasField("secret_key_ref"):
        sref = src.secret_key_ref
        secret = lookup.secret(ns, sref.name)
        if secret is None:
            if _optional(sref):
                return None
            raise ConfigError(f'secret "{sref.name}" not found')
        data = _data(secret)
        if sref.key not in data:
            if _optional(sref):
                return None
            raise ConfigError(f"couldn't find key {sref.key} in Secret {ns}/{sref.name}")
        return data[sref.key]
    if src.HasField("field_ref"):
        return field_value(pod, src.field_ref.field_path, pod_ips, host_ip)
    if src.HasField("resource_field_ref"):
        r = src.resource_field_ref
        return resource_value(pod, r.container_name or container.name, r.resource,
                              r.divisor, node_allocatable)
    return None

"""Pure translation of a Pod into what CRI is asked to run: sandbox and container configs.

No I/O here: the pod worker resolves env, volumes and images first and passes them in.
The translation follows kubelet's (kuberuntime_sandbox.go, kuberuntime_container.go):

- cgroup parent by QoS class: ``<root>/pod<uid>`` (Guaranteed), ``<root>/burstable/pod<uid>``,
  ``<root>/besteffort/pod<uid>``;
- cpu shares from the cpu request (``millis * 1024 / 1000``, at least 2), a CFS quota from
  the cpu limit (period 100 ms), memory limit in bytes;
- hostPort mappings on the sandbox; DNS config by dnsPolicy; labels and annotations that
  let a restarted agent recognise its own sandboxes and containers (``cri.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cri_api.v1 import api_pb2

from navarch._quantity import parse_quantity
from navarch.v1 import core_pb2

from . import cri

CPU_PERIOD_US = 100_000
MIN_SHARES = 2
CLUSTER_DOMAIN = "cluster.local"


def qos_class(pod: core_pb2.Pod) -> str:
    """The pod's QoS class: the API server's ``status.qosClass``, computed when unset."""
    if pod.status.qos_class:
        return pod.status.qos_class
    from services.apiserver.strategy import qos_class as compute

    return compute(pod.spec)


def pod_cgroup_parent(pod: core_pb2.Pod, cgroup_root: str) -> str:
    """``<root>[/burstable|/besteffort]/pod<uid>``, as kubelet's cgroupfs driver names it."""
    qos = qos_class(pod)
    tier = "" if qos == "Guaranteed" else f"/{qos.lower()}"
    return f"{cgroup_root.rstrip('/')}{tier}/pod{pod.metadata.uid}"


def sandbox_labels(pod: core_pb2.Pod) -> dict[str, str]:
    return {**pod.metadata.labels, cri.POD_NAME: pod.metadata.name,
            cri.POD_NAMESPACE: pod.metadata.namespace, cri.POD_UID: pod.metadata.uid}


def _dns_config(pod: core_pb2.Pod, cluster_dns: Sequence[str],
                host_resolv: str) -> api_pb2.DNSConfig | None:
    """dnsPolicy: ClusterFirst (default; the cluster's DNS and search path, when the node
    knows a cluster DNS), Default (the node's resolv.conf), None (only dnsConfig)."""
    spec = pod.spec
    policy = spec.dns_policy or "ClusterFirst"
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst"
                                                and not spec.host_network):
        policy = "ClusterFirst"
    elif policy == "ClusterFirst":
        policy = "Default"  # hostNetwork pods with ClusterFirst use the node's
    config = api_pb2.DNSConfig()
    if policy == "ClusterFirst" and cluster_dns:
        ns = pod.metadata.namespace
        config.servers.extend(cluster_dns)
        config.searches.extend([f"{ns}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}",
                                CLUSTER_DOMAIN])
        config.options.append("ndots:5")
    elif policy in ("Default", "ClusterFirst"):
        for line in host_resolv.splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "nameserver":
                config.servers.append(words[1])
            elif words and words[0] in ("search", "domain"):
                config.searches.extend(words[1:])
            elif words and words[0] == "options":
                config.options.extend(words[1:])
    dns = spec.dns_config
    config.servers.extend(s for s in dns.nameservers if s not in config.servers)
    config.searches.extend(s for s in dns.searches if s not in config.searches)
    for opt in dns.options:
        text = f"{opt.name}:{opt.value}" if opt.value else opt.name
        config.options.append(text)
    if not (config.servers or config.searches or config.options):
        return None
    return config


def sandbox_config(pod: core_pb2.Pod, *, log_directory: str, cgroup_root: str,
                   cluster_dns: Sequence[str] = (), host_resolv: str = "",
                   attempt: int = 0) -> api_pb2.PodSandboxConfig:
    """The PodSandboxConfig of ``pod`` (attempt counts sandboxes made for this pod)."""
    meta = pod.metadata
    config = api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=meta.name, namespace=meta.namespace,
                                            uid=meta.uid, attempt=attempt),
        hostname=pod.spec.hostname or meta.name,
        log_directory=log_directory,
        labels=sandbox_labels(pod),
        annotations=dict(meta.annotations),
    )
    dns = _dns_config(pod, cluster_dns, host_resolv)
    if dns is not None:
        config.dns_config.CopyFrom(dns)
    for container in pod.spec.containers:
        for port in container.ports:
            if port.host_port:
                config.port_mappings.add(
                    protocol=_protocol(port.protocol), container_port=port.container_port,
                    host_port=port.host_port, host_ip=port.host_ip)
    linux = config.linux
    linux.cgroup_parent = pod_cgroup_parent(pod, cgroup_root)
    ns = linux.security_context.namespace_options
    ns.network = api_pb2.NODE if pod.spec.host_network else api_pb2.POD
    ns.pid = api_pb2.NODE if pod.spec.host_pid else (
        api_pb2.POD if pod.spec.share_process_namespace else api_pb2.CONTAINER)
    ns.ipc = api_pb2.NODE if pod.spec.host_ipc else api_pb2.POD
    return config


def _protocol(name: str) -> int:
    return {"UDP": api_pb2.UDP, "SCTP": api_pb2.SCTP}.get(name, api_pb2.TCP)


def container_hash(container: core_pb2.Container) -> str:
    """A digest of the container's spec: a change (say, a new image) means a new container."""
    return hashlib.sha256(container.SerializeToString(deterministic=True)).hexdigest()[:16]


def cpu_shares(request_milli: int) -> int:
    """kubelet's MilliCPUToShares: 1 cpu = 1024 shares, at least 2."""
    return max(MIN_SHARES, request_milli * 1024 // 1000) if request_milli else MIN_SHARES


def container_resources(container: core_pb2.Container) -> api_pb2.LinuxContainerResources:
    """CPU shares/quota and memory limit from the container's requests and limits (a
    container with limits only requests what it limits: the API server defaults that)."""
    req, lim = container.resources.requests, container.resources.limits
    out = api_pb2.LinuxContainerResources()
    cpu_req = req.get("cpu") or lim.get("cpu")
    out.cpu_shares = cpu_shares(parse_quantity(cpu_req).milli_value() if cpu_req else 0)
    if "cpu" in lim:
        milli = parse_quantity(lim["cpu"]).milli_value()
        out.cpu_period = CPU_PERIOD_US
        out.cpu_quota = max(1000, milli * CPU_PERIOD_US // 1000)
    if "memory" in lim:
        out.memory_limit_in_bytes = parse_quantity(lim["memory"]).value()
    return out


def container_config(pod: core_pb2.Pod, container: core_pb2.Container, *,
                     restart_count: int, image: str, env: Sequence[tuple[str, str]],
                     command: Sequence[str], args: Sequence[str],
                     mounts: Sequence[api_pb2.Mount]) -> api_pb2.ContainerConfig:
    """The ContainerConfig of one attempt of ``container`` (``command``/``args`` already
    expanded against ``env``; ``image`` is the reference or the pulled image's id)."""
    meta = pod.metadata
    config = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name=container.name, attempt=restart_count),
        image=api_pb2.ImageSpec(image=image),
        command=list(command),
        args=list(args),
        working_dir=container.working_dir,
        envs=[api_pb2.KeyValue(key=k, value=v) for k, v in env],
        mounts=list(mounts),
        log_path=cri.container_log_path(container.name, restart_count),
        stdin=container.stdin,
        stdin_once=container.stdin_once,
        tty=container.tty,
        labels={cri.POD_NAME: meta.name, cri.POD_NAMESPACE: meta.namespace,
                cri.POD_UID: meta.uid, cri.CONTAINER_NAME: container.name},
        annotations={cri.RESTART_COUNT: str(restart_count),
                     cri.CONTAINER_HASH: container_hash(container)},
    )
    config.linux.resources.CopyFrom(container_resources(container))
    ns = config.linux.security_context.namespace_options
    ns.network = api_pb2.NODE if pod.spec.host_network else api_pb2.POD
    ns.ipc = api_pb2.NODE if pod.spec.host_ipc else api_pb2.POD
    # a container sees only its own processes unless the pod shares its PID namespace
    ns.pid = api_pb2.NODE if pod.spec.host_pid else (
        api_pb2.POD if pod.spec.share_process_namespace else api_pb2.CONTAINER)
    sc = container.security_context
    if sc.HasField("privileged") and sc.privileged:
        config.linux.security_context.privileged = True
    if sc.HasField("run_as_user"):
        config.linux.security_context.run_as_user.value = sc.run_as_user
    if sc.HasField("read_only_root_filesystem"):
        config.linux.security_context.readonly_rootfs = sc.read_only_root_filesystem
    return config

"""The worker nodes of ``navarch up``: per node a network namespace, a containerd and an
agent running inside the namespace; plus the bridge and the registry they share.

    <run-dir>/registry/{config.yml,data/,registry.log,registry.pid}   172.30.0.1:5000
    <run-dir>/nodes/node-<i>/containerd/…   containerd (root, state, socket, log, pid)
    <run-dir>/nodes/node-<i>/cni/net.d/     the pod network config (written by the agent)
    <run-dir>/nodes/node-<i>/agent/         the agent's root: volumes, logs, IPAM
    <run-dir>/nodes/node-<i>/agent.{log,pid}    navarch agent   (every node)
    <run-dir>/nodes/node-<i>/proxy.{log,pid}    navarch proxy   (every node: Services, pod routes)
    <run-dir>/nodes/node-1/dns.{log,pid}        navarch dns     (on node-1's address, port 53,
                                                behind the kube-dns Service 10.96.0.10)

``start_nodes`` is idempotent (what runs is left alone); ``stop_nodes`` removes every
process, namespace, link, mount and cgroup of every node directory it finds, even for a
cluster whose ``up`` failed half-way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deploy import localauth, nodeenv
from deploy.nodeenv import NetworkPlan, NodeEnv

AGENT_PORT = 10250
PROXY_PORT = 10256
CLUSTER_CIDR = "10.244.0.0/16"
DNS_SERVICE_IP = "10.96.0.10"


def node_envs(run_dir: Path, plan: NetworkPlan, count: int | None = None) -> list[NodeEnv]:
    """The nodes of the cluster: ``count`` of them, or those found on disk."""
    base = run_dir / "nodes"
    if count is None:
        names = sorted((p.name for p in base.iterdir() if p.name.startswith("node-")),
                       key=lambda n: int(n.split("-")[1])) if base.is_dir() else []
        indexes = [int(n.split("-")[1]) for n in names]
    else:
        indexes = list(range(1, count + 1))
    return [NodeEnv(f"node-{i}", i, plan, base / f"node-{i}") for i in indexes]


def process_pid(node: NodeEnv, kind: str) -> int | None:
    """The pid of the node's ``navarch <kind>`` (agent, proxy, dns) if it runs."""
    # every node process listens on the node's address: that names the node
    return nodeenv.pid_in_file(node.root / f"{kind}.pid", kind.encode(),
                               f"{node.ip}:".encode())


def agent_pid(node: NodeEnv) -> int | None:
    return process_pid(node, "agent")


def _navarch(node: NodeEnv, kind: str, api: str, *args: str) -> list[str]:
    """``navarch <kind>`` entered into the node's namespace with nsenter."""
    return ["nsenter", f"--net={node.netns_path}", sys.executable, "-m", "navarch",
            "--log-format", "json", kind, "--server", api, *args]


def agent_command(node: NodeEnv, api: str, *extra: str) -> list[str]:
    return _navarch(node, "agent", api, "--node-name", node.name,
                    "--node-ip", node.ip, "--listen", f"{node.ip}:{AGENT_PORT}",
                    "--cri-socket", str(node.cri_socket), "--root-dir", str(node.agent_dir),
                    "--cni-conf-dir", str(node.cni_conf_dir), "--cgroup-root", node.cgroup_root,
                    "--cluster-dns", DNS_SERVICE_IP, *extra)


def proxy_command(node: NodeEnv, api: str) -> list[str]:
    return _navarch(node, "proxy", api, "--node-name", node.name,
                    "--listen", f"{node.ip}:{PROXY_PORT}", "--cluster-cidr", CLUSTER_CIDR,
                    "--mode", "host-gw")


def dns_command(node: NodeEnv, api: str) -> list[str]:
    return _navarch(node, "dns", api, "--listen", f"{node.ip}:53", "--domain", "cluster.local")


def start_process(node: NodeEnv, kind: str, command: list[str], ready: object,
                  timeout: float = 60.0, env: dict[str, str] | None = None) -> int:
    """Start the node's ``navarch <kind>`` (unless running) and wait until ``ready()``;
    ``env``: its environment (its token), else this process's."""
    pid = process_pid(node, kind)
    log_path = node.root / f"{kind}.log"
    if pid is None:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    env=env)
        (node.root / f"{kind}.pid").write_text(str(proc.pid))
        pid = proc.pid
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        if process_pid(node, kind) is None and not _alive(pid):
            tail = log_path.read_text(errors="replace").splitlines()[-8:]
            raise SystemExit(f"navarch up: the {kind} of {node.name} exited; its log ends:\n"
                             + "\n".join(tail))
        if time.monotonic() > deadline:
            raise SystemExit(f"navarch up: the {kind} of {node.name} was not ready within "
                             f"{timeout}s; see {log_path}")
        time.sleep(0.2)
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return not nodeenv._zombie(pid)


def start_agent(node: NodeEnv, api: str, serving: object, timeout: float = 60.0,
                env: dict[str, str] | None = None) -> int:
    """Start the node's agent (unless running) and wait for its health check."""
    return start_process(node, "agent", agent_command(node, api),
                         lambda: serving(f"{node.ip}:{AGENT_PORT}"),  # type: ignore[operator]
                         timeout, env)


def stop_process(node: NodeEnv, kind: str) -> None:
    pid = process_pid(node, kind)
    if pid is None:
        return
    print(f"stopping the {kind} of {node.name} (pid {pid})")
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process_pid(node, kind) is not None \
            and _alive(pid):
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    (node.root / f"{kind}.pid").unlink(missing_ok=True)


def stop_agent(node: NodeEnv) -> None:
    stop_process(node, "agent")


def stop_node_processes(node: NodeEnv) -> None:
    """The agent first (nothing more is reported), then the DNS server and the proxy."""
    for kind in ("agent", "dns", "proxy"):
        stop_process(node, kind)


def start_infra(run_dir: Path, plan: NetworkPlan) -> list[str]:
    """The bridge and the registry (with every image pushed); the image references."""
    from deploy.images import push_all

    nodeenv.ensure_bridge(plan)
    print(f"registry on {plan.registry} (images built here and pushed)")
    nodeenv.start_registry(plan, run_dir / "registry")
    return push_all(plan.registry)


def start_nodes(run_dir: Path, plan: NetworkPlan, count: int, api: str,
                serving: object) -> list[NodeEnv]:
    """Namespace, containerd, agent and proxy of each of ``count`` nodes; the cluster DNS
    on the first."""
    nodes = node_envs(run_dir, plan, count)
    for node in nodes:
        print(f"starting {node.name}: namespace {node.netns}, {node.ip}, containerd, agent, "
              "proxy")
        nodeenv.setup_node(node)
        start_agent(node, api, serving,
                    env=localauth.env_for(run_dir, localauth.node_user(node.name)[0]))
        start_process(node, "proxy", proxy_command(node, api),
                      lambda n=node: serving(f"{n.ip}:{PROXY_PORT}"),  # type: ignore[operator]
                      env=localauth.env_for(run_dir, localauth.COMPONENTS["proxy"][0]))
    if nodes:
        first = nodes[0]
        print(f"starting the cluster DNS on {first.name} ({first.ip}:53), Service "
              f"kube-system/kube-dns {DNS_SERVICE_IP}")
        start_process(first, "dns", dns_command(first, api),
                      lambda: dns_answers(first.ip),
                      env=localauth.env_for(run_dir, localauth.COMPONENTS["dns"][0]))
        ensure_dns_service(api, first)
    return nodes


def dns_answers(ip: str, port: int = 53) -> bool:
    """Whether a DNS server answers on ip:port (any answer, NXDOMAIN included)."""
    import dns.exception
    import dns.message
    import dns.query

    try:
        dns.query.udp(dns.message.make_query("kubernetes.default.svc.cluster.local.", "A"),
                      ip, port=port, timeout=0.5)
    except (dns.exception.DNSException, OSError):
        return False
    return True


def ensure_dns_service(api: str, node: NodeEnv) -> None:
    """kube-system/kube-dns: ClusterIP 10.96.0.10, ports 53/UDP and 53/TCP, no selector;
    its Endpoints name the DNS server's address (idempotent)."""
    import asyncio

    asyncio.run(_ensure_dns_service(api, node))


async def _ensure_dns_service(api: str, node: NodeEnv) -> None:
    import navarch
    from navarch.v1 import core_pb2

    async with navarch.Client(api) as client:
        svc = core_pb2.Service()
        svc.metadata.name = "kube-dns"
        svc.metadata.namespace = "kube-system"
        svc.metadata.labels["k8s-app"] = "kube-dns"
        svc.metadata.labels["kubernetes.io/cluster-service"] = "true"  # navctl cluster-info
        svc.metadata.labels["kubernetes.io/name"] = "NavarchDNS"
        svc.spec.cluster_ip = DNS_SERVICE_IP
        svc.spec.ports.add(name="dns", protocol="UDP", port=53, target_port="53")
        svc.spec.ports.add(name="dns-tcp", protocol="TCP", port=53, target_port="53")
        ep = core_pb2.Endpoints()
        ep.metadata.name = "kube-dns"
        ep.metadata.namespace = "kube-system"
        subset = ep.subsets.add()
        subset.addresses.add(ip=node.ip, node_name=node.name)
        subset.ports.add(name="dns", port=53, protocol="UDP")
        subset.ports.add(name="dns-tcp", port=53, protocol="TCP")
        with contextlib.suppress(navarch.AlreadyExists):
            await client.services("kube-system").create(svc)
        with contextlib.suppress(navarch.AlreadyExists):
            await client.endpoints("kube-system").create(ep)


def stop_nodes(run_dir: Path, plan: NetworkPlan) -> None:
    """Agents, then everything of each node, then the registry and the bridge."""
    nodes = node_envs(run_dir, plan)
    for node in nodes:
        stop_node_processes(node)
    for node in nodes:
        print(f"removing {node.name} (pods, containerd, namespace, mounts, cgroups)")
        nodeenv.teardown_node(node)
    nodeenv.stop_registry(plan, run_dir / "registry")
    nodeenv.remove_bridge(plan)

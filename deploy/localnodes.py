"""The worker nodes of ``navarch up``: per node a network namespace, a containerd and an
agent running inside the namespace; plus the bridge and the registry they share.

    <run-dir>/registry/{config.yml,data/,registry.log,registry.pid}   172.30.0.1:5000
    <run-dir>/nodes/node-<i>/containerd/…   containerd (root, state, socket, log, pid)
    <run-dir>/nodes/node-<i>/cni/net.d/     the pod network config (written by the agent)
    <run-dir>/nodes/node-<i>/agent/         the agent's root: volumes, logs, IPAM
    <run-dir>/nodes/node-<i>/agent.{log,pid}

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

from deploy import nodeenv
from deploy.nodeenv import NetworkPlan, NodeEnv

AGENT_PORT = 10250


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


def agent_pid(node: NodeEnv) -> int | None:
    try:
        pid = int((node.root / "agent.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"agent" in cmdline and node.name.encode() in cmdline else None


def agent_command(node: NodeEnv, api: str, *extra: str) -> list[str]:
    """``navarch agent`` for ``node``, entered into its namespace with nsenter."""
    return ["nsenter", f"--net={node.netns_path}", sys.executable, "-m", "navarch",
            "--log-format", "json", "agent", "--server", api, "--node-name", node.name,
            "--node-ip", node.ip, "--listen", f"{node.ip}:{AGENT_PORT}",
            "--cri-socket", str(node.cri_socket), "--root-dir", str(node.agent_dir),
            "--cni-conf-dir", str(node.cni_conf_dir), "--cgroup-root", node.cgroup_root,
            *extra]


def start_agent(node: NodeEnv, api: str, serving: object, timeout: float = 60.0) -> int:
    """Start the node's agent (unless running) and wait for its health check."""
    pid = agent_pid(node)
    if pid is None:
        with open(node.root / "agent.log", "ab") as log:
            proc = subprocess.Popen(agent_command(node, api), stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        (node.root / "agent.pid").write_text(str(proc.pid))
        pid = proc.pid
    deadline = time.monotonic() + timeout
    while not serving(f"{node.ip}:{AGENT_PORT}"):  # type: ignore[operator]
        if agent_pid(node) is None:
            tail = (node.root / "agent.log").read_text(errors="replace").splitlines()[-8:]
            raise SystemExit(f"navarch up: the agent of {node.name} exited; its log ends:\n"
                             + "\n".join(tail))
        if time.monotonic() > deadline:
            raise SystemExit(f"navarch up: the agent of {node.name} did not serve within "
                             f"{timeout}s; see {node.root / 'agent.log'}")
        time.sleep(0.2)
    return pid


def stop_agent(node: NodeEnv) -> None:
    pid = agent_pid(node)
    if pid is None:
        return
    print(f"stopping the agent of {node.name} (pid {pid})")
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and agent_pid(node) is not None:
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    (node.root / "agent.pid").unlink(missing_ok=True)


def start_infra(run_dir: Path, plan: NetworkPlan) -> list[str]:
    """The bridge and the registry (with every image pushed); the image references."""
    from deploy.images import push_all

    nodeenv.ensure_bridge(plan)
    print(f"registry on {plan.registry} (images built here and pushed)")
    nodeenv.start_registry(plan, run_dir / "registry")
    return push_all(plan.registry)


def start_nodes(run_dir: Path, plan: NetworkPlan, count: int, api: str,
                serving: object) -> list[NodeEnv]:
    """Namespace, containerd and agent of each of ``count`` nodes."""
    nodes = node_envs(run_dir, plan, count)
    for node in nodes:
        print(f"starting {node.name}: namespace {node.netns}, {node.ip}, containerd, agent")
        nodeenv.setup_node(node)
        start_agent(node, api, serving)
    return nodes


def stop_nodes(run_dir: Path, plan: NetworkPlan) -> None:
    """Agents, then everything of each node, then the registry and the bridge."""
    nodes = node_envs(run_dir, plan)
    for node in nodes:
        stop_agent(node)
    for node in nodes:
        print(f"removing {node.name} (pods, containerd, namespace, mounts, cgroups)")
        nodeenv.teardown_node(node)
    nodeenv.stop_registry(plan, run_dir / "registry")
    nodeenv.remove_bridge(plan)

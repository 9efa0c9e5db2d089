"""A real cluster for agent tests: a 3-member raftstore, an API server on the node
bridge, a scheduler and controllers, and N worker nodes, each a network namespace with
its own containerd and a ``navarch agent`` running inside it.

Everything is stopped and removed by ``AgentCluster.destroy`` (processes, namespaces,
links, mounts, cgroups, files), which the fixtures call even when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from deploy import localauth, localnodes, nodeenv
from deploy.nodeenv import NetworkPlan, NodeEnv
from tests.api.harness import ApiServerProcess, NavarchProcess
from tests.store.conftest import make_cluster

FAST_ELECTION = ("--leader-elect-lease-duration", "4", "--leader-elect-renew-deadline", "3",
                 "--leader-elect-retry-period", "0.5")


class AgentProcess(NavarchProcess):
    """``navarch agent`` inside ``node``'s network namespace (entered with nsenter)."""

    subcommand = "agent"
    log_level = "info"  # bench.podstartup --debug sets "debug" (per-pod timings)

    def __init__(self, workdir: Path, node: NodeEnv, api: str, *extra: str,
                 env: dict[str, str] | None = None) -> None:
        super().__init__(workdir, list(extra), subcommand="agent", name=node.name, env=env)
        self.node = node
        self.api = api
        self.address = f"{node.ip}:{self.port}"

    def command(self) -> list[str]:
        n = self.node
        return ["nsenter", f"--net={n.netns_path}", sys.executable, "-m", "navarch",
                "--log-format", "json", "--log-level", self.log_level,
                "agent", "--listen", self.address,
                "--server", self.api, "--node-name", n.name, "--node-ip", n.ip,
                "--cri-socket", str(n.cri_socket), "--root-dir", str(n.agent_dir),
                "--cni-conf-dir", str(n.cni_conf_dir), "--cgroup-root", n.cgroup_root,
                "--heartbeat-interval", "2", "--status-interval", "5", *self.extra_args]


class ProxyProcess(NavarchProcess):
    """``navarch proxy`` inside ``node``'s namespace; started = its first sync is done."""

    def __init__(self, workdir: Path, node: NodeEnv, api: str, *extra: str,
                 cluster_cidr: str = localnodes.CLUSTER_CIDR, mode: str = "host-gw",
                 env: dict[str, str] | None = None) -> None:
        super().__init__(workdir, list(extra), subcommand="proxy", name=f"{node.name}-proxy",
                         env=env)
        self.node = node
        self.api = api
        self.address = f"{node.ip}:{self.port}"
        self.cluster_cidr = cluster_cidr
        self.mode = mode

    def command(self) -> list[str]:
        return ["nsenter", f"--net={self.node.netns_path}", sys.executable, "-m", "navarch",
                "--log-format", "json", "--log-level", "debug", "proxy",
                "--listen", self.address, "--server", self.api, "--node-name", self.node.name,
                "--cluster-cidr", self.cluster_cidr, "--mode", self.mode, *self.extra_args]


class DnsProcess(NavarchProcess):
    """``navarch dns`` on ``node``'s address, port 53; started = it answers a query."""

    def __init__(self, workdir: Path, node: NodeEnv, api: str,
                 env: dict[str, str] | None = None) -> None:
        super().__init__(workdir, [], subcommand="dns", name=f"{node.name}-dns", env=env)
        self.node = node
        self.api = api

    def command(self) -> list[str]:
        return ["nsenter", f"--net={self.node.netns_path}", sys.executable, "-m", "navarch",
                "--log-format", "json", "dns", "--listen", f"{self.node.ip}:53",
                "--server", self.api]

    def serving(self, service: str = "") -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"dns exited with {self.proc.returncode}:\n{self.log_tail()}")
        return localnodes.dns_answers(self.node.ip)


@dataclass
class AgentCluster:
    """The processes and nodes of one test cluster."""

    plan: NetworkPlan
    workdir: Path
    node_count: int = 3
    store: object | None = None
    api: ApiServerProcess | None = None
    daemons: list[NavarchProcess] = field(default_factory=list)
    nodes: list[NodeEnv] = field(default_factory=list)
    agents: dict[str, AgentProcess] = field(default_factory=dict)
    network: bool = False  # a proxy on every node, the cluster DNS on node-1
    agent_args: tuple[str, ...] = ()  # more flags for every agent
    proxies: dict[str, ProxyProcess] = field(default_factory=dict)
    dns: DnsProcess | None = None
    # RBAC, one token per component and Secrets encrypted in the store, as `navarch up`
    # runs it; this process (the tests' clients, navctl) acts as the admin
    # (system:masters) while the cluster lives
    rbac: bool = True
    _saved_token: str | None = None

    def token_env(self, user: str) -> dict[str, str]:
        """The environment of a process acting as ``user`` (empty without RBAC)."""
        if not self.rbac:
            return {}
        return {"NAVARCH_TOKEN": localauth.token_of(self.workdir, user)}

    @property
    def api_address(self) -> str:
        assert self.api is not None
        return self.api.address

    def start(self, *controller_args: str) -> None:
        self.store = make_cluster("raftstore", self.workdir / "store")
        security: list[str] = []
        if self.rbac:
            names = [f"node-{i}" for i in range(1, self.node_count + 1)]
            tokens = localauth.ensure_tokens(self.workdir, names)
            security = ["--authorization-mode", "RBAC", "--token-auth-file", str(tokens),
                        "--encryption-provider-config",
                        str(localauth.ensure_encryption_config(self.workdir))]
            self._saved_token = os.environ.get("NAVARCH_TOKEN")
            os.environ["NAVARCH_TOKEN"] = localauth.token_of(self.workdir, localauth.ADMIN)
        endpoints: list[str] = self.store.endpoints
        api = ApiServerProcess(endpoints, self.workdir / "apiserver", security)
        api.address = f"{self.plan.host_ip}:{api.port}"  # reachable from node namespaces
        self.api = api
        api.start()
        for sub, args in (("scheduler", FAST_ELECTION),
                          ("controllers", (*FAST_ELECTION, *controller_args))):
            proc = NavarchProcess(self.workdir / sub, ["--server", api.address, *args],
                                  subcommand=sub,
                                  env=self.token_env(localauth.COMPONENTS[sub][0]))
            self.daemons.append(proc)
            proc.start()
        nodeenv.ensure_bridge(self.plan)
        for i in range(1, self.node_count + 1):
            node = NodeEnv(f"node-{i}", i, self.plan, self.workdir / f"node-{i}")
            self.nodes.append(node)
            nodeenv.setup_node(node)
            self.start_agent(node)
        self.wait_nodes_ready()
        if self.network:
            for node in self.nodes:
                self.start_proxy(node)
            self.dns = DnsProcess(self.workdir / "dns", self.nodes[0], self.api_address,
                                  env=self.token_env(localauth.COMPONENTS["dns"][0]))
            self.dns.start(30)
            localnodes.ensure_dns_service(self.api_address, self.nodes[0])

    def start_proxy(self, node: NodeEnv, mode: str = "host-gw") -> ProxyProcess:
        proxy = ProxyProcess(self.workdir / "proxies", node, self.api_address, mode=mode,
                             env=self.token_env(localauth.COMPONENTS["proxy"][0]))
        self.proxies[node.name] = proxy
        try:
            proxy.start(30)
        except BaseException:
            print(proxy.log_tail())
            raise
        return proxy

    def wait_nodes_ready(self, timeout: float = 60.0) -> None:
        """Until every node reports Ready (its pod network is configured by then)."""
        import navarch
        from tests.store.cluster import wait_for

        def ready() -> bool:
            async def check() -> bool:
                async with navarch.Client(self.api_address) as client:
                    nodes = (await client.nodes().list()).items
                return len(nodes) >= len(self.nodes) and all(
                    any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
                    for n in nodes if n.metadata.name in {x.name for x in self.nodes})
            import asyncio

            return asyncio.run(check())
        wait_for(ready, timeout, "every node to be Ready", interval=0.5)

    def node(self, name: str) -> NodeEnv:
        return next(n for n in self.nodes if n.name == name)

    def start_agent(self, node: NodeEnv) -> AgentProcess:
        extra = ("--cluster-dns", localnodes.DNS_SERVICE_IP) if self.network else ()
        agent = AgentProcess(self.workdir / "agents", node, self.api_address, *extra,
                             *self.agent_args,
                             env=self.token_env(localauth.node_user(node.name)[0]))
        self.agents[node.name] = agent
        try:
            agent.start(60)
        except BaseException:
            print(agent.log_tail())
            raise
        return agent

    def kill_node(self, name: str) -> None:
        """SIGKILL the node's agent and containerd (its containers go on running)."""
        agent = self.agents[name]
        if agent.proc is not None:
            agent.proc.send_signal(signal.SIGKILL)
            agent.proc.wait(10)
        node = self.node(name)
        pid = nodeenv.containerd_pid(node)
        if pid is not None:
            with contextlib.suppress(OSError):
                import os

                os.kill(pid, signal.SIGKILL)

    def sandbox_uids(self, name: str) -> set[str]:
        """Pod uids of the sandboxes the node's containerd has (CRI, asked directly)."""
        import grpc
        from cri_api.v1 import api_pb2, api_pb2_grpc

        with grpc.insecure_channel(f"unix://{self.node(name).cri_socket}") as channel:
            rt = api_pb2_grpc.RuntimeServiceStub(channel)  # type: ignore[no-untyped-call]
            reply = rt.ListPodSandbox(api_pb2.ListPodSandboxRequest(), timeout=10)
        return {sb.labels.get("io.kubernetes.pod.uid", "") for sb in reply.items}

    def in_node(self, name: str, *cmd: str, timeout: float = 10.0
                ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` in the node's network namespace (busybox's wget, say)."""
        node = self.node(name)
        return subprocess.run(["nsenter", f"--net={node.netns_path}", *cmd],
                              capture_output=True, text=True, timeout=timeout, check=False)

    def destroy(self) -> None:
        node_procs: list[NavarchProcess] = [*self.agents.values(), *self.proxies.values()]
        if self.dns is not None:
            node_procs.append(self.dns)
        for node_proc in node_procs:
            with contextlib.suppress(Exception):
                node_proc.stop()
        keep = self.workdir / "logs"  # containerd's logs outlive the node, for a post-mortem
        keep.mkdir(exist_ok=True)
        for node in self.nodes:
            with contextlib.suppress(OSError):
                shutil.copy(node.containerd_dir / "containerd.log",
                            keep / f"{node.name}-containerd.log")
            with contextlib.suppress(Exception):
                nodeenv.teardown_node(node)
        for proc in reversed(self.daemons):
            with contextlib.suppress(Exception):
                proc.stop()
        if self.api is not None:
            with contextlib.suppress(Exception):
                self.api.stop()
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.destroy()  # type: ignore[attr-defined]
        if self.rbac:
            if self._saved_token is None:
                os.environ.pop("NAVARCH_TOKEN", None)
            else:
                os.environ["NAVARCH_TOKEN"] = self._saved_token

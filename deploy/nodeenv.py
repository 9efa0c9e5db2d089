"""Worker nodes on one machine: a host bridge, a network namespace and a containerd per node.

This is the node bootstrap that ``navarch up`` runs for each worker and that the system
tests run for their own nodes (the Vagrant cluster's provisioning reuses the same config
writers). What it does, and why (DESIGN.md, "Node environment")::

    host netns:  bridge <plan.bridge> 172.30.0.1/24 ── registry 172.30.0.1:5000
                   │ veth <netns>            (one per node)
    node netns:  eth0 172.30.0.1x/24 ── containerd (CRI) ── runc, CNI bridge cni0 + pods
                                     └─ navarch agent

- Each containerd runs in its node's namespace, entered with ``nsenter --net`` (not
  ``ip netns exec``: its remount of /sys hides the cgroup mounts from runc), with its own
  root, state, sockets, runc root and CNI directories under the node's directory.
- ``restrict_oom_score_adj`` is on: these hosts withhold CAP_SYS_RESOURCE.
- Images come from the local registry over plain HTTP (a registry mirror entry says so).
- Node namespaces get no default route: all traffic stays on the bridge's subnet and the
  namespaces the cluster made.

Everything made here is named from the plan's ``prefix`` so that ``teardown_node`` and
``remove_bridge`` find and remove all of it, even after a crash.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from node_agent.volumes import mount_points

CNI_BIN_DIR = "/usr/lib/cni"
NETNS_DIR = Path("/var/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
SOCKET_ROOT = Path("/run/navarch")
SERVICE_CIDR = "10.96.0.0/12"  # the API server's --service-cluster-ip-range default


@dataclass(frozen=True)
class NetworkPlan:
    """Addresses and names of one local cluster's node network."""

    prefix: str = "nv"
    subnet: str = "172.30.0.0/24"
    registry_port: int = 5000

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br0"

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def host_ip(self) -> str:
        """The host's address on the bridge: the registry and the API server listen here."""
        return str(self.network.network_address + 1)

    def node_ip(self, index: int) -> str:
        """Node ``index`` (1-based) has .10+index on the bridge."""
        return str(self.network.network_address + 10 + index)

    @property
    def registry(self) -> str:
        return f"{self.host_ip}:{self.registry_port}"

    @property
    def sandbox_image(self) -> str:
        from deploy.images import PAUSE_TAG

        return f"{self.registry}/navarch/pause:{PAUSE_TAG}"


@dataclass(frozen=True)
class NodeEnv:
    """One worker node: its namespace, address and containerd, files under ``root``."""

    name: str
    index: int
    plan: NetworkPlan
    root: Path

    @property
    def netns(self) -> str:
        return f"{self.plan.prefix}-{self.name}"

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    @property
    def ip(self) -> str:
        return self.plan.node_ip(self.index)

    @property
    def host_veth(self) -> str:
        return f"{self.plan.prefix}v{self.index}"

    @property
    def containerd_dir(self) -> Path:
        return self.root / "containerd"

    @property
    def socket_dir(self) -> Path:
        """containerd's sockets: a short path (unix socket paths are limited to about 104
        bytes, and the node's directory may be deep)."""
        return SOCKET_ROOT / self.netns

    @property
    def cri_socket(self) -> Path:
        return self.socket_dir / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def agent_dir(self) -> Path:
        return self.root / "agent"

    @property
    def cgroup_root(self) -> str:
        """The cgroup under which this node's pods live (one per node, as DESIGN asks)."""
        return f"/{self.plan.prefix}-{self.name}"

    @property
    def containerd_pid_file(self) -> Path:
        return self.containerd_dir / "containerd.pid"


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, raising with its stderr when it fails (and ``check`` is set)."""
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


def _link_exists(name: str, netns: str | None = None) -> bool:
    cmd = ["ip", *(["-n", netns] if netns else []), "link", "show", name]
    return run(*cmd, check=False).returncode == 0


def ensure_bridge(plan: NetworkPlan) -> None:
    """The host bridge with the host's address on it (idempotent)."""
    if not _link_exists(plan.bridge):
        run("ip", "link", "add", plan.bridge, "type", "bridge")
    addr = f"{plan.host_ip}/{plan.network.prefixlen}"
    if addr not in run("ip", "-o", "addr", "show", "dev", plan.bridge).stdout:
        run("ip", "addr", "add", addr, "dev", plan.bridge)
    run("ip", "link", "set", plan.bridge, "up")


def remove_bridge(plan: NetworkPlan) -> None:
    if _link_exists(plan.bridge):
        run("ip", "link", "del", plan.bridge)


def ensure_netns(node: NodeEnv) -> None:
    """The node's namespace, wired to the bridge by a veth pair: ``eth0`` inside (idempotent)."""
    if not node.netns_path.exists():
        run("ip", "netns", "add", node.netns)
    if not _link_exists("eth0", node.netns):
        if _link_exists(node.host_veth):
            run("ip", "link", "del", node.host_veth)
        run("ip", "link", "add", node.host_veth, "type", "veth", "peer", "name", "eth0",
            "netns", node.netns)
    run("ip", "link", "set", node.host_veth, "master", node.plan.bridge, "up")
    addr = f"{node.ip}/{node.plan.network.prefixlen}"
    if addr not in run("ip", "-n", node.netns, "-o", "addr", "show", "dev", "eth0").stdout:
        run("ip", "-n", node.netns, "addr", "add", addr, "dev", "eth0")
    run("ip", "-n", node.netns, "link", "set", "eth0", "up")
    run("ip", "-n", node.netns, "link", "set", "lo", "up")
    # the Service range goes out eth0, as a default route would send it on a real node:
    # the node's own connections to a ClusterIP then reach the proxy's DNAT (locally made
    # packets are routed before the output hook sees them)
    if SERVICE_CIDR not in run("ip", "-n", node.netns, "route", "show", SERVICE_CIDR).stdout:
        run("ip", "-n", node.netns, "route", "add", SERVICE_CIDR, "dev", "eth0")
    # pods reach each other and their node through cni0; forwarding lets the node route
    run("ip", "netns", "exec", node.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1")


def remove_netns(node: NodeEnv) -> None:
    if _link_exists(node.host_veth):
        run("ip", "link", "del", node.host_veth, check=False)
    if node.netns_path.exists():
        run("ip", "netns", "del", node.netns, check=False)


def containerd_config(node: NodeEnv) -> str:
    """containerd 1.6's config (version 2) for this node: its own dirs, CRI tuned for here."""
    d = node.containerd_dir
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    registry = node.plan.registry
    return f"""\
version = 2
root = "{d / 'root'}"
state = "{d / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{node.cri_socket}"
[ttrpc]
  address = "{node.cri_socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[{cri}]
  sandbox_image = "{node.plan.sandbox_image}"
  # pod network namespaces under the node's own state dir, not the host's /var/run/netns:
  # nodes never see each other's, and the node's teardown finds every one of them
  netns_mounts_under_state_dir = true
  # CAP_SYS_RESOURCE is withheld on these hosts: without this every sandbox fails
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [{cri}.containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        Root = "{d / 'runc'}"
  [{cri}.cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{node.cni_conf_dir}"
  [{cri}.registry.mirrors."{registry}"]
    endpoint = ["http://{registry}"]
"""


def command_line(pid: int) -> bytes | None:
    """The command line of a running process; None when there is no such process or it
    is a zombie. A process in the middle of exec shows an empty command line for a moment
    (its new memory is in place before its arguments are: a parent woken from vfork can
    look then); that moment is waited out, a tenth of a second at most."""
    for _ in range(100):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        if cmdline:
            return cmdline
        if _zombie(pid):
            return None
        time.sleep(0.001)
    return b""


def pid_in_file(path: Path, *markers: bytes) -> int | None:
    """The pid written in ``path`` if that process runs and its command line holds every
    one of ``markers`` (so that a reused pid is not mistaken for it)."""
    try:
        pid = int(path.read_text())
    except (OSError, ValueError):
        return None
    cmdline = command_line(pid)
    return pid if cmdline is not None and all(m in cmdline for m in markers) else None


def containerd_pid(node: NodeEnv) -> int | None:
    return pid_in_file(node.containerd_pid_file, str(node.containerd_dir).encode())


def start_containerd(node: NodeEnv, timeout: float = 30.0) -> int:
    """Start the node's containerd inside its namespace (unless running); wait for its socket."""
    pid = containerd_pid(node)
    if pid is not None:
        return pid
    for sub in ("root", "state", "runc"):
        (node.containerd_dir / sub).mkdir(parents=True, exist_ok=True)
    node.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    node.socket_dir.mkdir(parents=True, exist_ok=True)
    config = node.containerd_dir / "config.toml"
    config.write_text(containerd_config(node))
    node.cri_socket.unlink(missing_ok=True)
    with open(node.containerd_dir / "containerd.log", "ab") as log:
        proc = subprocess.Popen(
            ["nsenter", f"--net={node.netns_path}", "containerd", "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    node.containerd_pid_file.write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while not node.cri_socket.exists():
        if proc.poll() is not None:
            tail = (node.containerd_dir / "containerd.log").read_text(errors="replace")
            raise RuntimeError(f"containerd of {node.name} exited: {tail[-800:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"containerd of {node.name}: no socket after {timeout}s")
        time.sleep(0.05)
    return proc.pid


def _processes_mentioning(marker: str) -> list[int]:
    """Pids whose command line contains ``marker`` (shims name their containerd's socket)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if Path(f"/proc/{p}").exists() and not _zombie(p)]
        if alive:
            time.sleep(0.05)
    return alive


def _zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except OSError:
        return False


def remove_all_pods(node: NodeEnv, timeout: float = 30.0) -> list[Path]:
    """Stop and remove every pod sandbox through CRI (containers, CNI, mounts go with
    them); returns the sandboxes' network namespace files, for a last check."""
    import json

    import grpc
    from cri_api.v1 import api_pb2, api_pb2_grpc

    netns: list[Path] = []
    if not node.cri_socket.exists() or containerd_pid(node) is None:
        return netns
    with grpc.insecure_channel(f"unix://{node.cri_socket}") as channel:
        rt = api_pb2_grpc.RuntimeServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            sandboxes = rt.ListPodSandbox(api_pb2.ListPodSandboxRequest(), timeout=timeout)
        except grpc.RpcError:
            return netns
        for sb in sandboxes.items:
            with contextlib.suppress(grpc.RpcError, ValueError, KeyError, TypeError):
                status = rt.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(
                    pod_sandbox_id=sb.id, verbose=True), timeout=timeout)
                for ns in json.loads(status.info["info"])["runtimeSpec"]["linux"][
                        "namespaces"]:
                    if ns.get("type") == "network" and ns.get("path"):
                        netns.append(Path(ns["path"]))
            # each step on its own: a sandbox whose task died cannot be stopped cleanly
            with contextlib.suppress(grpc.RpcError):
                rt.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=sb.id),
                                  timeout=timeout)
            with contextlib.suppress(grpc.RpcError):
                rt.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=sb.id),
                                    timeout=timeout)
    return netns


def remove_netns_files(paths: list[Path]) -> None:
    """Unmount and delete pod network namespace files CRI left behind (after a crash)."""
    for path in paths:
        if path.exists() and path.name.startswith("cni-"):
            run("umount", str(path), check=False)
            with contextlib.suppress(OSError):
                path.unlink()


def stop_containerd(node: NodeEnv) -> None:
    """Stop containerd, then any shim (and so container) it left behind."""
    pid = containerd_pid(node)
    if pid is not None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        if _wait_gone([pid], 10.0):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone([pid], 5.0)
    shims = _processes_mentioning(str(node.cri_socket))
    for shim in shims:
        with contextlib.suppress(OSError):
            os.kill(shim, signal.SIGKILL)
    _wait_gone(shims, 5.0)
    node.containerd_pid_file.unlink(missing_ok=True)


def unmount_under(path: Path) -> None:
    for point in mount_points(path):
        run("umount", "-l", point, check=False)


def kill_cgroup_processes(node: NodeEnv) -> None:
    """SIGKILL whatever still runs in the node's cgroups (containers whose shim died)."""
    rel = node.cgroup_root.lstrip("/")
    pids: set[int] = set()
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / rel
        if top.is_dir():
            for procs in top.rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(p) for p in procs.read_text().split())
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone(sorted(pids), 5.0)


def remove_cgroups(node: NodeEnv) -> None:
    """Remove the node's cgroup tree in every hierarchy, leaves first."""
    kill_cgroup_processes(node)
    rel = node.cgroup_root.lstrip("/")
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / rel
        if not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                      reverse=True)
        for d in [*dirs, top]:
            with contextlib.suppress(OSError):
                d.rmdir()


def setup_node(node: NodeEnv) -> None:
    """Namespace, links and containerd for one node (the bridge must exist)."""
    ensure_netns(node)
    start_containerd(node)


def teardown_node(node: NodeEnv, remove_files: bool = True) -> None:
    """Undo ``setup_node``: pods, containerd and shims, mounts, cgroups, links, namespace.

    A containerd that died is started once more first, so that CRI tears its pods down
    (their network namespaces and CNI leases included) rather than leaving them behind.
    """
    if containerd_pid(node) is None and (node.containerd_dir / "root").is_dir() \
            and node.netns_path.exists():
        with contextlib.suppress(RuntimeError):
            start_containerd(node)
    leftovers = remove_all_pods(node)
    stop_containerd(node)
    remove_netns_files(leftovers)
    unmount_under(node.root)
    remove_cgroups(node)
    remove_netns(node)
    shutil.rmtree(node.socket_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        SOCKET_ROOT.rmdir()  # when this was the last node
    if remove_files:
        shutil.rmtree(node.root, ignore_errors=True)


def registry_pid(plan: NetworkPlan, root: Path) -> int | None:
    return pid_in_file(root / "registry.pid", b"docker-registry")


def start_registry(plan: NetworkPlan, root: Path, timeout: float = 30.0) -> int:
    """Debian's docker-registry on the bridge address, storage under ``root`` (idempotent).

    Pushes every image of ``deploy.images`` to it (a no-op when they are there already).
    """
    from deploy.images import RegistryClient, push_all, registry_binary, registry_config

    pid = registry_pid(plan, root)
    if pid is None:
        root.mkdir(parents=True, exist_ok=True)
        config = root / "config.yml"
        config.write_text(registry_config(root / "data", plan.registry))
        with open(root / "registry.log", "ab") as log:
            proc = subprocess.Popen([registry_binary(), "serve", str(config)], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        (root / "registry.pid").write_text(str(proc.pid))
        pid = proc.pid
        client = RegistryClient(plan.registry)
        deadline = time.monotonic() + timeout
        while not client.ping():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (root / "registry.log").read_text(errors="replace")[-800:]
                raise RuntimeError(f"docker-registry did not serve on {plan.registry}: {tail}")
            time.sleep(0.05)
    push_all(plan.registry)
    return pid


def stop_registry(plan: NetworkPlan, root: Path) -> None:
    pid = registry_pid(plan, root)
    if pid is not None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        if _wait_gone([pid], 5.0):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    (root / "registry.pid").unlink(missing_ok=True)

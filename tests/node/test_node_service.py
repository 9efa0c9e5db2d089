"""The node service (node_agent.server) against a real containerd, and the API server's
Pods proxy, the SDK and navctl in front of it.

One node (a network namespace with its own containerd), three pods made through CRI the
way the agent makes them (labels, annotations, log paths):

- svc/talk: ``main`` (attempt 0 printed "attempt0" and exited 2; attempt 1 prints
  "oops" on stderr, then "line 1..3", then sleeps) and ``burn`` (spins, capped at 200m)
- svc/solo: ``only``, one 40000-byte line (containerd cuts it into partial records)
- svc/tick: ``tick``, followed while lines are added, then stopped

The servicer runs in this process, in the host's namespace (CRI is a unix socket), on a
grpc.aio server on 127.0.0.1; interactive exec reaches containerd's streaming server in
the node's namespace through a socket made there. Everything is torn down at the end.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from cri_api.v1 import api_pb2

import navarch
from deploy import nodeenv
from deploy.nodeenv import NetworkPlan, NodeEnv
from navarch.v1 import core_pb2, node_pb2, node_pb2_grpc
from node_agent import cri, runtime_spec
from node_agent.cni import write_conflist
from node_agent.cri import CriClient
from node_agent.server import NodeAgentService, add_to_server
from services.apiserver import errors as api_errors
from services.apiserver.auth import Attributes, Decision, UserInfo
from services.apiserver.grpc_api import ApiService
from services.apiserver.podproxy import PodProxy
from services.apiserver.resources import Resources
from tests.store.cluster import REPO

NEEDS = ("containerd", "runc", "docker-registry", "nsenter", "gcc")
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, containerd)"),
    pytest.mark.skipif(any(shutil.which(b) is None for b in NEEDS),
                       reason=f"needs {', '.join(NEEDS)} (make deps)"),
    pytest.mark.asyncio(loop_scope="module"),
]

# apart from tests/node/conftest.py's plan, so that both suites may run at once
PLAN = NetworkPlan(prefix="nvt4", subnet="172.31.244.0/24", registry_port=5094)
POD_CIDR = "10.244.44.0/24"
NS = "svc"
CLONE_NEWNET = 0x40000000
# a container's loop that prints what `say` leaves in /tmp/say (exec cannot reach a
# container's stdout otherwise)
SAY = "while :; do if [ -f /tmp/say ]; then cat /tmp/say; rm /tmp/say; fi; sleep 0.1; done"


def say(text: str) -> tuple[str, ...]:
    """A command that makes a SAY loop print ``text``."""
    return ("sh", "-c", f"echo {text} > /tmp/say.new && mv /tmp/say.new /tmp/say")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeEnv, dict[str, str]]]:
    """The bridge, a registry with the images, one node with containerd; removed after."""
    from deploy.images import push_all

    root = tmp_path_factory.mktemp("nodesvc")
    env = NodeEnv("svc1", 1, PLAN, root / "svc1")
    nodeenv.ensure_bridge(PLAN)
    try:
        nodeenv.start_registry(PLAN, root / "registry")
        refs = {ref.rsplit("/", 1)[1].split(":")[0]: ref for ref in push_all(PLAN.registry)}
        nodeenv.ensure_netns(env)  # nodeenv.setup_node, with the CNI config there first
        write_conflist(env.cni_conf_dir, POD_CIDR, env.agent_dir / "ipam")
        nodeenv.start_containerd(env)
        yield env, refs
    finally:
        nodeenv.teardown_node(env)
        nodeenv.stop_registry(PLAN, root / "registry")
        nodeenv.remove_bridge(PLAN)
    assert not env.netns_path.exists()
    assert nodeenv.containerd_pid(env) is None


def make_pod(name: str, uid: str, containers: dict[str, str]) -> core_pb2.Pod:
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace, pod.metadata.uid = name, NS, uid
    for cname, cpu_limit in containers.items():
        c = pod.spec.containers.add(name=cname, image="busybox")
        if cpu_limit:
            c.resources.limits["cpu"] = cpu_limit
    return pod


@dataclass
class Sandbox:
    pod: core_pb2.Pod
    id: str
    config: api_pb2.PodSandboxConfig


async def run_sandbox(client: CriClient, env: NodeEnv, pod: core_pb2.Pod) -> Sandbox:
    log_dir = cri.pod_log_dir(env.agent_dir, NS, pod.metadata.name, pod.metadata.uid)
    config = runtime_spec.sandbox_config(pod, log_directory=str(log_dir),
                                         cgroup_root=env.cgroup_root)
    for c in pod.spec.containers:
        (log_dir / c.name).mkdir(parents=True, exist_ok=True)
    return Sandbox(pod, await client.run_sandbox(config), config)


async def start(client: CriClient, sb: Sandbox, name: str, attempt: int, image: str,
                script: str) -> str:
    spec = next(c for c in sb.pod.spec.containers if c.name == name)
    config = runtime_spec.container_config(sb.pod, spec, restart_count=attempt, image=image,
                                           env=[], command=["sh", "-c", script], args=[],
                                           mounts=[])
    cid = await client.create_container(sb.id, config, sb.config)
    await client.start_container(cid)
    return cid


async def wait_until(check: Any, what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def connect_in_netns(netns: Path, host: str, port: int) -> socket.socket:
    """A TCP connection made from inside ``netns`` (in a thread of its own, which setns
    moves there for good)."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(netns, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            out["sock"] = socket.create_connection((host, port), timeout=10)
        except BaseException as exc:  # handed to the caller
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    sock: socket.socket = out["sock"]
    sock.settimeout(None)
    return sock


@dataclass
class World:
    env: NodeEnv
    cri: CriClient
    stub: node_pb2_grpc.NodeAgentStub
    address: str
    ids: dict[str, str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(node: tuple[NodeEnv, dict[str, str]]) -> AsyncIterator[World]:
    env, refs = node
    busybox = refs["busybox"]
    client = CriClient(env.cri_socket)

    async def network_ready() -> bool:  # containerd loads the CNI config in a while
        return any(c.type == "NetworkReady" and c.status
                   for c in (await client.status()).status.conditions)
    await wait_until(network_ready, "containerd to load the CNI configuration")
    await client.pull_image(busybox)
    talk = await run_sandbox(client, env, make_pod("talk", "uid-talk", {"main": "",
                                                                         "burn": "200m"}))
    ids = {"main0": await start(client, talk, "main", 0, busybox, "echo attempt0; exit 2")}

    async def exited() -> bool:
        return (await client.container_status(ids["main0"])).state == cri.EXITED
    await wait_until(exited, "attempt 0 of talk/main to exit")
    ids["main"] = await start(client, talk, "main", 1, busybox,
                              "echo oops >&2; sleep 0.5; for i in 1 2 3; do echo line $i; "
                              f"done; {SAY}")
    ids["burn"] = await start(client, talk, "burn", 0, busybox, "while :; do :; done")
    solo = await run_sandbox(client, env, make_pod("solo", "uid-solo", {"only": ""}))
    ids["only"] = await start(client, solo, "only", 0, busybox,
                              "head -c 40000 /dev/zero | tr '\\0' x; echo; sleep 3600")
    tick = await run_sandbox(client, env, make_pod("tick", "uid-tick", {"tick": ""}))
    ids["tick"] = await start(client, tick, "tick", 0, busybox, f"echo start; {SAY}")

    async def dial(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = await asyncio.to_thread(connect_in_netns, env.netns_path, host, port)
        return await asyncio.open_connection(sock=sock)

    service = NodeAgentService(client, env.agent_dir, env.name, dial=dial)
    server = grpc.aio.server()
    add_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield World(env, client, node_pb2_grpc.NodeAgentStub(channel),  # type: ignore[no-untyped-call]
                    f"127.0.0.1:{port}", ids)
    finally:
        await channel.close()
        await server.stop(grace=0.5)
        await client.close()


async def logs(w: World, **fields: Any) -> bytes:
    request = node_pb2.ContainerLogsRequest(namespace=NS, **fields)
    return b"".join([c.data async for c in w.stub.ContainerLogs(request, timeout=20)])


async def wait_for_log(w: World, pod: str, container: str, text: bytes) -> None:
    async def has() -> bool:
        return text in await logs(w, pod=pod, container=container)
    await wait_until(has, f"{text!r} in the log of {pod}/{container}")


async def test_logs_of_the_current_attempt(world: World) -> None:
    await wait_for_log(world, "talk", "main", b"line 3")
    assert await logs(world, pod="talk", container="main") == b"oops\nline 1\nline 2\nline 3\n"
    assert await logs(world, pod="talk", container="main", tail_lines=2) == \
        b"line 2\nline 3\n"
    assert await logs(world, pod="talk", container="main", tail_lines=0) == b""
    assert await logs(world, pod="talk", container="main", limit_bytes=7) == b"oops\nli"
    stamped = (await logs(world, pod="talk", container="main", timestamps=True)).splitlines()
    assert [ln.split(b" ", 1)[1] for ln in stamped] == [b"oops", b"line 1", b"line 2",
                                                        b"line 3"]
    assert all(ln[:4].isdigit() and ln.split(b" ")[0].endswith(b"Z") for ln in stamped)


async def test_logs_since(world: World) -> None:
    await wait_for_log(world, "talk", "main", b"line 3")
    await asyncio.sleep(2.2)  # the lines so far are older than 2 s
    assert await exec_(world, *say("fresh")) == (b"", b"", 0)
    await wait_for_log(world, "talk", "main", b"fresh")
    assert await logs(world, pod="talk", container="main", since_seconds=2) == b"fresh\n"
    assert (await logs(world, pod="talk", container="main", since_seconds=3600)).startswith(
        b"oops\n")


async def test_logs_of_the_previous_attempt(world: World) -> None:
    assert await logs(world, pod="talk", container="main", previous=True) == b"attempt0\n"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await logs(world, pod="solo", previous=True)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == 'previous terminated container "only" in pod "solo" not found'


async def test_logs_choose_the_container(world: World) -> None:
    await wait_for_log(world, "solo", "only", b"xxx")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await logs(world, pod="talk")
    assert (err.value.code(), err.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "a container name must be specified for pod talk, choose one of: [burn main]")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await logs(world, pod="talk", container="nope")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await logs(world, pod="ghost")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await logs(world, pod="solo", uid="another-uid")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_long_line_cut_by_containerd_is_whole_again(world: World) -> None:
    await wait_for_log(world, "solo", "only", b"xxx\n")
    raw = next((world.env.agent_dir / "logs").glob("svc_solo_*/only/0.log")).read_bytes()
    assert b" stdout P " in raw  # containerd did cut it
    assert await logs(world, pod="solo") == b"x" * 40000 + b"\n"


async def test_follow_sees_new_lines_and_ends_with_the_container(world: World) -> None:
    await wait_for_log(world, "tick", "tick", b"start")
    call = world.stub.ContainerLogs(node_pb2.ContainerLogsRequest(
        namespace=NS, pod="tick", follow=True), timeout=60)
    seen = (await asyncio.wait_for(call.read(), 10)).data
    assert seen == b"start\n"
    for word in ("one", "two"):
        assert await exec_(world, *say(word), pod="tick", container="") == (b"", b"", 0)
        while f"{word}\n".encode() not in seen:
            seen += (await asyncio.wait_for(call.read(), 10)).data
    assert seen == b"start\none\ntwo\n"
    await world.cri.stop_container(world.ids["tick"], 0)
    ended = time.monotonic()
    while (chunk := await asyncio.wait_for(call.read(), 10)) is not grpc.aio.EOF:
        seen += chunk.data
    assert time.monotonic() - ended < 5
    assert await call.code() == grpc.StatusCode.OK


async def exec_(w: World, *command: str, pod: str = "talk", container: str = "main",
                inputs: tuple[Any, ...] = (), **flags: Any) -> tuple[bytes, bytes, int | None]:
    """Output, errors and exit code of a command (``inputs``: messages, or pauses)."""
    async def messages() -> AsyncIterator[node_pb2.ExecInput]:
        yield node_pb2.ExecInput(start=node_pb2.ExecRequest(
            namespace=NS, pod=pod, container=container, command=list(command), **flags))
        for item in inputs:
            if isinstance(item, float):
                await asyncio.sleep(item)
            else:
                yield item
    out, err, code = b"", b"", None
    async for o in w.stub.Exec(messages(), timeout=30):
        out, err = out + o.stdout, err + o.stderr
        if o.HasField("exit_code"):
            code = o.exit_code
    return out, err, code


async def test_exec(world: World) -> None:
    assert await exec_(world, "sh", "-c", "echo out; echo err >&2; exit 3") == (
        b"out\n", b"err\n", 3)
    assert await exec_(world, "hostname") == (b"talk\n", b"", 0)
    big = await exec_(world, "head", "-c", "5000000", "/dev/zero")
    assert (len(big[0]), big[2]) == (5_000_000, 0)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await exec_(world, "no-such-program")
    assert "no-such-program" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await exec_(world)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await exec_(world, "true", container="")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_interactive_exec(world: World) -> None:
    stdin = node_pb2.ExecInput(stdin=b"hello\n")
    assert await exec_(world, "sh", "-c", "read x; echo got $x; echo bye >&2; exit 4",
                       stdin=True, inputs=(stdin,)) == (b"got hello\n", b"bye\n", 4)
    resize = node_pb2.ExecInput(resize=node_pb2.TerminalSize(width=132, height=50))
    out, err, code = await exec_(world, "sh", "-c", "read x; stty size; tty", stdin=True,
                                 tty=True, inputs=(resize, 0.3, node_pb2.ExecInput(
                                     stdin=b"go\r")))
    assert (err, code) == (b"", 0)
    assert b"50 132\r\n/dev/pts/" in out, out
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await exec_(world, "no-such-program", stdin=True)
    assert "no-such-program" in (exc.value.details() or "")


async def test_stats(world: World) -> None:
    await asyncio.sleep(1.0)  # burn has spun a while
    reply = await world.stub.Stats(node_pb2.StatsRequest(namespace=NS), timeout=20)
    pods = {p.name: p for p in reply.pods}
    assert {"talk", "solo"} <= set(pods)
    assert all(p.namespace == NS and p.node == "svc1" for p in reply.pods)
    usage = {c.name: c for c in pods["talk"].containers}
    assert set(usage) == {"burn", "main"}
    assert 100_000_000 < usage["burn"].cpu_nano_cores < 300_000_000  # capped at 200m
    assert usage["main"].cpu_nano_cores < 50_000_000
    assert all(c.memory_working_set_bytes > 0 for c in usage.values())
    one = await world.stub.Stats(node_pb2.StatsRequest(namespace=NS, pod="solo"), timeout=20)
    assert [p.name for p in one.pods] == ["solo"]
    assert not (await world.stub.Stats(node_pb2.StatsRequest(namespace="other"))).pods


# --- the API server's Pods proxy, the SDK and navctl, over this node ---------------------


class FakeResources:
    """What PodProxy reads of Resources: kind, get, list (of a few objects)."""

    kind = staticmethod(Resources.kind)

    def __init__(self, objects: list[Any]) -> None:
        self.objects = {(type(o).__name__, o.metadata.namespace, o.metadata.name): o
                        for o in objects}

    async def get(self, resource: str, namespace: str, name: str) -> Any:
        kind = "Pod" if resource == "pods" else "Node"
        found = self.objects.get((kind, namespace if kind == "Pod" else "", name))
        if found is None:
            raise api_errors.not_found(resource, name)
        return found

    async def list(self, resource: str, namespace: str = "", *, field_selector: str = "",
                   **_: Any) -> Any:
        assert (resource, field_selector) == ("pods", "spec.nodeName!=")
        items = [o.SerializeToString() for (k, ns, _n), o in self.objects.items()
                 if k == "Pod" and (not namespace or ns == namespace) and o.spec.node_name]
        return type("Listed", (), {"items": items})()


class DenyExec:
    def authorize(self, user: UserInfo, attributes: Attributes) -> Decision:
        return Decision(attributes.subresource != "exec", "no exec here")


def node_object(name: str, address: str) -> core_pb2.Node:
    node = core_pb2.Node()
    node.metadata.name = name
    host, port = address.rsplit(":", 1)
    node.status.addresses.add(type="InternalIP", address=host)
    node.status.daemon_endpoints.kubelet_endpoint.port = int(port)
    node.status.allocatable["cpu"] = "2"
    node.status.allocatable["memory"] = "4Gi"
    return node


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def proxy(world: World) -> AsyncIterator[str]:
    """An API server of just the Pods service, over fake Resources naming this node."""
    pods = []
    for name, node_name in (("talk", "svc1"), ("solo", "svc1"), ("tick", "svc1"),
                            ("pending", ""), ("stranded", "gone")):
        pod = core_pb2.Pod()
        pod.metadata.name, pod.metadata.namespace = name, NS
        pod.metadata.uid = f"uid-{name}"
        pod.spec.node_name = node_name
        pod.spec.containers.add(name="main", image="busybox")
        pods.append(pod)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    resources = FakeResources([*pods, node_object("svc1", world.address),
                               node_object("gone", dead)])
    pod_proxy = PodProxy(ApiService(resources))  # type: ignore[arg-type]
    server = grpc.aio.server()
    node_pb2_grpc.add_PodsServicer_to_server(pod_proxy, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=0.5)
        await pod_proxy.close()


async def test_proxy_logs_exec_top_through_the_sdk(proxy: str, world: World) -> None:
    await wait_for_log(world, "talk", "main", b"line 3")
    async with navarch.Client(proxy, timeout=20) as client:
        tail = b"".join([c async for c in client.pod_logs(node_pb2.ContainerLogsRequest(
            namespace=NS, pod="talk", container="main", tail_lines=1))])
        assert tail.endswith(b"\n") and tail.count(b"\n") == 1
        outs = [o async for o in client.pod_exec(node_pb2.ExecRequest(
            namespace=NS, pod="talk", container="main",
            command=["sh", "-c", "echo hi; exit 5"]))]
        assert (b"".join(o.stdout for o in outs), outs[-1].exit_code) == (b"hi\n", 5)
        top = await client.pod_top(NS)
        assert {p.name for p in top.pods} >= {"talk", "solo"}
        with pytest.raises(navarch.NotFound):
            await client.pod_top(NS, "nobody")
        for pod, error, words in (
                ("nobody", navarch.NotFound, 'pods "nobody" not found'),
                ("pending", navarch.Forbidden, "pod pending is not scheduled to a node yet"),
                ("stranded", navarch.ServerUnavailable, "node gone (127.0.0.1:")):
            with pytest.raises(error) as err:
                async for _ in client.pod_logs(node_pb2.ContainerLogsRequest(namespace=NS,
                                                                            pod=pod)):
                    pass
            assert words in str(err.value)


async def test_proxy_refuses_exec_when_not_allowed(world: World) -> None:
    resources = FakeResources([node_object("svc1", world.address)])
    service = PodProxy(ApiService(resources, authorizer=DenyExec()))  # type: ignore[arg-type]
    server = grpc.aio.server()
    node_pb2_grpc.add_PodsServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with navarch.Client(f"127.0.0.1:{port}", timeout=20) as client:
            with pytest.raises(navarch.Forbidden) as err:
                async for _ in client.pod_exec(node_pb2.ExecRequest(
                        namespace=NS, pod="talk", command=["true"])):
                    pass
            assert 'cannot create resource "pods/exec"' in str(err.value)
    finally:
        await server.stop(grace=0.5)
        await service.close()


async def navctl(proxy: str, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "navarch._navctl", "--server", proxy, "-n", NS, *args,
        cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_navctl(proxy: str, world: World) -> None:
    await wait_for_log(world, "talk", "main", b"line 3")
    code, out, err = await navctl(proxy, "logs", "talk", "-c", "main", "--tail", "2")
    assert (code, out.encode()) == (0, await logs(world, pod="talk", container="main",
                                                  tail_lines=2)), err
    code, out, err = await navctl(proxy, "exec", "talk", "-c", "main", "--",
                                  "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (code, out, err) == (3, "out\n", "err\n")
    code, out, err = await navctl(proxy, "exec", "-i", "talk", "-c", "main", "--",
                                  "sh", "-c", "read x; echo got $x", stdin=b"piped\n")
    assert (code, out) == (0, "got piped\n"), err
    # no container named: kubectl's default, the first container of the spec
    code, out, err = await navctl(proxy, "logs", "talk")
    assert (code, out.encode()) == (0, await logs(world, pod="talk", container="main")), err
    code, out, err = await navctl(proxy, "top", "pods", "--containers")
    lines = out.splitlines()
    assert code == 0, err
    assert lines[0].split() == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert any(ln.split()[:2] == ["talk", "burn"] for ln in lines[1:])
    code, out, err = await navctl(proxy, "logs", "pending")
    assert code == 1
    assert "pod pending is not scheduled to a node yet" in err


async def test_navctl_exec_on_a_terminal(proxy: str) -> None:
    """``navctl exec -it`` from a pseudo-terminal: raw keys, its size, the exit code."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "navarch._navctl", "--server", proxy, "-n", NS, "exec", "-it",
        "talk", "-c", "main", "--", "sh", cwd=REPO, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    seen = b""

    async def read_until(marker: bytes) -> None:
        nonlocal seen
        while marker not in seen:
            try:
                data = await asyncio.wait_for(asyncio.to_thread(os.read, master, 4096), 20)
            except OSError:  # EIO: the terminal's other side is closed
                data = b""
            assert data, f"the terminal closed before {marker!r}: {seen!r}"
            seen += data
    try:
        await read_until(b"# ")  # the remote shell's prompt
        os.write(master, b"stty size; exit 7\r")
        await read_until(b"40 100")
        assert await asyncio.wait_for(proc.wait(), 20) == 7
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        os.close(master)

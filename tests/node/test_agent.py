"""Issue 5's acceptance with real containers: 3 nodes, each a network namespace with its
own containerd and ``navarch agent``, over a real API server, scheduler and controllers.

- the Kubernetes tutorial flow: a 1-replica Deployment runs; scaled to 4 it spreads over
  the nodes; ``set image`` rolls it; every pod answers HTTP on its pod IP from its node;
- a crashing container is restarted with back-off; a failing liveness probe restarts
  one; readiness gates Ready; init containers run first and in order; configMap and
  secret volumes and env hold the right content; a Job runs to completion;
- restarting an agent recreates nothing; killing a node's agent and containerd marks it
  NotReady and its pods come back on other nodes.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

import navarch
from navarch._quantity import parse_quantity
from tests.api.util import eventually, obj
from tests.node.agent_cluster import AgentCluster
from tests.store.cluster import REPO

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, containerd)"),
    pytest.mark.skipif(shutil.which("containerd") is None or shutil.which("runc") is None,
                       reason="containerd and runc are not installed"),
]


@pytest.fixture(scope="module")
def cluster(node_plan: Any, registry: dict[str, str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentCluster]:
    netns_before = set(os.listdir("/var/run/netns")) if os.path.isdir("/var/run/netns") else set()
    c = AgentCluster(node_plan, tmp_path_factory.mktemp("agents"),
                     agent_args=("--pod-metrics-interval", "2"))
    try:
        c.start("--node-monitor-grace-period", "6",
                "--horizontal-pod-autoscaler-sync-period", "2")
        yield c
    finally:
        c.destroy()
    left = set(os.listdir("/var/run/netns")) - netns_before
    assert not left, f"network namespaces left behind: {sorted(left)}"
    mounts = [ln.split()[4] for ln in open("/proc/self/mountinfo").read().splitlines()
              if str(c.workdir) in ln]
    assert not mounts, f"mounts left behind: {mounts}"


@pytest.fixture(scope="module")
def apiserver(cluster: AgentCluster) -> Any:
    """The cluster's API server, as tests/api's ``client`` and ``ns`` fixtures want it."""
    return cluster.api


async def navctl(cluster: AgentCluster, *args: str, check: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "navarch._navctl", "--server", cluster.api_address, *args,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    if check:
        assert proc.returncode == 0, err.decode()
    return out.decode()


def pod(name: str, ns: str, containers: list[dict[str, Any]], **spec: Any) -> Any:
    return obj({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"containers": containers, "terminationGracePeriodSeconds": 2,
                         **spec}})


async def pod_where(client: navarch.Client, ns: str, name: str, check: Any,
                    within: float = 60.0, what: str = "") -> Any:
    async def probe() -> Any:
        p = await client.pods(ns).get(name)
        return p if check(p) else None
    return await eventually(probe, within, what or f"pod {name}")


def running(p: Any) -> bool:
    return p.status.phase == "Running" and all(
        c.state.HasField("running") for c in p.status.container_statuses)


def condition(p: Any, type_: str) -> str:
    return next((c.status for c in p.status.conditions if c.type == type_), "")


async def test_tutorial_flow_on_real_containers(cluster: AgentCluster, client: navarch.Client,
                                                ns: str, registry: dict[str, str]) -> None:
    labels = {"app": "web"}
    web = {"name": "web", "image": registry["web1"], "ports": [{"containerPort": 8080}],
           "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
           "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}
    await client.deployments(ns).create(obj({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [web],
                                       "terminationGracePeriodSeconds": 2}}}}))

    async def available(replicas: int, image: str) -> Any:
        async def check() -> Any:
            d = await client.deployments(ns).get("web")
            st = d.status
            if not (st.observed_generation >= d.metadata.generation
                    and st.updated_replicas == st.replicas == st.available_replicas
                    == replicas):
                return None
            pods = [p for p in (await client.pods(ns).list()).items
                    if not p.metadata.HasField("deletion_timestamp")]
            if len(pods) != replicas or not all(
                    running(p) and condition(p, "Ready") == "True"
                    and p.spec.containers[0].image == image for p in pods):
                return None
            return pods
        return await eventually(check, 120, f"{replicas} ready pods of {image}")

    pods = await available(1, registry["web1"])
    await client.deployments(ns).scale("web", 4)
    pods = await available(4, registry["web1"])
    assert {p.spec.node_name for p in pods} == {n.name for n in cluster.nodes}
    await navctl(cluster, "-n", ns, "set", "image", "deployment/web",
                 f"web={registry['web2']}")
    pods = await available(4, registry["web2"])
    for p in pods:
        assert p.status.pod_ip and p.status.host_ip == cluster.node(p.spec.node_name).ip
        answer = cluster.in_node(p.spec.node_name, "busybox", "wget", "-qO-",
                                 f"http://{p.status.pod_ip}:8080/")
        assert answer.stdout == "navarch web v2\n", answer.stderr
        host = cluster.in_node(p.spec.node_name, "busybox", "wget", "-qO-",
                               f"http://{p.status.pod_ip}:8080/cgi-bin/hostname")
        assert host.stdout.strip() == p.metadata.name


async def test_a_crashing_container_is_restarted_with_backoff(
        client: navarch.Client, ns: str, registry: dict[str, str]) -> None:
    await client.pods(ns).create(pod("crash", ns, [{
        "name": "c", "image": registry["busybox"], "command": ["sh", "-c", "echo boom; exit 3"]}]))

    def backing_off(p: Any) -> bool:
        cs = p.status.container_statuses
        return bool(cs) and cs[0].restart_count >= 2 and \
            cs[0].state.waiting.reason == "CrashLoopBackOff"
    p = await pod_where(client, ns, "crash", backing_off, 90, "CrashLoopBackOff after 2 restarts")
    cs = p.status.container_statuses[0]
    assert cs.last_state.terminated.exit_code == 3
    assert cs.last_state.terminated.reason == "Error"
    assert "back-off" in cs.state.waiting.message
    assert p.status.phase == "Running"  # restartPolicy Always: never Failed
    events = (await client.events(ns).list()).items
    assert any(e.reason == "BackOff" and e.involved_object.name == "crash" for e in events)


async def test_a_failing_liveness_probe_restarts_the_container(
        client: navarch.Client, ns: str, registry: dict[str, str]) -> None:
    script = "touch /tmp/healthy; sleep 4; rm /tmp/healthy; sleep 3600"
    await client.pods(ns).create(pod("live", ns, [{
        "name": "c", "image": registry["busybox"], "command": ["sh", "-c", script],
        "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]},
                          "periodSeconds": 1, "failureThreshold": 2}}]))
    p = await pod_where(client, ns, "live",
                        lambda p: bool(p.status.container_statuses)
                        and p.status.container_statuses[0].restart_count >= 1, 60,
                        "a restart after the liveness probe fails")
    assert p.status.container_statuses[0].last_state.terminated.exit_code in (137, 143)
    events = (await client.events(ns).list()).items
    assert any(e.reason == "Unhealthy" and "Liveness probe failed" in e.message
               for e in events)


async def test_readiness_gates_the_ready_condition(
        cluster: AgentCluster, client: navarch.Client, ns: str,
        registry: dict[str, str]) -> None:
    await client.pods(ns).create(pod("ready", ns, [{
        "name": "c", "image": registry["busybox"], "command": ["sleep", "3600"],
        "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]},
                           "periodSeconds": 1}}]))
    p = await pod_where(client, ns, "ready", running, 60, "running")
    p = await pod_where(client, ns, "ready",
                        lambda p: condition(p, "Ready") == "False"
                        and condition(p, "ContainersReady") == "False", 10)
    assert not p.status.container_statuses[0].ready
    await navctl(cluster, "-n", ns, "exec", "ready", "--", "touch", "/tmp/ready")
    p = await pod_where(client, ns, "ready", lambda p: condition(p, "Ready") == "True", 30,
                        "Ready after the file appears")
    assert p.status.container_statuses[0].ready


async def test_init_containers_run_first_and_in_order(
        cluster: AgentCluster, client: navarch.Client, ns: str,
        registry: dict[str, str]) -> None:
    bb = registry["busybox"]
    mount = [{"name": "work", "mountPath": "/work"}]
    await client.pods(ns).create(pod("init", ns, [{
        "name": "main", "image": bb, "volumeMounts": mount,
        "command": ["sh", "-c", "echo main >> /work/order; cat /work/order; sleep 3600"]}],
        initContainers=[
            {"name": f"i{i}", "image": bb, "volumeMounts": mount,
             "command": ["sh", "-c", f"sleep 0.{i}; echo i{i} >> /work/order"]}
            for i in (1, 2)],
        volumes=[{"name": "work", "emptyDir": {}}]))
    p = await pod_where(client, ns, "init", running, 60, "running after its init containers")
    assert condition(p, "Initialized") == "True"
    assert [s.state.terminated.exit_code for s in p.status.init_container_statuses] == [0, 0]
    logs = await navctl(cluster, "-n", ns, "logs", "init")
    assert logs.split() == ["i1", "i2", "main"]


async def test_logs_of_pods_by_selector(cluster: AgentCluster, client: navarch.Client,
                                        ns: str, registry: dict[str, str]) -> None:
    bb = registry["busybox"]
    for name in ("chat-b", "chat-a"):
        p = pod(name, ns, [{"name": "c", "image": bb, "command": [
            "sh", "-c", f"for i in $(seq 1 12); do echo {name} $i; done; sleep 3600"]}],
            initContainers=[{"name": "init", "image": bb, "command": ["echo", f"{name} init"]}])
        p.metadata.labels["app"] = "chat"
        await client.pods(ns).create(p)
    for name in ("chat-a", "chat-b"):
        await pod_where(client, ns, name, running, 60, "running")

    async def all_written() -> bool:
        out = await navctl(cluster, "-n", ns, "logs", "-l", "app=chat", "--tail", "1")
        return out.split("\n")[:2] == ["chat-a 12", "chat-b 12"]
    await eventually(all_written, 20, "both pods' last lines")
    out = await navctl(cluster, "-n", ns, "logs", "-l", "app=chat", "--prefix")
    # kubectl's default with a selector: the last 10 lines of each pod, pods by name
    assert out.splitlines() == [f"[pod/{n}/c] {n} {i}" for n in ("chat-a", "chat-b")
                                for i in range(3, 13)]
    out = await navctl(cluster, "-n", ns, "logs", "-l", "app=chat", "--all-containers",
                       "--tail", "1", "--prefix")
    assert out.splitlines() == ["[pod/chat-a/init] chat-a init", "[pod/chat-a/c] chat-a 12",
                                "[pod/chat-b/init] chat-b init", "[pod/chat-b/c] chat-b 12"]
    out = await navctl(cluster, "-n", ns, "logs", "chat-b", "--all-containers")
    assert out.splitlines() == ["chat-b init", *(f"chat-b {i}" for i in range(1, 13))]


async def test_configmap_and_secret_reach_volumes_and_env(
        cluster: AgentCluster, client: navarch.Client, ns: str,
        registry: dict[str, str]) -> None:
    await client.configmaps(ns).create(obj({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": ns},
        "data": {"greeting": "hello", "app.conf": "port=8080\n"}}))
    await client.secrets(ns).create(obj({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": ns},
        "data": {"password": base64.b64encode(b"s3cret").decode()}}))
    await client.pods(ns).create(pod("cfg", ns, [{
        "name": "c", "image": registry["busybox"], "command": ["sleep", "3600"],
        "env": [{"name": "GREETING",
                 "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
                {"name": "PASSWORD",
                 "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app"},
                         {"name": "secret", "mountPath": "/etc/creds"}]}],
        volumes=[{"name": "config", "configMap": {"name": "cfg"}},
                 {"name": "secret", "secret": {"secretName": "creds"}}]))
    await pod_where(client, ns, "cfg", running, 60, "running")

    async def sh(script: str) -> str:
        return await navctl(cluster, "-n", ns, "exec", "cfg", "--", "sh", "-c", script)
    assert await sh("echo $GREETING $PASSWORD $POD_NAME") == "hello s3cret cfg\n"
    assert await sh("cat /etc/app/app.conf") == "port=8080\n"
    assert await sh("cat /etc/creds/password") == "s3cret"
    assert "tmpfs" in await sh("grep /etc/creds /proc/mounts")


async def test_logs_follow_and_exec_exit_code(
        cluster: AgentCluster, client: navarch.Client, ns: str,
        registry: dict[str, str]) -> None:
    await client.pods(ns).create(pod("talk", ns, [{
        "name": "c", "image": registry["busybox"],
        "command": ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"]}]))
    await pod_where(client, ns, "talk", running, 60, "running")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "navarch._navctl", "--server", cluster.api_address, "-n", ns,
        "logs", "-f", "talk", cwd=REPO, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
                 for _ in range(15)]
    finally:
        proc.kill()
        await proc.wait()
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == list(range(numbers[0], numbers[0] + 15))  # followed, in order
    exec_ = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "navarch._navctl", "--server", cluster.api_address, "-n", ns,
        "exec", "talk", "--", "sh", "-c", "echo out; echo err >&2; exit 7", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await exec_.communicate()
    assert (exec_.returncode, out, err.strip().splitlines()[-1]) == (7, b"out\n", b"err")


async def test_a_job_runs_to_completion(client: navarch.Client, ns: str,
                                        registry: dict[str, str]) -> None:
    await client.jobs(ns).create(obj({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": ns},
        "spec": {"completions": 2, "parallelism": 2, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "pi", "image": registry["busybox"],
                            "command": ["sh", "-c", "echo 3.14159"]}]}}}}))

    async def complete() -> Any:
        job = await client.jobs(ns).get("pi")
        return job if job.status.succeeded == 2 and any(
            c.type == "Complete" and c.status == "True" for c in job.status.conditions) else None
    await eventually(complete, 90, "the Job to complete")
    pods = (await client.pods(ns).list()).items
    assert len(pods) == 2 and {p.status.phase for p in pods} == {"Succeeded"}
    assert {p.status.container_statuses[0].state.terminated.reason for p in pods} == {"Completed"}


async def test_restarting_an_agent_recreates_nothing(
        cluster: AgentCluster, client: navarch.Client, ns: str,
        registry: dict[str, str]) -> None:
    for name in ("keep", "gone"):
        await client.pods(ns).create(pod(name, ns, [{
            "name": "c", "image": registry["busybox"], "command": ["sleep", "3600"]}],
            nodeName="node-2"))
    before = await pod_where(client, ns, "keep", running, 60, "running")
    gone = await pod_where(client, ns, "gone", running, 60, "running")
    cluster.agents["node-2"].stop()
    # deleted while its agent is down: nothing on the node hears of it
    await client.pods(ns).delete("gone", grace_period_seconds=0)
    assert gone.metadata.uid in cluster.sandbox_uids("node-2")
    agent = cluster.start_agent(cluster.node("node-2"))

    async def adopted() -> bool:
        return "adopted pods synced" in agent.log_path.read_text()
    await eventually(adopted, 60, "the restarted agent to sync the pods it found")
    after = await client.pods(ns).get("keep")
    assert running(after)
    b, a = before.status.container_statuses[0], after.status.container_statuses[0]
    assert (a.container_id, a.restart_count) == (b.container_id, b.restart_count)
    assert after.status.pod_ip == before.status.pod_ip
    uids = cluster.sandbox_uids("node-2")
    assert before.metadata.uid in uids and gone.metadata.uid not in uids


async def test_a_dead_node_goes_not_ready_and_its_pods_move(
        cluster: AgentCluster, client: navarch.Client, ns: str,
        registry: dict[str, str]) -> None:
    labels = {"app": "mover"}
    tolerations = [{"key": f"node.kubernetes.io/{k}", "operator": "Exists",
                    "effect": "NoExecute", "tolerationSeconds": 2}
                   for k in ("unreachable", "not-ready")]
    await client.deployments(ns).create(obj({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "mover", "namespace": ns},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "tolerations": tolerations, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": registry["busybox"],
                                     "command": ["sleep", "3600"]}]}}}}))

    async def spread() -> Any:
        pods = (await client.pods(ns).list()).items
        return pods if len(pods) == 3 and all(running(p) for p in pods) else None
    pods = await eventually(spread, 90, "3 running pods")
    victim = "node-3"
    doomed = {p.metadata.name for p in pods if p.spec.node_name == victim}
    cluster.kill_node(victim)

    async def not_ready() -> bool:
        node = await client.nodes().get(victim)
        return any(c.type == "Ready" and c.status != "True" for c in node.status.conditions)
    await eventually(not_ready, 60, f"{victim} to be marked not ready")

    async def moved() -> bool:
        live = [p for p in (await client.pods(ns).list()).items
                if not p.metadata.HasField("deletion_timestamp") and p.spec.node_name != victim]
        return len(live) == 3 and all(running(p) for p in live) and \
            not {p.metadata.name for p in live} & doomed
    await eventually(moved, 120, "the pods to come back on live nodes")


async def test_termination_runs_prestop_then_sigterm_then_sigkill_after_grace(
        client: navarch.Client, ns: str, registry: dict[str, str], tmp_path: Any) -> None:
    host = tmp_path / "term"
    host.mkdir()
    mount = {"volumeMounts": [{"name": "host", "mountPath": "/host"}]}
    volumes = [{"name": "host", "hostPath": {"path": str(host), "type": "Directory"}}]
    polite = "trap 'echo term >> /host/log; exit 0' TERM; while true; do sleep 0.1; done"
    await client.pods(ns).create(pod("polite", ns, [{
        "name": "c", "image": registry["busybox"], "command": ["sh", "-c", polite],
        "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c",
                                                       "echo prestop >> /host/log"]}}},
        **mount}], volumes=volumes, terminationGracePeriodSeconds=20))
    stubborn = "trap '' TERM; while true; do sleep 0.1; done"
    await client.pods(ns).create(pod("stubborn", ns, [{
        "name": "c", "image": registry["busybox"], "command": ["sh", "-c", stubborn]}],
        terminationGracePeriodSeconds=3))
    for name in ("polite", "stubborn"):
        await pod_where(client, ns, name, running, 60, f"{name} running")

    async def gone(name: str) -> bool:
        return name not in {p.metadata.name for p in (await client.pods(ns).list()).items}

    started = time.monotonic()
    await client.pods(ns).delete("polite")
    await eventually(lambda: gone("polite"), 30, "the polite pod to be gone")
    assert time.monotonic() - started < 15  # it left on SIGTERM, long before its grace
    written = (host / "log").read_text().split() if (host / "log").exists() else []
    events = [f"{e.reason}: {e.message}" for e in (await client.events(ns).list()).items
              if e.involved_object.name == "polite"]
    assert written == ["prestop", "term"], events
    started = time.monotonic()
    await client.pods(ns).delete("stubborn")
    await eventually(lambda: gone("stubborn"), 30, "the stubborn pod to be gone")
    assert 3 <= time.monotonic() - started < 15  # SIGKILL once its 3 s grace ran out


async def test_a_host_port_reaches_the_pod_from_another_node(
        cluster: AgentCluster, client: navarch.Client, ns: str,
        registry: dict[str, str]) -> None:
    await client.pods(ns).create(pod("hp", ns, [{
        "name": "web", "image": registry["web1"],
        "ports": [{"containerPort": 8080, "hostPort": 30080}]}], nodeName="node-1"))
    await pod_where(client, ns, "hp", running, 60, "running")
    node_ip = cluster.node("node-1").ip
    answer = cluster.in_node("node-2", "busybox", "wget", "-qO-",
                             f"http://{node_ip}:30080/")
    assert answer.stdout == "navarch web v1\n", answer.stderr


async def test_pod_metrics_from_real_containers_drive_a_horizontal_pod_autoscaler(
        client: navarch.Client, ns: str, registry: dict[str, str]) -> None:
    labels = {"app": "burner"}
    await client.deployments(ns).create(obj({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "burner", "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": registry["busybox"],
                                     # its limit, 200m, ten times its request
                                     "command": ["sh", "-c", "while true; do :; done"],
                                     "resources": {"requests": {"cpu": "20m"},
                                                   "limits": {"cpu": "200m"}}}]}}}}))

    async def measured() -> Any:
        items = (await client.resource("podmetrics", ns).list()).items
        return items[0] if items else None
    metrics = await eventually(measured, 60, "the pod's PodMetrics")
    (usage,) = metrics.containers
    assert usage.name == "c"
    assert parse_quantity(usage.usage["cpu"]).milli_value() > 50, usage
    assert parse_quantity(usage.usage["memory"]).value() > 0, usage
    pods = (await client.pods(ns).list()).items
    assert [p.metadata.uid for p in pods] == [metrics.metadata.owner_references[0].uid]

    await client.horizontalpodautoscalers(ns).create(obj({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "burner", "namespace": ns},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": "burner"},
                 "minReplicas": 1, "maxReplicas": 3,
                 "metrics": [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization",
                                               "averageUtilization": 50}}}]}}))

    async def scaled() -> Any:
        d = await client.deployments(ns).get("burner")
        return d if d.spec.replicas == 3 else None
    await eventually(scaled, 90, "the autoscaler to scale the Deployment to its maximum")
    await client.horizontalpodautoscalers(ns).delete("burner")
    await client.deployments(ns).delete("burner")  # stop burning CPU for the next tests

"""``navarch simnodes`` as a process against a real API server: nodes register Ready,
their leases are renewed, and pods bound to them run, exit and go away as a kubelet's."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

import navarch
from navarch._codec import from_dict
from navarch.v1 import core_pb2
from tests.api.util import eventually
from tests.control.conftest import Daemons

pytestmark = pytest.mark.asyncio


def pod(name: str, ns: str, annotations: dict[str, str] | None = None,
        restart_policy: str = "Always", grace: int = 30) -> core_pb2.Pod:
    return from_dict({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
        "spec": {"restartPolicy": restart_policy, "terminationGracePeriodSeconds": grace,
                 "schedulerName": "none",  # no scheduler here: bound by hand
                 "initContainers": [{"name": "init", "image": "busybox"}],
                 "containers": [{"name": "app", "image": "nginx:1.25"}]},
    }, core_pb2.Pod)


async def test_nodes_leases_and_pod_lifecycle(daemons: Daemons, client: navarch.Client,
                                              ns: str) -> None:
    prefix = f"s{uuid.uuid4().hex[:6]}-"
    names = [f"{prefix}{i:04d}" for i in range(3)]
    proc = daemons.start("simnodes", "--count", "3", "--name-prefix", prefix, "--zones", "2",
                  "--labels", "disk=ssd", "--taints", "dedicated=sim:NoSchedule",
                  "--images", "nginx:1.25", "--startup-delay", "0.1",
                  "--heartbeat-interval", "0.5", "--status-interval", "1", "--pod-metrics",
                  "--pod-metrics-interval", "0.5")

    # registered before health said SERVING: Ready, labelled, tainted, with capacity
    for i, name in enumerate(names):
        node = await client.nodes().get(name)
        ready = {c.type: c.status for c in node.status.conditions}
        assert ready == {"Ready": "True", "MemoryPressure": "False",
                         "DiskPressure": "False", "PIDPressure": "False"}
        assert node.metadata.labels["kubernetes.io/hostname"] == name
        assert node.metadata.labels["topology.kubernetes.io/zone"] == f"zone-{i % 2}"
        assert node.metadata.labels["disk"] == "ssd"
        assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [
            ("dedicated", "sim", "NoSchedule")]
        assert node.status.allocatable["pods"] == "110"
        assert node.status.images[0].names == ["nginx:1.25"]

    # leases renewed every heartbeat
    leases = client.leases("kube-node-lease")

    async def lease() -> Any:
        try:
            return await leases.get(names[0])
        except navarch.NotFound:
            return None
    first = await eventually(lease, 10, "the node lease")
    assert first.spec.holder_identity == names[0]
    assert first.spec.lease_duration_seconds == 40

    async def renewed() -> bool:
        now = await leases.get(names[0])
        return now.spec.renew_time.ToMicroseconds() > first.spec.renew_time.ToMicroseconds()
    await eventually(renewed, 10, "the lease to be renewed")

    pods = client.pods(ns)
    # a pod bound by hand becomes Running and Ready
    await pods.create(pod("web", ns))
    await client.bind(ns, "web", names[1])

    async def phase(name: str, want: str) -> Any:
        p = await pods.get(name)
        return p if p.status.phase == want else None
    web = await eventually(lambda: phase("web", "Running"), 10, "web Running")
    conditions = {c.type: c.status for c in web.status.conditions}
    assert conditions["Ready"] == "True" and conditions["ContainersReady"] == "True"
    assert web.status.pod_ip and web.status.host_ip.startswith("172.30.")
    (app,) = web.status.container_statuses
    assert app.ready and app.started and app.state.HasField("running")
    assert app.image == "nginx:1.25" and app.image_id.startswith("sha256:")
    assert web.status.init_container_statuses[0].state.terminated.reason == "Completed"

    # its usage is published as PodMetrics (10 % of requests: none here)
    metrics = client.resource("podmetrics", ns)

    async def usage() -> Any:
        try:
            return await metrics.get("web")
        except navarch.NotFound:
            return None
    published = await eventually(usage, 10, "PodMetrics of web")
    assert [c.name for c in published.containers] == ["app"]
    assert published.metadata.owner_references[0].uid == web.metadata.uid

    # a container that exits 1 under restartPolicy Never: Failed
    await pods.create(pod("crash", ns, {"simnodes.navarch.io/exit-code": "1"}, "Never"))
    await client.bind(ns, "crash", names[2])
    crash = await eventually(lambda: phase("crash", "Failed"), 10, "crash Failed")
    assert crash.status.container_statuses[0].state.terminated.exit_code == 1

    # one that runs a while and exits 0: Succeeded
    await pods.create(pod("job", ns, {"simnodes.navarch.io/run-seconds": "0.3"}, "OnFailure"))
    await client.bind(ns, "job", names[0])
    await eventually(lambda: phase("job", "Succeeded"), 10, "job Succeeded")

    # deletion with a grace period: the simulated node finishes it
    await pods.delete("web")

    async def gone() -> bool:
        try:
            await pods.get("web")
        except navarch.NotFound:
            return True
        return False
    await eventually(gone, 10, "web to be deleted")

    # SIGTERM: heartbeats stop, the nodes stay (as a stopped kubelet's)
    proc.stop()
    last = (await leases.get(names[0])).spec.renew_time.ToMicroseconds()
    await asyncio.sleep(1.5)  # three heartbeat intervals: no renewal may happen
    assert (await leases.get(names[0])).spec.renew_time.ToMicroseconds() == last
    assert (await client.nodes().get(names[0])).metadata.name == names[0]

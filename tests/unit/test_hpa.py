"""The horizontal pod autoscaler: the replica calculator, stabilization and limits
(table-driven), and the controller over a fake API with a FakeClock."""

from __future__ import annotations

from typing import Any

import pytest

from navarch._codec import from_dict, to_dict
from navarch.v1 import apps_pb2, autoscaling_pb2, core_pb2, metrics_pb2
from services.controllers._replicacalc import (
    MetricsError,
    PodSample,
    Rules,
    limit_rate,
    limit_with_behavior,
    resource_proposal,
    stabilize,
    stabilize_with_behavior,
)
from services.controllers.podautoscaler import (
    HorizontalPodAutoscalerController,
    pod_samples,
)
from tests.unit.workload_harness import NOW, Harness


def pods(*usages: int | None, **kw: Any) -> list[PodSample]:
    return [PodSample(f"p{i}", kw.get("request", 1000), u, kw.get("ready", True))
            for i, u in enumerate(usages)]


@pytest.mark.parametrize(("current", "samples", "target", "want"), [
    # (replicas, utilization)
    (2, pods(900, 900), 50, (4, 90)),  # ceil(2 * 90/50)
    (2, pods(520, 520), 50, (2, 52)),  # within tolerance 0.1
    (4, pods(100, 100, 100, 100), 50, (1, 10)),  # ceil(4 * 10/50)
    (3, pods(1000, 1000, 1000), 80, (4, 100)),  # ceil(3 * 1.25) = 4
    # missing metrics: scale-down counts them at 100% of request → no flip, less shrink
    (3, pods(100, 100, None), 50, (3, 10)),  # (100+100+1000)/3000=40% → 0.8 → ceil(2.4)=3
    (4, pods(100, 100, None, None), 50, (4, 10)),  # 2200/4000=55% → flips up: keep
    # missing metrics on scale-up count as 0
    (3, pods(1000, 1000, None), 50, (4, 100)),  # 2000/3000=66% → 1.33 → ceil(4)=4
    # unready pods count as 0 on scale-up
    (3, [*pods(1000, 1000), PodSample("u", 1000, 900, False)], 50, (4, 100)),
    # ignored pods (deleting, failed) do not count
    (2, [*pods(900, 900), PodSample("x", 1000, 0, True, True)], 50, (4, 90)),
])
def test_resource_proposal(current: int, samples: list[PodSample], target: int,
                      want: tuple[int, int]) -> None:
    got = resource_proposal(current, samples, target, 0.1)
    assert (got.replicas, got.utilization) == want


@pytest.mark.parametrize(("samples", "match"), [
    ([], "no pods matched"),
    (pods(500, request=None), "missing request for cpu"),
    (pods(None, None), "did not receive metrics"),
])
def test_resource_proposal_errors(samples: list[PodSample], match: str) -> None:
    with pytest.raises(MetricsError, match=match):
        resource_proposal(2, samples, 50)


@pytest.mark.parametrize(("history", "proposed", "want", "reason"), [
    ([], 3, 3, "ReadyForNewScale"),
    ([(NOW - 100, 5)], 3, 5, "ScaleDownStabilized"),
    ([(NOW - 301, 5)], 3, 3, "ReadyForNewScale"),  # out of the 300 s window
    ([(NOW - 100, 2)], 4, 4, "ReadyForNewScale"),  # scale-up is immediate
])
def test_stabilize(history: list[tuple[float, int]], proposed: int, want: int,
                   reason: str) -> None:
    got = stabilize(history, NOW, proposed, 300)
    assert (got.replicas, got.reason) == (want, reason)
    assert got.history[-1] == (NOW, proposed)


@pytest.mark.parametrize(("current", "desired", "minimum", "maximum", "want", "reason"), [
    (2, 3, 1, 10, 3, "DesiredWithinRange"),
    (2, 0, 1, 10, 1, "TooFewReplicas"),
    (2, 12, 1, 10, 4, "ScaleUpLimit"),  # max(2*2, 4)
    (5, 12, 1, 8, 8, "TooManyReplicas"),
    (1, 6, 1, 10, 4, "ScaleUpLimit"),
])
def test_limit_rate(current: int, desired: int, minimum: int, maximum: int, want: int,
                    reason: str) -> None:
    got = limit_rate(current, desired, minimum, maximum)
    assert (got.replicas, got.reason) == (want, reason)


UP = Rules(0, "Max", (("Pods", 4, 15), ("Percent", 100, 15)))
DOWN = Rules(300, "Max", (("Percent", 100, 15),))


@pytest.mark.parametrize(("current", "desired", "events", "up", "down", "want", "reason"), [
    (2, 20, [], UP, DOWN, 6, "ScaleUpLimit"),  # max(2+4, 2*2)
    (10, 40, [], UP, DOWN, 20, "ScaleUpLimit"),  # max(14, 20)
    (10, 40, [(NOW - 5, 5)], UP, DOWN, 10, "ScaleUpLimit"),  # 5 of the period used: start 5
    (10, 1, [], UP, Rules(0, "Max", (("Pods", 2, 60),)), 8, "ScaleDownLimit"),
    (10, 1, [], UP, DOWN, 2, "TooFewReplicas"),
    (10, 12, [], Rules(0, "Disabled"), DOWN, 10, "ScaleUpLimit"),
    (3, 3, [], UP, DOWN, 3, "DesiredWithinRange"),
])
def test_limit_with_behavior(current: int, desired: int, events: list[tuple[float, int]],
                             up: Rules, down: Rules, want: int, reason: str) -> None:
    got = limit_with_behavior(current, desired, 2, 30, up, down, events, NOW)
    assert (got.replicas, got.reason) == (want, reason)


@pytest.mark.parametrize(("history", "current", "proposed", "want", "reason"), [
    ([], 3, 5, 5, "ReadyForNewScale"),
    ([(NOW - 10, 8)], 5, 3, 5, "ScaleDownStabilized"),  # no higher than current
    ([(NOW - 10, 2)], 2, 6, 2, "ScaleUpStabilized"),
])
def test_stabilize_with_behavior(history: list[tuple[float, int]], current: int,
                                 proposed: int, want: int, reason: str) -> None:
    got = stabilize_with_behavior(history, NOW, current, proposed, Rules(60), Rules(300))
    assert (got.replicas, got.reason) == (want, reason)


def test_pod_metrics_round_trip_through_the_codec() -> None:
    doc = {"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
           "metadata": {"name": "web-1", "namespace": "default"},
           "timestamp": "2026-01-01T00:00:00Z", "window": "30s",
           "containers": [{"name": "c", "usage": {"cpu": "250m", "memory": "64Mi"}}]}
    pm = from_dict(doc, metrics_pb2.PodMetrics)
    assert pm.window.seconds == 30 and pm.containers[0].usage["cpu"] == "250m"
    assert to_dict(pm) == doc


# --- the controller -------------------------------------------------------------------------

def deployment(replicas: int) -> apps_pb2.Deployment:
    d = apps_pb2.Deployment(api_version="apps/v1", kind="Deployment")
    d.metadata.name, d.metadata.namespace = "web", "default"
    d.spec.replicas = replicas
    d.spec.selector.match_labels["app"] = "web"
    d.status.replicas = replicas
    return d


def hpa(target: int = 50, minimum: int = 1, maximum: int = 10
        ) -> autoscaling_pb2.HorizontalPodAutoscaler:
    h = autoscaling_pb2.HorizontalPodAutoscaler(api_version="autoscaling/v2",
                                                kind="HorizontalPodAutoscaler")
    h.metadata.name, h.metadata.namespace = "web", "default"
    ref = h.spec.scale_target_ref
    ref.api_version, ref.kind, ref.name = "apps/v1", "Deployment", "web"
    h.spec.min_replicas, h.spec.max_replicas = minimum, maximum
    m = h.spec.metrics.add(type="Resource")
    m.resource.name = "cpu"
    m.resource.target.type = "Utilization"
    m.resource.target.average_utilization = target
    return h


def pod(name: str) -> core_pb2.Pod:
    p = core_pb2.Pod(api_version="v1", kind="Pod")
    p.metadata.name, p.metadata.namespace = name, "default"
    p.metadata.labels["app"] = "web"
    p.spec.containers.add(name="c", image="img").resources.requests["cpu"] = "500m"
    p.status.phase = "Running"
    p.status.conditions.add(type="Ready", status="True")
    return p


def usage(name: str, cpu: str) -> metrics_pb2.PodMetrics:
    m = metrics_pb2.PodMetrics(api_version="metrics.k8s.io/v1beta1", kind="PodMetrics")
    m.metadata.name, m.metadata.namespace = name, "default"
    m.containers.add(name="c").usage["cpu"] = cpu
    return m


@pytest.mark.asyncio
async def test_controller_scales_up_then_down_after_the_stabilization_window() -> None:
    h = Harness(HorizontalPodAutoscalerController, [
        deployment(2), hpa(50), pod("a"), pod("b"), usage("a", "450m"), usage("b", "450m")])
    h.ctx.options.update(hpa_sync_period=15.0, hpa_downscale_stabilization=300.0)
    await h.start()
    try:
        assert h.client.stored("deployments")[0].spec.replicas == 4  # 2 * 90/50 → 4
        status = h.client.stored("horizontalpodautoscalers")[0].status
        assert (status.current_replicas, status.desired_replicas) == (2, 4)
        assert status.current_metrics[0].resource.current.average_utilization == 90
        assert status.last_scale_time.seconds == int(NOW)
        conds = {c.type: (c.status, c.reason) for c in status.conditions}
        assert conds == {"AbleToScale": ("True", "SucceededRescale"),
                         "ScalingActive": ("True", "ValidMetricFound"),
                         "ScalingLimited": ("False", "DesiredWithinRange")}
        events = [e.message for e in h.ctx.recorder.recorded]
        assert events == ["New size: 4; reason: cpu resource utilization (percentage of "
                          "request) above target"]
        # the load drops: the recommendation falls to 1, held at 4 for 300 s
        metrics = h.client.resource("podmetrics", "default")
        for name in ("a", "b"):
            await metrics.update(usage(name, "50m"))
        await h.advance(15)
        assert h.client.stored("deployments")[0].spec.replicas == 4
        reasons = {c.type: c.reason
                   for c in h.client.stored("horizontalpodautoscalers")[0].status.conditions}
        assert reasons["AbleToScale"] == "ScaleDownStabilized"
        for _ in range(19):
            await h.advance(15)
        assert h.client.stored("deployments")[0].spec.replicas == 1
        assert h.ctx.recorder.recorded[-1].message == \
            "New size: 1; reason: All metrics below target"
    finally:
        await h.stop()


@pytest.mark.asyncio
async def test_controller_reports_missing_metrics_and_zero_replicas() -> None:
    h = Harness(HorizontalPodAutoscalerController, [deployment(2), hpa(), pod("a")])
    await h.start()
    try:
        status = h.client.stored("horizontalpodautoscalers")[0].status
        conds = {c.type: (c.status, c.reason) for c in status.conditions}
        assert conds["ScalingActive"] == ("False", "FailedGetResourceMetric")
        assert h.client.stored("deployments")[0].spec.replicas == 2
        await h.client.deployments().scale("web", 0)
        await h.advance(15)
        status = h.client.stored("horizontalpodautoscalers")[0].status
        conds = {c.type: (c.status, c.reason) for c in status.conditions}
        assert conds["ScalingActive"] == ("False", "ScalingDisabled")
    finally:
        await h.stop()


def test_pod_samples_read_requests_usage_and_readiness() -> None:
    pending = pod("c")
    pending.status.phase = "Pending"
    got = pod_samples([pod("a"), pod("b"), pending], {"a": usage("a", "250m")})
    assert got == [PodSample("a", 500, 250, True), PodSample("b", 500, None, True),
                   PodSample("c", 500, None, False)]
    per_pod = pod_samples([pod("a")], {"a": usage("a", "250m")}, "cpu", 100)
    assert per_pod == [PodSample("a", 100, 250, True)]
    assert pod_samples([pod("a")], {}, "memory")[0].request_milli is None


@pytest.mark.asyncio
async def test_average_value_and_several_metrics_take_the_largest_proposal() -> None:
    autoscaler = hpa(90)  # utilization 90 % → stays at 2
    m = autoscaler.spec.metrics.add(type="Resource")
    m.resource.name = "cpu"
    m.resource.target.type = "AverageValue"
    m.resource.target.average_value = "150m"  # 450m each: 3 times the target → 6
    h = Harness(HorizontalPodAutoscalerController, [
        deployment(2), autoscaler, pod("a"), pod("b"), usage("a", "450m"),
        usage("b", "450m")])
    await h.start()
    try:
        assert h.client.stored("deployments")[0].spec.replicas == 4  # scale-up limit
        status = h.client.stored("horizontalpodautoscalers")[0].status
        assert [(c.resource.current.average_utilization, c.resource.current.average_value)
                for c in status.current_metrics] == [(90, "450m"), (0, "450m")]
        conds = {c.type: c.reason for c in status.conditions}
        assert conds["ScalingLimited"] == "ScaleUpLimit"
        assert h.ctx.recorder.recorded[-1].message == \
            "New size: 4; reason: cpu resource above target"
    finally:
        await h.stop()

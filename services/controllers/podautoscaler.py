"""The horizontal pod autoscaler (autoscaling/v2): scales a Deployment, ReplicaSet or
StatefulSet through its scale subresource to hold the pods' resource usage (CPU
utilisation, typically) at a target.

Flow (every ``hpa_sync_period`` seconds per HPA, and on spec changes)::

    scale subresource (replicas, selector) + pods + PodMetrics (metrics.k8s.io)
      ──samples──▶ resource_proposal ──▶ stabilize[_with_behavior] ──▶ limit_*   (pure,
      _replicacalc.py) ──▶ scale when it differs (event SuccessfulRescale)
      ──▶ status: currentReplicas, desiredReplicas, currentMetrics, lastScaleTime and the
          AbleToScale / ScalingActive / ScalingLimited conditions

Contracts:
- Resource metrics (cpu, memory… from PodMetrics) with a Utilization or AverageValue
  target are evaluated; the largest proposal wins, as in Kubernetes. Other metric types
  are skipped; with none usable ScalingActive is False (InvalidMetricSourceType).
- Recommendations and scale events live in this process (as in kube-controller-manager):
  a new leader starts with an empty stabilization window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from navarch._errors import ApiError
from navarch._kinds import UnknownKind, kind_for
from navarch._labels import label_selector, parse_label_selector
from navarch._pods import pod_ready
from navarch._quantity import parse_quantity
from navarch.v1 import autoscaling_pb2, core_pb2

from ._replicacalc import (
    MetricsError,
    PodSample,
    Recommendation,
    Rules,
    ScaleEvent,
    limit_rate,
    limit_with_behavior,
    resource_proposal,
    stabilize,
    stabilize_with_behavior,
)
from .framework import Controller, clone, split_key

__all__ = ["HorizontalPodAutoscalerController", "describe_metric", "pod_samples",
           "set_condition"]

def _milli(text: str) -> int:
    return parse_quantity(text).milli_value()


def pod_samples(pods: list[core_pb2.Pod], metrics: dict[str, Any],
                resource: str = "cpu", per_pod_target: int | None = None) -> list[PodSample]:
    """Samples of ``pods`` with their PodMetrics (by pod name) for ``resource``. With
    ``per_pod_target`` (an AverageValue target, milli-units) every pod's "request" is that
    target, which turns the utilization arithmetic into Kubernetes' plain-metric one."""
    out = []
    for pod in pods:
        request: int | None = per_pod_target
        if per_pod_target is None:
            request = 0
            for ctr in pod.spec.containers:
                amount = ctr.resources.requests.get(resource)
                if amount is None:
                    request = None
                    break
                request += _milli(amount)
        found = metrics.get(pod.metadata.name)
        usage = None
        if found is not None:
            usage = sum(_milli(c.usage[resource]) for c in found.containers
                        if resource in c.usage)
        ready = pod.status.phase != "Pending" and pod_ready(pod)
        ignored = pod.metadata.HasField("deletion_timestamp") or pod.status.phase == "Failed"
        out.append(PodSample(pod.metadata.name, request, usage, ready, ignored))
    return out


def describe_metric(resource: str, target_type: str) -> str:
    """Kubernetes' name of a Resource metric in events and conditions."""
    if target_type == "Utilization":
        return f"{resource} resource utilization (percentage of request)"
    return f"{resource} resource"


def set_condition(status: autoscaling_pb2.HorizontalPodAutoscalerStatus, type_: str,
                  value: str, reason: str, message: str, now: float) -> None:
    """Set one condition; its transition time moves only when the status changes."""
    for cond in status.conditions:
        if cond.type == type_:
            if cond.status != value:
                cond.last_transition_time.FromSeconds(int(now))
            cond.status, cond.reason, cond.message = value, reason, message
            return
    cond = status.conditions.add(type=type_, status=value, reason=reason, message=message)
    cond.last_transition_time.FromSeconds(int(now))


def _rules(rules: autoscaling_pb2.HPAScalingRules, default_window: float) -> Rules:
    window = (float(rules.stabilization_window_seconds)
              if rules.HasField("stabilization_window_seconds") else default_window)
    select = rules.select_policy if rules.HasField("select_policy") else "Max"
    return Rules(window, select, tuple((p.type, p.value, p.period_seconds)
                                       for p in rules.policies))


@dataclass
class _Memory:
    """What one HPA's evaluations remember (this process only)."""

    recommendations: tuple[Recommendation, ...] = ()
    events: tuple[ScaleEvent, ...] = ()


class HorizontalPodAutoscalerController(Controller):
    """Evaluates each HPA every sync period and scales its target."""

    name = "horizontalpodautoscaling"

    async def setup(self) -> None:
        options = self.ctx.options
        self.sync_period = float(options.get("hpa_sync_period", 15.0))
        self.window = float(options.get("hpa_downscale_stabilization", 300.0))
        self.tolerance = float(options.get("hpa_tolerance", 0.1))
        self.memory: dict[str, _Memory] = {}
        factory = self.ctx.informers
        self.hpas = factory.informer("horizontalpodautoscalers")
        self.pods = factory.informer("pods")
        self.metrics = factory.informer("podmetrics")
        await self.hpas.add_handlers(self.enqueue, self._updated, self._deleted)

    def _updated(self, old: Any, new: Any) -> None:
        if old.metadata.generation != new.metadata.generation:
            self.enqueue(new)

    def _deleted(self, hpa: Any) -> None:
        self.memory.pop(f"{hpa.metadata.namespace}/{hpa.metadata.name}", None)

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        hpa = self.hpas.get(name, namespace)
        if hpa is None:
            return
        self.queue.add_after(key, self.sync_period)
        status = clone(hpa.status)
        status.observed_generation = hpa.metadata.generation
        now = self.clock.now()
        try:
            await self._evaluate(key, hpa, status, now)
        finally:
            if status != hpa.status:
                new = clone(hpa)
                new.status.CopyFrom(status)
                await self.client.resource("horizontalpodautoscalers",
                                           namespace).update_status(new)

    async def _evaluate(self, key: str, hpa: Any,
                        status: autoscaling_pb2.HorizontalPodAutoscalerStatus,
                        now: float) -> None:
        spec, ref = hpa.spec, hpa.spec.scale_target_ref
        namespace = hpa.metadata.namespace
        try:
            target = self.client.resource(kind_for(ref.api_version, ref.kind).resource,
                                          namespace)
            scale = await target.get_scale(ref.name)
            selector = scale.status.selector or await self._selector(target, ref.name)
        except (ApiError, UnknownKind) as exc:
            set_condition(status, "AbleToScale", "False", "FailedGetScale",
                          f"the HPA controller was unable to get the target's current "
                          f"scale: {exc}", now)
            self.recorder.event(hpa, "Warning", "FailedGetScale", str(exc))
            return
        current = scale.spec.replicas
        minimum = spec.min_replicas if spec.HasField("min_replicas") else 1
        status.current_replicas = scale.status.replicas
        reason = ""
        if current == 0 and minimum != 0:
            set_condition(status, "ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is "
                          "zero", now)
            status.desired_replicas = 0
            return
        if current > spec.max_replicas:
            desired, reason = spec.max_replicas, "Current number of replicas above " \
                "Spec.MaxReplicas"
        elif current < minimum:
            desired, reason = minimum, "Current number of replicas below Spec.MinReplicas"
        else:
            proposal = self._propose(hpa, status, current, selector, now)
            if proposal is None:
                return
            desired = self._normalize(key, hpa, status, current, proposal[0], minimum, now)
            reason = (f"{proposal[1]} above target" if desired > current
                      else "All metrics below target")
        status.desired_replicas = desired
        if desired == current:
            return
        try:
            await target.scale(ref.name, desired)
        except ApiError as exc:
            set_condition(status, "AbleToScale", "False", "FailedUpdateScale",
                          f"the HPA controller was unable to update the target scale: {exc}",
                          now)
            self.recorder.event(hpa, "Warning", "FailedRescale",
                                f"New size: {desired}; reason: {reason}; error: {exc}")
            return
        set_condition(status, "AbleToScale", "True", "SucceededRescale",
                      f"the HPA controller was able to update the target scale to {desired}",
                      now)
        self.recorder.event(hpa, "Normal", "SuccessfulRescale",
                            f"New size: {desired}; reason: {reason}")
        memory = self.memory.setdefault(key, _Memory())
        memory.events += ((now, desired - current),)
        status.last_scale_time.FromSeconds(int(now))

    async def _selector(self, target: Any, name: str) -> str:
        obj = await target.get(name)
        return str(label_selector(obj.spec.selector))

    def _propose(self, hpa: Any, status: autoscaling_pb2.HorizontalPodAutoscalerStatus,
                 current: int, selector: str, now: float) -> tuple[int, str] | None:
        """The largest replica count the Resource metrics ask for, and that metric's
        name; None (ScalingActive False) when no metric gives one."""
        namespace = hpa.metadata.namespace
        expr = parse_label_selector(selector)
        pods = [p for p in self.pods.list(namespace) if expr.matches(dict(p.metadata.labels))]
        metrics = {m.metadata.name: m for m in self.metrics.list(namespace)}
        best: tuple[int, str] | None = None
        failure = ("InvalidMetricSourceType", "no metric is a Resource metric with a "
                   "Utilization or AverageValue target")
        current_metrics = []
        for spec in hpa.spec.metrics:
            target = spec.resource.target
            if spec.type != "Resource" or target.type not in ("Utilization", "AverageValue"):
                continue
            resource, name = spec.resource.name, describe_metric(spec.resource.name,
                                                                 target.type)
            try:
                if target.type == "Utilization":
                    samples = pod_samples(pods, metrics, resource)
                    proposal = resource_proposal(current, samples,
                                                 target.average_utilization, self.tolerance,
                                                 resource)
                else:
                    per_pod = _milli(target.average_value or "0")
                    samples = pod_samples(pods, metrics, resource, per_pod)
                    proposal = resource_proposal(current, samples, 100, self.tolerance,
                                                 resource)
            except (MetricsError, ValueError) as exc:
                reason = exc.reason if isinstance(exc, MetricsError) else "InvalidMetric"
                failure = (reason, str(exc))
                continue
            cm = autoscaling_pb2.MetricStatus(type="Resource")
            cm.resource.name = resource
            if target.type == "Utilization":
                cm.resource.current.average_utilization = proposal.utilization
            cm.resource.current.average_value = f"{proposal.average_milli}m"
            current_metrics.append(cm)
            if best is None or proposal.replicas > best[0]:
                best = (proposal.replicas, name)
        if best is None:
            set_condition(status, "ScalingActive", "False", failure[0],
                          f"the HPA was unable to compute the replica count: {failure[1]}",
                          now)
            self.recorder.event(hpa, "Warning", failure[0], failure[1])
            return None
        set_condition(status, "ScalingActive", "True", "ValidMetricFound",
                      f"the HPA was able to successfully calculate a replica count from "
                      f"{best[1]}", now)
        del status.current_metrics[:]
        status.current_metrics.extend(current_metrics)
        return best

    def _normalize(self, key: str, hpa: Any,
                   status: autoscaling_pb2.HorizontalPodAutoscalerStatus, current: int,
                   proposed: int, minimum: int, now: float) -> int:
        spec = hpa.spec
        memory = self.memory.setdefault(key, _Memory())
        if spec.HasField("behavior"):
            up = _rules(spec.behavior.scale_up, 0.0)
            down = _rules(spec.behavior.scale_down, self.window)
            stable = stabilize_with_behavior(memory.recommendations, now, current, proposed,
                                             up, down)
            longest = max([p[2] for p in up.policies + down.policies] + [0])
            memory.events = tuple(e for e in memory.events if e[0] > now - longest)
            limited = limit_with_behavior(current, stable.replicas, minimum,
                                          spec.max_replicas, up, down, memory.events, now)
        else:
            stable = stabilize(memory.recommendations, now, proposed, self.window)
            limited = limit_rate(current, stable.replicas, minimum, spec.max_replicas)
        memory.recommendations = stable.history
        set_condition(status, "AbleToScale", "True", stable.reason, stable.message, now)
        set_condition(status, "ScalingLimited", "True" if limited.limited else "False",
                      limited.reason, limited.message, now)
        return limited.replicas

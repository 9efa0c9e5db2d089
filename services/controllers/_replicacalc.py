"""The horizontal pod autoscaler's arithmetic, as Kubernetes' replica calculator and
``normalizeDesiredReplicas[WithBehaviors]`` do it. Pure: every input is plain data.

    samples (pods, requests, usage) ──resource_proposal──▶ replicas wanted by the metric
      ──stabilize / stabilize_with_behavior──▶ recommendation (window of recent ones)
      ──limit_rate / limit_with_behavior──▶ replicas to set, and the ScalingLimited reason
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Limited",
    "MetricsError",
    "PodSample",
    "Proposal",
    "Rules",
    "ScaleEvent",
    "Stabilized",
    "limit_rate",
    "limit_with_behavior",
    "resource_proposal",
    "stabilize",
    "stabilize_with_behavior",
]


class MetricsError(Exception):
    """No replica count can be computed from the metric (ScalingActive=False)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass(frozen=True)
class PodSample:
    """One pod selected by the scale target: its cpu request and usage (milli-cores)."""

    name: str
    request_milli: int | None  # None: a container has no cpu request
    usage_milli: int | None = None  # None: no metrics for the pod
    ready: bool = True  # Ready condition True (and not Pending)
    ignored: bool = False  # being deleted or Failed


@dataclass(frozen=True)
class Proposal:
    """What the metric asks for."""

    replicas: int
    utilization: int  # current average utilization, percent of request
    average_milli: int  # current average usage per pod with metrics
    ready_pods: int


def _ratio(usage: dict[str, int], requests: dict[str, int], target: int) -> tuple[float, int,
                                                                                   int]:
    total_usage = sum(usage.values())
    total_request = sum(requests[p] for p in usage)
    if total_request <= 0:
        raise MetricsError("FailedGetResourceMetric", "no cpu requests for pods with metrics")
    utilization = int(total_usage * 100 / total_request)
    return utilization / target, utilization, total_usage // max(len(usage), 1)


def resource_proposal(current: int, samples: Sequence[PodSample], target: int,
                      tolerance: float = 0.1, resource: str = "cpu") -> Proposal:
    """Kubernetes' GetResourceReplicas for ``resource`` at ``target`` percent of request
    (an AverageValue target is the same with every request set to the value and a target
    of 100 %).

    Missing metrics are handled conservatively: on a scale-down the pods without metrics
    count as using their whole request (or the target when above 100 %), on a scale-up as
    using nothing; unready pods count as using nothing on a scale-up and are otherwise
    left out. A proposal that the fill-ins would turn around keeps ``current``."""
    if not samples:
        raise MetricsError("FailedGetResourceMetric", "no pods matched the scale target's "
                           "selector")
    requests: dict[str, int] = {}
    usage: dict[str, int] = {}
    missing: list[str] = []
    unready: list[str] = []
    for s in samples:
        if s.ignored:
            continue
        if s.request_milli is None:
            raise MetricsError("FailedGetResourceMetric",
                               f"missing request for {resource} in pod {s.name}")
        requests[s.name] = s.request_milli
        if s.usage_milli is None:
            missing.append(s.name)
        elif not s.ready:
            unready.append(s.name)
        else:
            usage[s.name] = s.usage_milli
    if not usage and not unready:
        raise MetricsError("FailedGetResourceMetric",
                           "did not receive metrics for targeted pods (pods might be unready)")
    if not usage:
        raise MetricsError("FailedGetResourceMetric", "no ready pods with metrics")
    ready_count = len(usage)
    ratio, utilization, average = _ratio(usage, requests, target)
    up_with_unready = bool(unready) and ratio > 1.0
    if not up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return Proposal(current, utilization, average, ready_count)
        return Proposal(math.ceil(ratio * ready_count), utilization, average, ready_count)
    if missing:
        if ratio < 1.0:
            fallback = max(100, target)
            for name in missing:
                usage[name] = requests[name] * fallback // 100
        elif ratio > 1.0:
            for name in missing:
                usage[name] = 0
    if up_with_unready:
        for name in unready:
            usage[name] = 0
    new_ratio, _, _ = _ratio(usage, requests, target)
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) \
            or (new_ratio < 1.0 < ratio):
        return Proposal(current, utilization, average, ready_count)
    replicas = math.ceil(new_ratio * len(usage))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return Proposal(current, utilization, average, ready_count)
    return Proposal(replicas, utilization, average, ready_count)


# --- stabilization -------------------------------------------------------------------------

Recommendation = tuple[float, int]  # (time, replicas)


@dataclass(frozen=True)
class Stabilized:
    """A stabilized recommendation, why (AbleToScale reason and message), and the window
    of recommendations to keep for next time."""

    replicas: int
    reason: str
    message: str
    history: tuple[Recommendation, ...]


def stabilize(history: Sequence[Recommendation], now: float, proposed: int,
              window: float) -> Stabilized:
    """Without behavior: the highest recommendation of the last ``window`` seconds
    (``proposed`` included), so that scale-downs wait for the window."""
    kept = (*(r for r in history if r[0] > now - window), (now, proposed))
    best = max(r[1] for r in kept)
    if best != proposed:
        return Stabilized(best, "ScaleDownStabilized", "recent recommendations were higher "
                          "than current one, applying the highest recent recommendation", kept)
    return Stabilized(best, "ReadyForNewScale", "recommended size matches current size", kept)


@dataclass(frozen=True)
class Rules:
    """One direction's HPAScalingRules: window, select policy, (type, value, period)."""

    window: float
    select: str = "Max"
    policies: tuple[tuple[str, int, int], ...] = ()


def stabilize_with_behavior(history: Sequence[Recommendation], now: float, current: int,
                            proposed: int, up: Rules, down: Rules) -> Stabilized:
    """With behavior: no higher than the lowest recommendation of the scale-up window, no
    lower than the highest of the scale-down window."""
    longest = max(up.window, down.window)
    kept = tuple(r for r in history if r[0] > now - longest)
    up_rec = down_rec = proposed
    for t, n in kept:
        if t > now - up.window:
            up_rec = min(up_rec, n)
        if t > now - down.window:
            down_rec = max(down_rec, n)
    replicas = max(current, up_rec)
    replicas = min(replicas, down_rec)
    kept += ((now, proposed),)
    if replicas == proposed:
        return Stabilized(replicas, "ReadyForNewScale", "recommended size matches current "
                          "size", kept)
    if replicas < proposed:
        return Stabilized(replicas, "ScaleUpStabilized", "recent recommendations were lower "
                          "than current one, applying the lowest recent recommendation", kept)
    return Stabilized(replicas, "ScaleDownStabilized", "recent recommendations were higher "
                      "than current one, applying the highest recent recommendation", kept)


# --- limits --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Limited:
    """The replicas to set and the ScalingLimited reason/message."""

    replicas: int
    reason: str
    message: str

    @property
    def limited(self) -> bool:
        """Whether a limit changed the recommendation (ScalingLimited=True)."""
        return self.reason != "DesiredWithinRange"


_WITHIN = ("DesiredWithinRange", "the desired count is within the acceptable range")
_TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica "
            "count")
_TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum "
             "replica count")
_UP_LIMIT = ("ScaleUpLimit", "the desired replica count is increasing faster than the "
             "maximum scale rate")
_DOWN_LIMIT = ("ScaleDownLimit", "the desired replica count is decreasing faster than the "
               "maximum scale rate")


def limit_rate(current: int, desired: int, minimum: int, maximum: int) -> Limited:
    """Without behavior: within [minimum, maximum], and at most max(2 * current, 4)."""
    scale_up_limit = max(2 * current, 4)
    if desired < minimum:
        return Limited(minimum, *_TOO_FEW)
    ceiling, why = (scale_up_limit, _UP_LIMIT) if scale_up_limit < maximum else (
        maximum, _TOO_MANY)
    if desired > ceiling:
        return Limited(ceiling, *why)
    return Limited(desired, *_WITHIN)


ScaleEvent = tuple[float, int]  # (time, replicas added (>0) or removed (<0))


def _period_start(current: int, events: Sequence[ScaleEvent], now: float, period: int) -> int:
    added = sum(n for t, n in events if n > 0 and t > now - period)
    removed = sum(-n for t, n in events if n < 0 and t > now - period)
    return current - added + removed


def limit_with_behavior(current: int, desired: int, minimum: int, maximum: int,
                        up: Rules, down: Rules, events: Sequence[ScaleEvent],
                        now: float) -> Limited:
    """With behavior: the policies of the direction (Pods/Percent per period, the
    select policy choosing among them) bound the change, then min/max."""
    if desired > current:
        limit = _up_limit(current, up, events, now)
        ceiling, why = (limit, _UP_LIMIT) if maximum > limit else (maximum, _TOO_MANY)
        if desired > ceiling:
            return Limited(ceiling, *why)
    elif desired < current:
        limit = _down_limit(current, down, events, now)
        floor, why = (limit, _DOWN_LIMIT) if minimum < limit else (minimum, _TOO_FEW)
        if desired < floor:
            return Limited(floor, *why)
    return Limited(desired, *_WITHIN)


def _up_limit(current: int, rules: Rules, events: Sequence[ScaleEvent], now: float) -> int:
    if rules.select == "Disabled" or not rules.policies:
        return current
    proposals = []
    for kind, value, period in rules.policies:
        start = _period_start(current, events, now, period)
        proposals.append(start + value if kind == "Pods"
                         else math.ceil(start * (1 + value / 100)))
    best = min(proposals) if rules.select == "Min" else max(proposals)
    return max(best, current)


def _down_limit(current: int, rules: Rules, events: Sequence[ScaleEvent], now: float) -> int:
    if rules.select == "Disabled" or not rules.policies:
        return current
    proposals = []
    for kind, value, period in rules.policies:
        start = _period_start(current, events, now, period)
        proposals.append(start - value if kind == "Pods"
                         else int(start * (1 - value / 100)))
    best = max(proposals) if rules.select == "Min" else min(proposals)
    return min(best, current)

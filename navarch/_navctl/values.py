"""Reading objects in their Kubernetes JSON form, and the value formats kubectl prints.

navctl presents objects as ``navarch.to_dict`` renders them (Kubernetes field names,
RFC 3339 timestamps), so that every printer reads like the Kubernetes API documentation
and needs no knowledge of the generated classes. All functions here are pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

__all__ = [
    "Obj", "age", "dig", "format_labels", "format_selector", "go_duration", "human_duration",
    "items", "none_if_empty", "parse_time", "rfc1123", "since_seconds",
]

Obj = dict[str, Any]
"""An object as ``navarch.to_dict`` renders it."""


def dig(obj: Mapping[str, Any] | None, path: str, default: Any = None) -> Any:
    """The value at a dotted ``path`` (``"status.podIP"``), or ``default`` when any step is
    missing. Map keys containing dots cannot be reached this way; index those directly."""
    current: Any = obj
    for key in path.split("."):
        if not isinstance(current, Mapping) or key not in current:
            return default
        current = current[key]
    return default if current is None else current


def items(obj: Mapping[str, Any] | None, path: str) -> list[Any]:
    """The list at ``path``, or an empty list."""
    value = dig(obj, path, [])
    return value if isinstance(value, list) else []


def none_if_empty(value: object) -> str:
    """``value`` as text, or ``<none>`` when it is empty."""
    text = "" if value is None else str(value)
    return text or "<none>"


def human_duration(seconds: float) -> str:
    """A duration as kubectl prints ages: ``45s``, ``3m12s``, ``15m``, ``5h``, ``2d3h``,
    ``400d``, ``3y``. Slightly negative durations (clock skew) print as ``0s``."""
    total = int(seconds)
    if total < -1:
        return "<invalid>"
    if total < 0:
        return "0s"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        return _compound(minutes, "m", total % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return _compound(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return _compound(days, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        return _compound(years, "y", days % 365, "d")
    return f"{years}y"


def go_duration(seconds: float) -> str:
    """A duration as Go's ``time.Duration.String`` writes it, which kubectl shows for
    duration fields: ``0s``, ``750ms``, ``30s``, ``10.5s``, ``1m30s``, ``1h0m0s``."""
    ns = round(seconds * 1e9)
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns == 0:
        return "0s"
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_decimal(ns, 3)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_decimal(ns, 6)}ms"
    whole, fraction = divmod(ns, 1_000_000_000)
    text = f"{_decimal((whole % 60) * 1_000_000_000 + fraction, 9)}s"
    if whole >= 60:
        text = f"{whole // 60 % 60}m{text}"
    if whole >= 3600:
        text = f"{whole // 3600}h{text}"
    return sign + text


def _decimal(value: int, digits: int) -> str:
    """``value / 10**digits`` without trailing zeros: ``_decimal(1500, 3) == "1.5"``."""
    whole, fraction = divmod(value, 10 ** digits)
    return f"{whole}.{fraction:0{digits}d}".rstrip("0") if fraction else str(whole)


def _compound(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    return f"{major}{major_unit}{minor}{minor_unit}" if minor else f"{major}{major_unit}"


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def since_seconds(value: object, now: datetime) -> float | None:
    """Seconds from the timestamp ``value`` to ``now``; None when absent."""
    when = parse_time(value)
    return None if when is None else (now - when) / timedelta(seconds=1)


def age(value: object, now: datetime) -> str:
    """The age of a timestamp as kubectl prints it; ``<unknown>`` when absent."""
    seconds = since_seconds(value, now)
    return "<unknown>" if seconds is None else human_duration(seconds)


def rfc1123(value: object, tz: timezone | None = None) -> str:
    """A timestamp as ``describe`` prints it: ``Mon, 02 Jan 2006 15:04:05 +0000``, in
    ``tz`` (the local zone when None); ``<unknown>`` when absent."""
    when = parse_time(value)
    if when is None:
        return "<unknown>"
    return when.astimezone(tz).strftime("%a, %d %b %Y %H:%M:%S %z")


def format_labels(labels: Mapping[str, str] | None) -> str:
    """``a=1,b=2`` (sorted by key), or ``<none>``."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def format_selector(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector as selector text (``app=web,tier in (a,b),!canary``), requirements
    sorted by key, or ``<none>`` when it selects everything."""
    if not selector:
        return "<none>"
    parts: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        parts.append((key, f"{key}={value}"))
    for req in selector.get("matchExpressions") or []:
        key, op = req.get("key", ""), req.get("operator", "")
        values = ",".join(sorted(req.get("values") or []))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                "Exists": key, "DoesNotExist": f"!{key}"}.get(op, f"{key} {op} ({values})")
        parts.append((key, text))
    parts.sort(key=lambda part: part[0])
    return ",".join(text for _, text in parts) or "<none>"

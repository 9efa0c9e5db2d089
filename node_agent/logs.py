"""Pure: container logs in CRI's format, read back as ``kubectl logs`` shows them.

containerd writes one record per line: ``<RFC3339Nano time> <stdout|stderr> <F|P> <text>``;
``P`` marks a partial line, continued by the following records up to one marked ``F``.
``parse`` joins partial records into whole lines; ``select`` applies ``--since``,
``--tail`` and ``--timestamps``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["LineAssembler", "LogLine", "parse", "parse_time", "render", "select"]


@dataclass(frozen=True)
class LogLine:
    """One whole line of a container's output."""

    time: float  # seconds since the epoch (of its first record)
    stamp: str  # the record's RFC 3339 timestamp, as written
    stream: str  # stdout or stderr
    text: bytes  # without the newline


def parse_time(stamp: str) -> float:
    """Seconds since the epoch of an RFC 3339 time with up to nanoseconds."""
    text = stamp.replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    return dt.datetime.fromisoformat(text).timestamp()


class LineAssembler:
    """Feeds raw log-file bytes in, gets whole LogLines out (partial records joined).

    Keeps an incomplete trailing record (a file still being written) for the next feed.
    """

    def __init__(self) -> None:
        self._rest = b""
        self._partial: list[bytes] = []
        self._first: tuple[float, str, str] | None = None

    def feed(self, data: bytes) -> list[LogLine]:
        data = self._rest + data
        *records, self._rest = data.split(b"\n")
        out: list[LogLine] = []
        for record in records:
            parts = record.split(b" ", 3)
            if len(parts) < 3:
                continue  # not a CRI record
            stamp, stream, tag = (p.decode("ascii", "replace") for p in parts[:3])
            text = parts[3] if len(parts) == 4 else b""
            try:
                when = parse_time(stamp)
            except ValueError:
                continue
            if self._first is None:
                self._first = (when, stamp, stream)
            self._partial.append(text)
            if tag == "P":
                continue
            first = self._first
            out.append(LogLine(first[0], first[1], first[2], b"".join(self._partial)))
            self._partial, self._first = [], None
        return out


def parse(data: bytes) -> list[LogLine]:
    """Every whole line of a complete log file."""
    return LineAssembler().feed(data if data.endswith(b"\n") else data + b"\n")


def select(lines: Iterable[LogLine], *, since: float = 0.0, tail: int | None = None
           ) -> list[LogLine]:
    """Lines at or after ``since`` (epoch seconds; 0 = all), then the last ``tail``."""
    chosen = [ln for ln in lines if ln.time >= since] if since else list(lines)
    if tail is not None:
        chosen = chosen[-tail:] if tail > 0 else []
    return chosen


def render(lines: Iterable[LogLine], timestamps: bool = False) -> Iterator[bytes]:
    """Each line as kubectl prints it: ``[<timestamp> ]<text>\\n``."""
    for ln in lines:
        prefix = f"{ln.stamp} ".encode() if timestamps else b""
        yield prefix + ln.text + b"\n"

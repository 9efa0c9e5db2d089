"""Pure: container logs in CRI's format, read back as ``kubectl logs`` shows them.

containerd writes one record per line: ``<RFC3339Nano time> <stdout|stderr> <F|P> <text>``;
``P`` marks a partial line (the runtime cut a long line, or the process wrote no newline
yet), continued by the following records of the same stream up to one marked ``F``.
``LineAssembler`` joins partial records into whole lines, also across reads of a file
that is still being written; ``select`` applies ``--since`` and ``--tail``; ``render``
applies ``--timestamps``.
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
    stamp: str  # the first record's RFC 3339 timestamp, as written
    stream: str  # stdout or stderr
    text: bytes  # without the newline


def parse_time(stamp: str) -> float:
    """Seconds since the epoch of an RFC 3339 time with up to nanoseconds.

    Raises ValueError for anything else."""
    text = stamp.replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = len(rest) - len(rest.lstrip("0123456789"))
        if digits == 0:
            raise ValueError(f"no digits after the decimal point: {stamp!r}")
        text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"no time zone: {stamp!r}")
    return when.timestamp()


class LineAssembler:
    """Raw log-file bytes in, whole LogLines out, in the order their last records came.

    Keeps what is not complete yet for the next ``feed``: a trailing record without its
    newline (the file is being written) and, per stream, partial records awaiting their
    ``F``. Records that are not CRI records are skipped. Not thread-safe.
    """

    def __init__(self) -> None:
        self._rest = b""
        self._partial: dict[str, tuple[float, str, list[bytes]]] = {}

    def feed(self, data: bytes) -> list[LogLine]:
        """The lines completed by ``data`` (the bytes that follow the previous feed)."""
        *records, self._rest = (self._rest + data).split(b"\n")
        out: list[LogLine] = []
        for record in records:
            parts = record.split(b" ", 3)
            if len(parts) < 3 or parts[2] not in (b"F", b"P"):
                continue
            stamp, stream = parts[0].decode("ascii", "replace"), parts[1].decode("ascii",
                                                                              "replace")
            try:
                when = parse_time(stamp)
            except ValueError:
                continue
            first = self._partial.pop(stream, (when, stamp, []))
            first[2].append(parts[3] if len(parts) == 4 else b"")
            if parts[2] == b"P":
                self._partial[stream] = first
                continue
            out.append(LogLine(first[0], first[1], stream, b"".join(first[2])))
        return out


def parse(data: bytes) -> list[LogLine]:
    """Every whole line of a complete log file (a last record without newline counts)."""
    return LineAssembler().feed(data if data.endswith(b"\n") else data + b"\n")


def select(lines: Iterable[LogLine], *, since: float = 0.0, tail: int | None = None
           ) -> list[LogLine]:
    """Lines at or after ``since`` (epoch seconds; 0 = all), then the last ``tail`` of
    them (None = all, 0 = none): kubectl's ``--since`` and ``--tail``."""
    chosen = [ln for ln in lines if ln.time >= since] if since else list(lines)
    if tail is not None:
        chosen = chosen[-tail:] if tail > 0 else []
    return chosen


def render(lines: Iterable[LogLine], timestamps: bool = False) -> Iterator[bytes]:
    """Each line as kubectl prints it: ``[<timestamp> ]<text>\\n``."""
    for ln in lines:
        prefix = f"{ln.stamp} ".encode() if timestamps else b""
        yield prefix + ln.text + b"\n"

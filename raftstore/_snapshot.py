"""The encoding of an MVCC snapshot: msgpack objects one after another.

    head     (2, revision, compact revision, cluster id, leases, members)
    parts    (BASE, [record, ...])     records older than the compact revision (the ones
                                       the change list no longer holds), any key order,
                                       each key's records in revision order
             (CHANGES, [record, ...])  the change list, in revision order, after all BASE
    end      (END, number of records)  a snapshot cut short does not restore

A record is ``(key, create, mod, version, value, lease)``. Parts are encoded as they are
drawn, so the member can encode a large state between requests; concatenated, they are
the snapshot's data. Format 1 was one tuple holding everything; it is still read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack

if TYPE_CHECKING:
    from raftstore._mvcc import Change, Rec

FORMAT = 2
BASE, CHANGES, END = 0, 1, 2

Record = tuple[bytes, int, int, int, bytes, int]


@dataclass(frozen=True, slots=True)
class Head:
    """What a snapshot holds besides records."""

    revision: int
    compact_revision: int
    cluster_id: int
    leases: list[tuple[int, int]]  # (id, granted TTL)
    members: list[tuple[int, str, tuple[str, ...], tuple[str, ...]]]


def encode(head: Head, hists: list[list[Rec]], changes: list[Change],
           per_part: int) -> Iterator[bytes]:
    """The encoded head, parts of about ``per_part`` records, and end. ``hists`` and
    ``changes`` are the store's history lists and a copy of its change list, taken
    together: the lists may grow at their end while this runs (later revisions, skipped),
    but must not lose records at their start."""
    pack = msgpack.Packer(use_bin_type=True).pack
    yield pack((FORMAT, head.revision, head.compact_revision, head.cluster_id,
                head.leases, head.members))
    compact = head.compact_revision
    count = 0
    batch: list[Record] = []
    for hist in hists:
        if not hist or hist[0].mod >= compact:
            continue
        for rec in hist:
            if rec.mod >= compact:
                break
            batch.append(rec.as_tuple())
        if len(batch) >= per_part:
            count += len(batch)
            yield pack((BASE, batch))
            batch = []
    if batch:
        count += len(batch)
        yield pack((BASE, batch))
    for i in range(0, len(changes), per_part):
        yield pack((CHANGES, [c.rec.as_tuple() for c in changes[i:i + per_part]]))
    yield pack((END, count + len(changes)))


def read(data: bytes | bytearray) -> tuple[Head, Iterator[tuple[int, tuple[Record, ...]]]]:
    """The head, and the parts as (BASE or CHANGES, records), checked as they are read:
    ValueError (or msgpack's and TypeError for garbage) if the data is not a whole
    snapshot of a format this code knows."""
    unpacker = msgpack.Unpacker(raw=False, use_list=False, max_buffer_size=len(data) + 1)
    unpacker.feed(data)
    first = next(unpacker, None)
    if not isinstance(first, tuple) or not first:
        raise ValueError("snapshot has no header")
    if first[0] == 1:
        _, rev, compact, cluster_id, base, changes, leases, members = first
        return (Head(rev, compact, cluster_id, leases, members),
                iter(((BASE, base), (CHANGES, changes))))
    if first[0] != FORMAT:
        raise ValueError(f"snapshot format {first[0]} is not {FORMAT}")
    _, rev, compact, cluster_id, leases, members = first
    return Head(rev, compact, cluster_id, leases, members), _checked(unpacker)


def _checked(objects: Any) -> Iterator[tuple[int, tuple[Record, ...]]]:
    count, kind_seen, ended = 0, BASE, False
    for kind, body in objects:
        if ended:
            raise ValueError("snapshot has data after its end")
        if kind == END:
            if body != count:
                raise ValueError(f"snapshot holds {count} records, its end says {body}")
            ended = True
            continue
        if kind not in (BASE, CHANGES) or kind < kind_seen:
            raise ValueError(f"snapshot part of kind {kind} out of place")
        kind_seen = kind
        count += len(body)
        yield kind, body
    if not ended:
        raise ValueError("snapshot is cut short (no end)")

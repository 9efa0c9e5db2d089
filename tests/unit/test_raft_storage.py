"""The Raft core's durable storage (``raftstore.raft.storage``), on real files.

Part 1: round trips through close and reopen (hard state, entries, overwrites, snapshot
installs, compaction, segment rotation) and the writes ``save``/``compact`` refuse.
Part 2: crash and damage. Each case writes a directory, damages one file at a chosen
offset, and reopens: a torn final record is cut away with a warning; anything else
raises StorageCorrupt naming the file and the byte offset. Part 3: crashes at each step
of ``compact`` and of a snapshot install, and the I/O contract of ``save``.

The WAL format is re-implemented here (``rec``/``records``) from the module docstring,
so these tests also pin the on-disk format.
"""

from __future__ import annotations

import os
import shutil
import struct
import threading
import zlib
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from raftstore.raft import storage as storage_mod
from raftstore.raft.storage import RaftStorage, StorageCorrupt, StorageInUse
from raftstore.raft.types import (
    ClusterConfig,
    Entry,
    EntryKind,
    HardState,
    Snapshot,
    SnapshotMeta,
)

# ------------------------------------------------------------------ the format, re-implemented
HDR = struct.Struct("<IIB")
ENTRY, HARDSTATE, SNAPSHOT, SEGMENT = 1, 2, 3, 4
SEG0 = "0000000000000000.wal"
SEG1 = "0000000000000001.wal"


def rec(typ: int, payload: bytes) -> bytes:
    return HDR.pack(len(payload), zlib.crc32(bytes([typ]) + payload), typ) + payload


def entry_rec(index: int, term: int, data: bytes = b"", kind: int = 0) -> bytes:
    return rec(ENTRY, struct.pack("<QQB", index, term, kind) + data)


def records(path: Path) -> list[tuple[int, int, int]]:
    """(offset, type, end) of every record in a well-formed segment."""
    raw, out, off = path.read_bytes(), [], 0
    while off < len(raw):
        length, crc, typ = HDR.unpack_from(raw, off)
        end = off + HDR.size + length
        assert zlib.crc32(raw[off + 8:end]) == crc
        out.append((off, typ, end))
        off = end
    return out


def entry_offset(path: Path, index: int) -> int:
    raw = path.read_bytes()
    for off, typ, _ in records(path):
        if typ == ENTRY and struct.unpack_from("<Q", raw, off + HDR.size)[0] == index:
            return off
    raise AssertionError(f"no ENTRY {index} in {path}")


def flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


# ------------------------------------------------------------------ values
CONFIG = ClusterConfig(((1, "10.0.0.1:2380"), (2, "10.0.0.2:2380"), (3, "10.0.0.3:2380")))


def ents(lo: int, hi: int, term: int, size: int = 16) -> list[Entry]:
    return [Entry(i, term, EntryKind.NORMAL, bytes([i % 251]) * size) for i in range(lo, hi + 1)]


def snap(index: int, term: int, data: bytes = b"state machine") -> Snapshot:
    return Snapshot(SnapshotMeta(index, term, CONFIG), data)


def reopen(s: RaftStorage, path: Path, **kw: int) -> RaftStorage:
    s.close()
    return RaftStorage.open(path, **kw)


def state(s: RaftStorage) -> tuple[HardState, int | None, list[Entry]]:
    hs, sn, entries = s.initial_state()
    return hs, (sn.meta.index if sn else None), entries


@pytest.fixture
def d(tmp_path: Path) -> Path:
    return tmp_path / "raft"


@pytest.fixture(autouse=True)
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """The storage's log events in this test (and nothing printed)."""
    with capture_logs() as captured:
        yield captured


# ==================================================================== Part 1: round trips
def test_new_directory_gets_the_layout_and_an_empty_state(d: Path) -> None:
    s = RaftStorage.open(d)
    assert s.initial_state() == (HardState(), None, [])
    assert s.last_index() == 0
    assert sorted(p.name for p in (d / "wal").iterdir()) == [SEG0]
    assert list((d / "snap").iterdir()) == []
    assert [t for _, t, _ in records(d / "wal" / SEG0)] == [SEGMENT, SNAPSHOT, HARDSTATE]
    s = reopen(s, d)
    assert s.initial_state() == (HardState(), None, [])
    s.close()


E = ents  # short names for the table below
HS = HardState
SaveCall = tuple[HardState | None, list[Entry], Snapshot | None]
SNAP10 = snap(10, 2)
SNAP3 = snap(3, 1)
VARIED = [Entry(1, 1, EntryKind.EMPTY), Entry(2, 1, EntryKind.CONFIG, b"\x93" * 40),
          Entry(3, 1, EntryKind.NORMAL, os.urandom(200_000))]

ROUND_TRIPS: list[tuple[str, list[SaveCall], HardState, Snapshot | None, list[Entry]]] = [
    ("hard state only", [(HS(3, 2, 0), [], None)], HS(3, 2, 0), None, []),
    ("latest hard state wins", [(HS(1, 1, 0), [], None), (HS(2, 0, 0), [], None)],
     HS(2, 0, 0), None, []),
    ("None keeps the hard state", [(HS(1, 1, 0), [], None), (None, E(1, 3, 1), None)],
     HS(1, 1, 0), None, E(1, 3, 1)),
    ("entries across saves", [(None, E(1, 3, 1), None), (HS(1, 1, 3), E(4, 6, 1), None)],
     HS(1, 1, 3), None, E(1, 6, 1)),
    ("overwrite a suffix", [(None, E(1, 5, 1), None), (None, E(3, 4, 2), None)],
     HS(), None, E(1, 2, 1) + E(3, 4, 2)),
    ("overwrite the last entry", [(None, E(1, 5, 1), None), (None, E(5, 5, 2), None)],
     HS(), None, E(1, 4, 1) + E(5, 5, 2)),
    ("overwrite everything", [(None, E(1, 5, 1), None), (None, E(1, 2, 2), None)],
     HS(), None, E(1, 2, 2)),
    ("overwrite with a lower term (Raft figure 7)",
     [(None, E(1, 2, 1) + E(3, 4, 3), None), (HS(4, 0, 2), E(3, 3, 2), None)],
     HS(4, 0, 2), None, E(1, 2, 1) + E(3, 3, 2)),
    ("re-append identical entries", [(None, E(1, 5, 1), None), (None, E(2, 3, 1), None)],
     HS(), None, E(1, 3, 1)),
    ("install: log holds the snapshot's entry, suffix kept",
     [(None, E(1, 5, 1), None), (HS(1, 0, 3), [], SNAP3)], HS(1, 0, 3), SNAP3, E(4, 5, 1)),
    ("install: log conflicts, all discarded",
     [(None, E(1, 5, 1), None), (HS(2, 0, 10), [], snap(4, 2))], HS(2, 0, 10), snap(4, 2), []),
    ("install: beyond the log", [(None, E(1, 2, 1), None), (None, [], SNAP10)],
     HS(), SNAP10, []),
    ("install with entries and hard state in one save",
     [(None, E(1, 2, 1), None), (HS(2, 0, 10), E(11, 12, 2), SNAP10)],
     HS(2, 0, 10), SNAP10, E(11, 12, 2)),
    ("second install replaces the first",
     [(None, [], SNAP3), (None, E(4, 6, 1), None), (None, [], SNAP10)], HS(), SNAP10, []),
    ("entry kinds and sizes", [(None, VARIED, None)], HS(), None, VARIED),
]


@pytest.mark.parametrize(("calls", "hs", "snapshot", "entries"),
                         [c[1:] for c in ROUND_TRIPS], ids=[c[0] for c in ROUND_TRIPS])
def test_round_trip(d: Path, calls: list[SaveCall], hs: HardState,
                    snapshot: Snapshot | None, entries: list[Entry]) -> None:
    s = RaftStorage.open(d)
    for call in calls:
        s.save(*call)
    assert s.last_index() == (entries[-1].index if entries else snapshot.meta.index
                              if snapshot else 0)
    s = reopen(s, d)
    assert s.initial_state() == (hs, snapshot, entries)
    s.close()


@pytest.mark.parametrize("index", [1, 4, 7, 10])
def test_reopen_after_compaction_keeps_exactly_the_entries_after_the_snapshot(
        d: Path, index: int) -> None:
    log = E(1, 4, 1) + E(5, 10, 2)
    s = RaftStorage.open(d)
    s.save(HS(2, 1, 10), log, None)
    s.compact(snap(index, log[index - 1].term))
    assert s.last_index() == 10
    s = reopen(s, d)
    hs, got, entries = s.initial_state()
    assert (hs, got, entries) == (HS(2, 1, 10), snap(index, log[index - 1].term), log[index:])
    assert sorted(p.name for p in (d / "wal").iterdir()) == [SEG1]
    s.save(HS(2, 1, 11), E(11, 11, 2), None)
    s = reopen(s, d)
    assert state(s) == (HS(2, 1, 11), index, log[index:] + E(11, 11, 2))
    s.close()


def test_compaction_keeps_two_newest_snapshots_and_frees_space(d: Path) -> None:
    s = RaftStorage.open(d)
    s.save(HS(1, 1, 30), E(1, 30, 1, size=10_000), None)
    before = s.size_bytes()
    for i in (10, 20, 30):
        s.compact(snap(i, 1))
    assert sorted(p.name for p in (d / "snap").iterdir()) == [
        "0000000000000014-0000000000000001.snap", "000000000000001e-0000000000000001.snap"]
    assert s.size_bytes() < before / 10
    s.compact(snap(30, 1))  # the current snapshot point: a no-op
    s = reopen(s, d)
    assert state(s) == (HS(1, 1, 30), 30, [])
    assert s.last_index() == 30
    s.close()


def test_segments_rotate_and_replay_in_order(d: Path) -> None:
    s = RaftStorage.open(d, segment_bytes=1024)
    for i in range(1, 61):
        s.save(HS(1, 1, 0), E(i, i, 1, size=100), None)
    assert len(list((d / "wal").iterdir())) > 5
    s.save(HS(2, 2, 30), E(35, 36, 2, size=100), None)  # overwrites across segments
    s.save(None, E(37, 80, 2, size=100), None)
    expected = E(1, 34, 1, size=100) + E(35, 80, 2, size=100)
    s = reopen(s, d, segment_bytes=1024)
    assert state(s) == (HS(2, 2, 30), None, expected)
    s.compact(snap(50, 2))
    assert len(list((d / "wal").iterdir())) == 1
    s = reopen(s, d, segment_bytes=1024)
    assert state(s) == (HS(2, 2, 30), 50, expected[50:])
    s.close()


REJECTED_SAVES: list[tuple[str, SaveCall, str]] = [
    ("gap", (None, E(7, 7, 1), None), "gap after the last index 5"),
    ("batch not contiguous", (None, [Entry(6, 1), Entry(8, 1)], None), "does not follow"),
    ("term goes down", (None, [Entry(6, 2), Entry(7, 1)], None), "below the term 2"),
    ("below the snapshot", (None, E(2, 2, 1), None), "at or below the snapshot index 2"),
    ("replaces a committed entry", (None, E(3, 3, 2), None), "committed entry 3"),
    ("older snapshot", (None, [], snap(1, 1)), "older than or conflicts"),
    ("snapshot at index 0", (None, [], snap(0, 0)), "above 0"),
    ("u64 overflow", (HS(2**64, 0, 0), [], None), "u64"),
]


@pytest.mark.parametrize(("call", "message"), [c[1:] for c in REJECTED_SAVES],
                         ids=[c[0] for c in REJECTED_SAVES])
def test_save_rejects_what_would_break_the_log_and_writes_nothing(
        d: Path, call: SaveCall, message: str) -> None:
    s = RaftStorage.open(d)
    s.save(HS(1, 1, 3), E(1, 5, 1), None)
    s.compact(snap(2, 1))
    size = s.size_bytes()
    with pytest.raises(ValueError, match=message):
        s.save(*call)
    assert s.size_bytes() == size
    s.save(None, E(6, 6, 1), None)  # still usable
    s = reopen(s, d)
    assert state(s) == (HS(1, 1, 3), 2, E(3, 6, 1))
    s.close()


def test_save_rejects_an_entry_too_large_for_one_record(
        d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage_mod, "MAX_RECORD_BYTES", 1000)
    s = RaftStorage.open(d)
    size = s.size_bytes()
    with pytest.raises(ValueError, match="entry 2 is larger than 1000 bytes"):
        s.save(HS(1, 1, 0), E(1, 1, 1, size=983) + E(2, 2, 1, size=984), None)
    assert s.size_bytes() == size
    s.close()


@pytest.mark.parametrize(("snapshot", "message"), [
    (snap(6, 1), "does not match the log"),
    (snap(4, 2), "does not match the log"),
    (snap(1, 1), None),  # below the current snapshot: nothing to do
    (snap(2, 1), None),  # the current snapshot: nothing to do
], ids=["beyond the log", "term mismatch", "below the snapshot", "the current snapshot"])
def test_compact_refuses_or_ignores_a_snapshot_that_does_not_advance_the_log(
        d: Path, snapshot: Snapshot, message: str | None) -> None:
    s = RaftStorage.open(d)
    s.save(None, E(1, 5, 1), None)
    s.compact(snap(2, 1))
    files = sorted(p.name for p in d.rglob("*"))
    if message is None:
        s.compact(snapshot)
    else:
        with pytest.raises(ValueError, match=message):
            s.compact(snapshot)
    assert sorted(p.name for p in d.rglob("*")) == files
    assert s.latest_snapshot() == snap(2, 1)
    s.close()


def test_latest_snapshot_follows_installs_and_compactions(d: Path) -> None:
    s = RaftStorage.open(d)
    assert s.latest_snapshot() is None
    s.save(None, E(1, 5, 1), None)
    s.compact(snap(3, 1, data=b"compacted"))
    assert s.latest_snapshot() == snap(3, 1, data=b"compacted")
    s.save(HS(2, 0, 10), [], SNAP10)
    assert s.latest_snapshot() == SNAP10
    s = reopen(s, d)
    assert s.latest_snapshot() == SNAP10
    flip(d / "snap" / "000000000000000a-0000000000000002.snap", 50)
    with pytest.raises(StorageCorrupt, match="SHA-256"):
        s.latest_snapshot()
    s.close()


def run_beside(fn: Callable[[], None]) -> None:
    """Run ``fn`` on another thread; fail if it does not finish (it would be blocked)."""
    t = threading.Thread(target=fn)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "blocked: the storage lock was held"


def test_save_is_not_held_up_while_compact_writes_the_snapshot_file(
        d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = RaftStorage.open(d)
    s.save(HS(1, 1, 5), E(1, 5, 1), None)
    write = storage_mod._write_snapshot_file

    def write_then_save(snap_dir: Path, snapshot: Snapshot, tag: str) -> Path:
        tmp = write(snap_dir, snapshot, tag)
        run_beside(lambda: s.save(HS(1, 1, 6), E(6, 7, 1), None))
        return tmp

    monkeypatch.setattr(storage_mod, "_write_snapshot_file", write_then_save)
    s.compact(snap(4, 1))
    s = reopen(s, d)
    assert state(s) == (HS(1, 1, 6), 4, E(5, 7, 1))
    s.close()


def test_a_snapshot_installed_during_compact_makes_it_a_no_op(
        d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = RaftStorage.open(d)
    s.save(HS(1, 1, 5), E(1, 5, 1), None)
    write = storage_mod._write_snapshot_file

    def write_then_install(snap_dir: Path, snapshot: Snapshot, tag: str) -> Path:
        tmp = write(snap_dir, snapshot, tag)
        if tag == "compact":
            run_beside(lambda: s.save(HS(2, 0, 10), [], SNAP10))
        return tmp

    monkeypatch.setattr(storage_mod, "_write_snapshot_file", write_then_install)
    s.compact(snap(4, 1))
    assert sorted(p.name for p in (d / "snap").iterdir()) == [
        "000000000000000a-0000000000000002.snap"]
    s = reopen(s, d)
    assert state(s) == (HS(2, 0, 10), 10, [])
    s.close()


def test_directory_in_use(d: Path) -> None:
    s = RaftStorage.open(d)
    with pytest.raises(StorageInUse, match="already open"):
        RaftStorage.open(d)
    s.close()
    s.close()  # idempotent
    RaftStorage.open(d).close()


def test_save_is_one_write_and_one_fdatasync(d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = RaftStorage.open(d)
    calls: list[str] = []

    def counted(name: str) -> Callable[..., object]:
        real = getattr(os, name)

        def call(*args: object) -> object:
            calls.append(name)
            return real(*args)
        return call

    for name in ("write", "fdatasync", "fsync"):
        monkeypatch.setattr(os, name, counted(name))
    s.save(HS(1, 1, 0), E(1, 64, 1, size=300), None)
    s.save(HS(1, 1, 64), [], None)
    assert calls == ["write", "fdatasync"] * 2
    monkeypatch.undo()
    s.close()


def test_an_io_error_makes_the_instance_refuse_later_writes(
        d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = RaftStorage.open(d)
    s.save(None, E(1, 1, 1), None)

    def eio(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", eio)
    with pytest.raises(OSError, match="Input/output"):
        s.save(None, E(2, 2, 1), None)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="unusable"):
        s.save(None, E(2, 2, 1), None)
    s = reopen(s, d)
    assert s.last_index() == 2  # the bytes reached the page cache; a real crash may lose them
    s.close()


# ==================================================================== Part 2: damage
def build(d: Path, *, rotate: bool = False, compacted: bool = False) -> RaftStorage:
    """hs, then entries 1..3 one per save (so ENTRY 3 is the last record), closed.
    rotate: 1 KiB segments, entries 1..30. compacted: a snapshot at 2, then 3..4."""
    s = RaftStorage.open(d, segment_bytes=1024 if rotate else storage_mod.SEGMENT_BYTES)
    s.save(HS(1, 1, 0), [], None)
    for i in range(1, (31 if rotate else 4)):
        s.save(None, E(i, i, 1, size=100), None)
    if compacted:
        s.compact(snap(2, 1))
        s.save(None, E(4, 4, 1, size=100), None)
    s.close()
    return s


def last_seg(d: Path) -> Path:
    return sorted((d / "wal").iterdir())[-1]


@dataclass
class Torn:
    name: str
    damage: Callable[[Path, int, int], None]  # (segment, start of ENTRY 3, file size)
    kept: int  # entries that survive


def zero_tail(path: Path, keep: int) -> None:
    """The file kept its size, but only its first ``keep`` bytes reached the disk."""
    size = path.stat().st_size
    os.truncate(path, keep)
    append(path, bytes(size - keep + 4096))


TORN_TAILS = [
    Torn("ends inside the header", lambda p, o, n: os.truncate(p, o + 4), 2),
    Torn("ends right after the header", lambda p, o, n: os.truncate(p, o + HDR.size), 2),
    Torn("ends inside the payload", lambda p, o, n: os.truncate(p, n - 1), 2),
    Torn("last record's CRC fails", lambda p, o, n: flip(p, n - 1), 2),
    Torn("last record's length field damaged", lambda p, o, n: flip(p, o + 2), 2),
    Torn("zeros where the data never landed", lambda p, o, n: zero_tail(p, n - 60), 2),
    Torn("size grew, data never written", lambda p, o, n: append(p, bytes(8192)), 3),
    Torn("half a header of the next record", lambda p, o, n: append(p, b"\x30\x00\x00"), 3),
    Torn("next record's payload missing",
         lambda p, o, n: append(p, entry_rec(4, 1, b"x" * 100)[:40]), 3),
]


@pytest.mark.parametrize("case", TORN_TAILS, ids=[t.name for t in TORN_TAILS])
def test_torn_final_record_is_cut_away_with_a_warning(
        d: Path, case: Torn, logs: list[MutableMapping[str, Any]]) -> None:
    build(d)
    seg = last_seg(d)
    start = entry_offset(seg, 3)
    case.damage(seg, start, seg.stat().st_size)
    s = RaftStorage.open(d)
    assert state(s) == (HS(1, 1, 0), None, E(1, case.kept, 1, size=100))
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == (
        ["raft WAL: cutting a torn final record (a write that never completed)"])
    assert logs[0]["file"] == str(seg)
    assert seg.stat().st_size == (start if case.kept == 2 else entry_offset(seg, 3) + 126)
    s.save(None, E(case.kept + 1, 5, 1), None)  # appends after the cut
    s = reopen(s, d)
    assert state(s)[2] == E(1, case.kept, 1, size=100) + E(case.kept + 1, 5, 1)
    s.close()


def test_torn_record_alone_in_a_fresh_segment(d: Path) -> None:
    build(d, rotate=True)
    seg = last_seg(d)
    append(seg, entry_rec(31, 1, b"y" * 100)[:50])
    s = RaftStorage.open(d, segment_bytes=1024)
    assert s.last_index() == 30
    s.close()


@dataclass
class Damage:
    name: str
    build: dict[str, bool]
    damage: Callable[[Path], tuple[Path, int | None]]  # returns (file named, offset named)
    problem: str


def _mid_crc(d: Path) -> tuple[Path, int]:
    seg = last_seg(d)
    off = entry_offset(seg, 2)
    flip(seg, off + 40)
    return seg, off


def _mid_length(value: int) -> Callable[[Path], tuple[Path, int]]:
    def damage(d: Path) -> tuple[Path, int]:
        seg = last_seg(d)
        off = entry_offset(seg, 2)
        raw = bytearray(seg.read_bytes())
        struct.pack_into("<I", raw, off, value)
        seg.write_bytes(bytes(raw))
        return seg, off
    return damage


def _appended(record: bytes) -> Callable[[Path], tuple[Path, int]]:
    def damage(d: Path) -> tuple[Path, int]:
        seg = last_seg(d)
        off = seg.stat().st_size
        append(seg, record)
        return seg, off
    return damage


def _header(d: Path) -> tuple[Path, int]:
    seg = last_seg(d)
    flip(seg, 12)
    return seg, 0


def _renamed(d: Path) -> tuple[Path, int]:
    seg = last_seg(d)
    seg.rename(seg.with_name(SEG1))
    return seg.with_name(SEG1), 0


def _cut_earlier_segment(d: Path) -> tuple[Path, int]:
    seg = sorted((d / "wal").iterdir())[1]
    last_off = records(seg)[-1][0]
    os.truncate(seg, seg.stat().st_size - 1)
    return seg, last_off


def _missing(which: int) -> Callable[[Path], tuple[Path, int | None]]:
    def damage(d: Path) -> tuple[Path, int | None]:
        segs = sorted((d / "wal").iterdir())
        segs[which].unlink()
        return (segs[which], None) if which else (segs[1], 0)
    return damage


def _wal_gone(d: Path) -> tuple[Path, None]:
    shutil.rmtree(d / "wal")
    return d / "wal", None


def _snap_file(d: Path) -> Path:
    return d / "snap" / "0000000000000002-0000000000000001.snap"


def _snap_flip(d: Path) -> tuple[Path, int]:
    p = _snap_file(d)
    flip(p, 60)
    return p, p.stat().st_size - 32


def _snap_cut(d: Path) -> tuple[Path, int]:
    p = _snap_file(d)
    os.truncate(p, 20)
    return p, 0


def _snap_gone(d: Path) -> tuple[Path, None]:
    _snap_file(d).unlink()
    return _snap_file(d), None


DAMAGE = [
    Damage("CRC mismatch before the end", {}, _mid_crc, "CRC mismatch"),
    Damage("length field damaged before the end", {}, _mid_length(50), "CRC mismatch"),
    Damage("length runs past the end, records follow", {}, _mid_length(10**6), "past the end"),
    Damage("length beyond the maximum", {}, _mid_length(0xFFFFFFF0), "exceeds the maximum"),
    Damage("unknown record type", {}, _appended(rec(9, b"abc")), "unknown record type 9"),
    Damage("gap in entry indexes", {}, _appended(entry_rec(5, 1)), "gap after the last index 3"),
    Damage("entry term goes backwards", {}, _appended(entry_rec(4, 0)), "below the term 1"),
    Damage("entry at or below the snapshot", {"compacted": True}, _appended(entry_rec(2, 1)),
           "at or below the snapshot index 2"),
    Damage("entry of unknown kind", {}, _appended(entry_rec(4, 1, kind=7)), "unknown kind 7"),
    Damage("HARDSTATE of the wrong size", {}, _appended(rec(HARDSTATE, bytes(16))),
           "HARDSTATE record of 16 bytes"),
    Damage("SNAPSHOT marker going backwards", {"compacted": True},
           _appended(rec(SNAPSHOT, struct.pack("<QQ", 1, 1))), "older than or conflicts"),
    Damage("SEGMENT header inside a segment", {}, _appended(rec(SEGMENT, bytes(9))),
           "SEGMENT header in the middle"),
    Damage("segment header damaged", {}, _header, "bad segment header"),
    Damage("segment header disagrees with the name", {}, _renamed, "says seq 0, name says 1"),
    Damage("earlier segment ends inside a record", {"rotate": True}, _cut_earlier_segment,
           "runs past the end"),
    Damage("segment missing in the middle", {"rotate": True}, _missing(2), "segment missing"),
    Damage("first segments missing", {"rotate": True}, _missing(0), "no checkpoint segment"),
    Damage("WAL gone, snapshots left", {"compacted": True}, _wal_gone, "the WAL is missing"),
    Damage("snapshot file fails its SHA-256", {"compacted": True}, _snap_flip, "SHA-256"),
    Damage("snapshot file truncated", {"compacted": True}, _snap_cut, "shorter than"),
    Damage("snapshot file missing", {"compacted": True}, _snap_gone,
           "records a snapshot at index 2 term 1"),
]


@pytest.mark.parametrize("case", DAMAGE, ids=[c.name for c in DAMAGE])
def test_damage_raises_storage_corrupt_naming_file_and_offset(d: Path, case: Damage) -> None:
    build(d, **case.build)
    path, offset = case.damage(d)
    kw = {"segment_bytes": 1024} if case.build.get("rotate") else {}
    sizes = {p: p.stat().st_size for p in d.rglob("*") if p.is_file()}
    with pytest.raises(StorageCorrupt) as info:
        RaftStorage.open(d, **kw)
    err = info.value
    assert (err.path, err.offset) == (path, offset)
    assert str(path) in str(err) and case.problem in str(err)
    if offset is not None:
        assert f"at byte offset {offset}" in str(err)
    assert {p: p.stat().st_size for p in d.rglob("*") if p.is_file()} == sizes  # untouched
    RaftStorage.open(d / "elsewhere").close()  # the failed open released its lock


def test_a_damaged_older_snapshot_is_not_needed(d: Path) -> None:
    s = RaftStorage.open(d)
    s.save(None, E(1, 5, 1), None)
    s.compact(snap(2, 1))
    s.compact(snap(4, 1))
    flip(_snap_file(d), 60)
    s = reopen(s, d)
    assert state(s) == (HS(), 4, E(5, 5, 1))
    s.close()


# ==================================================================== Part 3: crashes
class Crash(Exception):
    """Stands for the process dying at this point."""


def crash(*_: object) -> None:
    raise Crash


def crash_in(monkeypatch: pytest.MonkeyPatch, s: RaftStorage, step: str) -> None:
    monkeypatch.setattr(s, step, crash)


def test_crash_after_snapshot_rename_before_new_segment(
        d: Path, monkeypatch: pytest.MonkeyPatch, logs: list[MutableMapping[str, Any]]) -> None:
    s = RaftStorage.open(d)
    s.save(HS(1, 1, 5), E(1, 5, 1), None)
    crash_in(monkeypatch, s, "_start_segment")
    with pytest.raises(Crash):
        s.compact(snap(3, 1))
    assert _snap_file(d).with_name("0000000000000003-0000000000000001.snap").exists()
    with pytest.raises(ValueError, match="unusable"):
        s.save(None, E(6, 6, 1), None)
    s = reopen(s, d)
    assert state(s) == (HS(1, 1, 5), None, E(1, 5, 1))  # the old state, whole
    assert list((d / "snap").iterdir()) == []
    assert "never recorded" in logs[0]["event"]
    s.compact(snap(3, 1))  # compaction can simply be retried
    s = reopen(s, d)
    assert state(s) == (HS(1, 1, 5), 3, E(4, 5, 1))
    s.close()


@pytest.mark.parametrize("step", ["_delete_segments_before", "_doomed_snapshots"])
def test_crash_after_new_segment_before_cleanup(
        d: Path, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    s = RaftStorage.open(d, segment_bytes=1024)
    s.save(HS(1, 1, 20), E(1, 20, 1, size=100), None)
    s.save(None, E(21, 30, 1, size=100), None)
    s.compact(snap(5, 1))
    s.compact(snap(10, 1))
    s.save(None, E(31, 40, 1, size=100), None)
    crash_in(monkeypatch, s, step)
    with pytest.raises(Crash):
        s.compact(snap(20, 1))
    s = reopen(s, d, segment_bytes=1024)
    assert state(s) == (HS(1, 1, 20), 20, E(21, 40, 1, size=100))
    assert len(list((d / "wal").iterdir())) == 1
    assert sorted(p.name for p in (d / "snap").iterdir()) == [
        "000000000000000a-0000000000000001.snap", "0000000000000014-0000000000000001.snap"]
    s.close()


def test_crash_while_a_snapshot_or_segment_file_was_being_written(d: Path) -> None:
    s = RaftStorage.open(d)
    s.save(HS(1, 1, 2), E(1, 2, 1), None)
    s.close()
    (d / "snap" / "0000000000000002-0000000000000001.snap.tmp").write_bytes(b"NVRSNAP1 half")
    (d / "wal" / (SEG1 + ".tmp")).write_bytes(b"\x01\x02")
    s = RaftStorage.open(d)
    assert state(s) == (HS(1, 1, 2), None, E(1, 2, 1))
    assert not list(d.rglob("*.tmp"))
    s.close()


def test_crash_during_install_before_the_wal_record_is_durable(
        d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = RaftStorage.open(d)
    s.save(HS(1, 1, 3), E(1, 3, 1), None)
    seg = last_seg(d)
    size = seg.stat().st_size
    monkeypatch.setattr(os, "fdatasync", crash)
    with pytest.raises(Crash):
        s.save(HS(2, 0, 10), E(11, 11, 2), SNAP10)
    monkeypatch.undo()
    os.truncate(seg, size)  # the page cache never reached the disk
    s = reopen(s, d)
    assert state(s) == (HS(1, 1, 3), None, E(1, 3, 1))
    assert list((d / "snap").iterdir()) == []
    s.close()


def test_crash_during_install_keeps_a_prefix_of_the_save(d: Path) -> None:
    s = RaftStorage.open(d)
    s.save(HS(1, 1, 3), E(1, 3, 1), None)
    seg = last_seg(d)
    s.save(HS(2, 0, 10), E(11, 12, 2), SNAP10)
    s.close()
    os.truncate(seg, entry_offset(seg, 12) + 10)  # marker and entry 11 landed, the rest not
    s = RaftStorage.open(d)
    assert state(s) == (HS(1, 1, 3), 10, E(11, 11, 2))
    s.close()


def test_size_bytes_counts_wal_and_snapshots(d: Path) -> None:
    s = RaftStorage.open(d)
    s.save(HS(1, 1, 10), E(1, 10, 1, size=1000), None)
    s.compact(snap(5, 1, data=b"s" * 5000))
    files = [p for p in d.rglob("*") if p.is_file()]
    assert s.size_bytes() == sum(p.stat().st_size for p in files)
    assert 5 * 1000 + 5000 < s.size_bytes() < 5 * 1000 + 5000 + 1000
    s.close()

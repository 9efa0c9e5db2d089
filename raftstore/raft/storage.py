"""Durable storage for the Raft core: a checksummed write-ahead log plus snapshot files.

Layout of the directory given to ``RaftStorage.open``::

    wal/<seq:016x>.wal                    WAL segments, numbered without gaps
    snap/<index:016x>-<term:016x>.snap    snapshots (the one in use and the one before)
    *.tmp                                 a file being written; removed by recovery

Flow::

    save(hs, entries, snap) -> snap/ file (tmp, fsync, rename, fsync dir)
                            -> ONE os.write of [SNAPSHOT][ENTRY...][HARDSTATE] -> fdatasync
    compact(snap)           -> snap/ file -> new checkpoint segment (tmp, fsync, rename,
                               fsync dir) -> delete older segments -> prune snapshots
    open()                  -> replay the last checkpoint segment and those after it

WAL record (little-endian)::

    [u32 payload length][u32 crc32(type byte + payload)][u8 type][payload]

    SEGMENT   (4) seq u64, flags u8      first record of every segment; flag 1 = checkpoint
    ENTRY     (1) index u64, term u64, kind u8, data
    HARDSTATE (2) term u64, vote u64, commit u64
    SNAPSHOT  (3) index u64, term u64    a snapshot with this index/term is durable in snap/

A checkpoint segment (written by ``compact`` and for a new directory) is self-contained:
SEGMENT, SNAPSHOT, HARDSTATE, then the entries after the snapshot. Recovery therefore
starts at the last checkpoint segment; older ones are leftovers of an interrupted
compaction and are deleted. Replay rules:

- ENTRY at or below the last index overwrites from there; one that leaves a gap, lies at
  or below the snapshot, or has a term below its predecessor's is corruption.
- SNAPSHOT keeps the entries after it only if the log holds (index, term) (Raft §7).
- A bad record (short, over-long, CRC mismatch) in the last segment with no whole, valid
  record after it is a torn write: cut away with a warning. Any other damage, a gap in
  segment numbers, or a bad snapshot file that the WAL points at raises StorageCorrupt.
  (Losing the newest segment file entirely cannot be detected.)

Snapshot file::

    b"NVRSNAP1" | index u64 | term u64 | u32 n | msgpack(config.to_wire()) (n bytes)
    | u64 m | data (m bytes) | sha256 of everything before it

Threads: every method may be called from any thread; one lock serialises them. ``compact``
writes and fsyncs the (possibly large) snapshot file before taking the lock, so ``save``
is not held up by it; one ``compact`` runs at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from itertools import pairwise
from pathlib import Path

import msgpack
import structlog

from raftstore.raft.types import ClusterConfig, Entry, EntryKind, HardState, Snapshot, SnapshotMeta

log = structlog.get_logger("raftstore.raft.storage")

SEGMENT_BYTES = 64 * 1024 * 1024  # rotate the WAL when the current segment reaches this
SNAPSHOT_FLUSH_BYTES = 1024 * 1024  # a snapshot file is flushed to disk this much at a time
MAX_RECORD_BYTES = 256 * 1024 * 1024  # the largest record save() writes or replay accepts

_ENTRY, _HARDSTATE, _SNAPSHOT, _SEGMENT = 1, 2, 3, 4
_CHECKPOINT = 1  # SEGMENT flag: the segment holds everything recovery needs

_HDR = struct.Struct("<IIB")
_ENTRY_HEAD = struct.Struct("<QQB")
_HS = struct.Struct("<QQQ")
_MARK = struct.Struct("<QQ")
_SEG = struct.Struct("<QB")
_CRC_SEED = [zlib.crc32(bytes([t])) for t in range(256)]
# Where a record may start: a HARDSTATE or SNAPSHOT header with its fixed length, or an
# ENTRY header whose index and term are below 2**48 (true of every real entry, rarely of
# random bytes). Zero-width, so candidates may overlap.
_RECORD_START = re.compile(
    rb"(?s)(?=\x18\x00\x00\x00.{4}\x02|\x10\x00\x00\x00.{4}\x03"
    rb"|.{8}\x01.{6}\x00\x00.{6}\x00\x00)")
_KINDS = frozenset(int(k) for k in EntryKind)
_ZERO_HARD_STATE = HardState()

_SNAP_MAGIC = b"NVRSNAP1"
_SNAP_HEAD = struct.Struct("<QQI")
_U64 = struct.Struct("<Q")
_SNAP_MIN = len(_SNAP_MAGIC) + _SNAP_HEAD.size + _U64.size + 32

_SEGMENT_NAME = re.compile(r"^([0-9a-f]{16})\.wal$")
_SNAP_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.snap$")


class StorageCorrupt(Exception):
    """A file in the storage directory is damaged or missing; the message names the file,
    the byte offset (when there is one) and what is wrong. Recovery refuses to go on rather
    than return less than was durably saved."""

    def __init__(self, path: Path, offset: int | None, problem: str) -> None:
        where = f" at byte offset {offset}" if offset is not None else ""
        super().__init__(f"{path}{where}: {problem}")
        self.path = path
        self.offset = offset
        self.problem = problem


class StorageInUse(Exception):
    """Another ``RaftStorage`` (in this or another process) has the directory open."""


class _Log:
    """The log as of the last durable write: snapshot point, entries after it, hard state.

    Replay and ``save`` use the same checks, so anything ``save`` accepts replays."""

    __slots__ = ("base_index", "base_term", "entries", "hard_state")

    def __init__(self, base_index: int = 0, base_term: int = 0,
                 entries: list[Entry] | None = None, hard_state: HardState = _ZERO_HARD_STATE):
        self.base_index = base_index
        self.base_term = base_term
        self.entries: list[Entry] = entries if entries is not None else []
        self.hard_state = hard_state

    @property
    def last_index(self) -> int:
        return self.entries[-1].index if self.entries else self.base_index

    def term_at(self, index: int) -> int | None:
        if index == self.base_index:
            return self.base_term
        if self.base_index < index <= self.last_index:
            return self.entries[index - self.base_index - 1].term
        return None

    def append_problem(self, entries: Sequence[Entry]) -> str | None:
        """Why ``entries`` cannot be appended (each overwriting from its index), or None."""
        if not entries:
            return None
        first = entries[0].index
        if first <= self.base_index:
            return f"entry index {first} is at or below the snapshot index {self.base_index}"
        if first > self.last_index + 1:
            return f"entry index {first} leaves a gap after the last index {self.last_index}"
        prev_index, prev_term = first - 1, self.term_at(first - 1)
        assert prev_term is not None
        for e in entries:
            if e.index != prev_index + 1:
                return f"entry index {e.index} does not follow entry index {prev_index}"
            if e.term < prev_term:
                return (f"entry {e.index} has term {e.term}, below the term {prev_term} of "
                        f"entry {prev_index}")
            prev_index, prev_term = e.index, e.term
        return None

    def append(self, entries: Sequence[Entry]) -> None:
        if entries:
            del self.entries[entries[0].index - self.base_index - 1:]
            self.entries.extend(entries)

    def install_problem(self, index: int, term: int) -> str | None:
        """Why a snapshot at (index, term) cannot replace the current one, or None."""
        if index < self.base_index or (index == self.base_index and term != self.base_term):
            return (f"snapshot {index}/{term} is older than or conflicts with the current "
                    f"snapshot {self.base_index}/{self.base_term}")
        return None

    def installed(self, index: int, term: int) -> _Log:
        """The log after a snapshot at (index, term): entries after it survive only when
        the log holds the snapshot's last entry (same index and term), as in Raft §7."""
        keep = self.entries[index - self.base_index:] if self.term_at(index) == term else []
        return _Log(index, term, keep, self.hard_state)


class RaftStorage:
    """The Raft core's durable state in one directory: see the module docstring.

    Durability contract: when ``save``/``compact`` return, what they were given survives a
    crash (os.fdatasync/os.fsync, renames followed by an fsync of the directory). A call
    that raises after it began writing may or may not have taken effect, and the instance
    refuses every later write: close it and open the directory again. A call that raises
    ValueError wrote nothing."""

    def __init__(self, directory: Path, lock_fd: int, segment_bytes: int) -> None:
        self._dir = directory
        self._wal = directory / "wal"
        self._snap = directory / "snap"
        self._lock_fd = lock_fd
        self._segment_bytes = segment_bytes
        self._log = _Log()
        self._seq = 0
        self._fd = -1
        self._seg_size = 0
        self._failed: BaseException | None = None
        self._lock = threading.Lock()  # guards everything below and the files
        self._compacting = threading.Lock()  # one compact at a time
        self._recovered: tuple[HardState, Snapshot | None, list[Entry]] = (HardState(), None, [])

    @classmethod
    def open(cls, directory: Path, *, segment_bytes: int = SEGMENT_BYTES) -> RaftStorage:
        """Open ``directory``, creating the layout if absent and recovering otherwise.

        Recovery replays the WAL, cuts away a torn final record (a write that never
        completed, so was never acknowledged) with a warning, removes leftovers of an
        interrupted write or compaction, and raises StorageCorrupt for any other damage.
        Raises StorageInUse if the directory is already open."""
        directory = Path(directory)
        created = not directory.exists()
        directory.mkdir(parents=True, exist_ok=True)
        if created:
            _fsync_dir(directory.parent)
        lock_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise StorageInUse(f"{directory} is already open by another RaftStorage") from None
        store = cls(directory, lock_fd, segment_bytes)
        try:
            store._recover()
        except BaseException:
            store.close()
            raise
        return store

    def initial_state(self) -> tuple[HardState, Snapshot | None, list[Entry]]:
        """What recovery found at ``open``: the last hard state, the snapshot the WAL
        points at (or None), and the entries after it in index order, overwrites resolved.
        Not updated by later writes."""
        hs, snap, entries = self._recovered
        return hs, snap, list(entries)

    def save(self, hard_state: HardState | None, entries: list[Entry],
             snapshot: Snapshot | None) -> None:
        """Persist a Ready's output; durable (os.fdatasync) before it returns.

        Order: ``snapshot`` first (a follower installing one), then ``entries``, then
        ``hard_state``; a crash mid-call leaves a prefix of that order. Installing a
        snapshot discards entries at or below its index; entries after it are kept only if
        the log holds the snapshot's last entry (same index and term), else all are
        discarded. ``entries`` must be contiguous; they may start at or below the last
        index, which overwrites the suffix from there. Raises ValueError (writing nothing)
        for entries that would leave a gap, go below the snapshot, lower the term, or
        replace a committed entry with one of another term."""
        with self._lock:
            self._save(hard_state, entries, snapshot)

    def _save(self, hard_state: HardState | None, entries: list[Entry],
              snapshot: Snapshot | None) -> None:
        self._check_usable()
        if hard_state is None and not entries and snapshot is None:
            return
        target = self._log
        parts: list[bytes] = []
        if snapshot is not None:
            m = snapshot.meta
            if m.index == 0:
                raise ValueError("save: a snapshot must have an index above 0")
            problem = target.install_problem(m.index, m.term)
            if problem is not None:
                raise ValueError(f"save: {problem}")
            target = target.installed(m.index, m.term)
            parts.append(_record(_SNAPSHOT, _MARK.pack(m.index, m.term)))
        problem = target.append_problem(entries)
        if problem is not None:
            raise ValueError(f"save: {problem}")
        commit = self._log.hard_state.commit
        for e in entries if entries and entries[0].index <= commit else ():
            old = target.term_at(e.index)
            if e.index <= commit and old is not None and old != e.term:
                raise ValueError(f"save: entry {e.index} (term {e.term}) would replace the "
                                 f"committed entry {e.index} of term {old}")
        try:
            _add_entry_records(parts, entries)
            if hard_state is not None:
                parts.append(_record(_HARDSTATE, _HS.pack(
                    hard_state.term, hard_state.vote, hard_state.commit)))
        except struct.error as err:
            raise ValueError(f"save: a value does not fit the WAL's u64 fields: {err}") from err
        buf = b"".join(parts)
        with self._fail_on_error():
            if snapshot is not None:
                _publish(_write_snapshot_file(self._snap, snapshot, "save"))
            if self._seg_size >= self._segment_bytes:
                self._rotate()
            _write_all(self._fd, buf)
            os.fdatasync(self._fd)
            self._seg_size += len(buf)
        target.append(entries)
        if hard_state is not None:
            target.hard_state = hard_state
        self._log = target
        if snapshot is not None:
            with self._fail_on_error():
                self._prune_snapshots()

    def compact(self, snapshot: Snapshot) -> None:
        """The application took ``snapshot`` at ``snapshot.meta.index``: make it durable
        (checksummed file, fsync, atomic rename, fsync of snap/), then start a checkpoint
        segment holding the hard state and the entries after the index (fsync, rename,
        fsync of wal/), then delete the older segments and all snapshots but this one and
        the one before. Entries at or below the index are gone afterwards; every entry
        after it survives. A crash at any point recovers either the old or the new state.

        Raises ValueError (writing nothing) unless the log holds the snapshot's last entry
        with the snapshot's term. A no-op for a snapshot at or below the current snapshot
        point, including when a concurrent ``save`` installed a newer one meanwhile."""
        with self._compacting:
            with self._lock:
                if not self._compaction_needed(snapshot):
                    return
            tmp = _write_snapshot_file(self._snap, snapshot, "compact")  # without the lock
            published = False
            try:
                with self._lock:
                    if not self._compaction_needed(snapshot):
                        return
                    m = snapshot.meta
                    target = self._log.installed(m.index, m.term)
                    with self._fail_on_error():
                        _publish(tmp)
                        published = True
                        self._start_segment(self._seq + 1,
                                            _checkpoint_records(self._seq + 1, target))
                        self._log = target
                        seq = self._seq
            finally:
                if not published:
                    tmp.unlink(missing_ok=True)
            # Garbage from here on (recovery starts at the checkpoint segment): deleting
            # it does not hold up ``save``, which unlinking and two directory fsyncs did.
            with self._fail_on_error():
                self._delete_segments_before(seq)
                with self._lock:
                    doomed = self._doomed_snapshots()
                _delete_snapshots(self._snap, doomed)

    def _compaction_needed(self, snapshot: Snapshot) -> bool:
        """Whether ``compact(snapshot)`` has work to do (False: at or below the current
        snapshot point). Raises ValueError if it cannot be done. Call with the lock held."""
        self._check_usable()
        m, lg = snapshot.meta, self._log
        if m.index < lg.base_index or (m.index, m.term) == (lg.base_index, lg.base_term):
            return False
        if lg.term_at(m.index) != m.term:
            raise ValueError(
                f"compact: snapshot {m.index}/{m.term} does not match the log (snapshot "
                f"{lg.base_index}/{lg.base_term}, last index {lg.last_index}, term at "
                f"{m.index}: {lg.term_at(m.index)})")
        return True

    def latest_snapshot(self) -> Snapshot | None:
        """The snapshot recovery would use now (read from disk and verified), or None.
        For sending to a follower that is too far behind. Raises StorageCorrupt."""
        with self._lock:
            self._check_usable()
            index, term = self._log.base_index, self._log.base_term
            if index == 0:
                return None
            path = self._snap / _snapshot_name(index, term)
            try:
                fd = os.open(path, os.O_RDONLY)  # stays readable if a prune unlinks it
            except FileNotFoundError:
                raise StorageCorrupt(path, None, "missing, but the WAL records it") from None
        return _read_snapshot_file(path, index, term, fd)

    def last_index(self) -> int:
        """The index of the last entry, or of the snapshot when no entry follows it."""
        with self._lock:
            return self._log.last_index

    def size_bytes(self) -> int:
        """Bytes on disk: WAL segments plus snapshot files (and any file being written)."""
        total = 0
        for sub in (self._wal, self._snap):
            with os.scandir(sub) as it:
                for e in it:
                    with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                        total += e.stat().st_size
        return total

    def close(self) -> None:
        """Close the files and release the directory. Idempotent. Needs no flush:
        everything ``save``/``compact`` returned from is already durable."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1
            if self._failed is None:
                self._failed = ValueError("RaftStorage is closed")

    # -- writing ----------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise ValueError(f"RaftStorage {self._dir} is unusable after an earlier error or "
                             f"close ({self._failed!r}); open the directory again") from None

    @contextlib.contextmanager
    def _fail_on_error(self) -> Iterator[None]:
        """An exception inside marks the instance unusable: the state on disk is no longer
        known (and after a failed fsync, retrying it would lie)."""
        try:
            yield
        except BaseException as err:
            self._failed = err
            raise

    def _rotate(self) -> None:
        self._start_segment(self._seq + 1, _record(_SEGMENT, _SEG.pack(self._seq + 1, 0)))

    def _start_segment(self, seq: int, content: bytes) -> None:
        """Make segment ``seq`` with ``content`` durable under its final name (so a segment
        file always has a whole header) and append to it from now on."""
        path = self._wal / _segment_name(seq)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        try:
            _write_all(fd, content)
            os.fsync(fd)
            os.rename(tmp, path)
            _fsync_dir(self._wal)
        except BaseException:
            os.close(fd)
            raise
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._seq, self._seg_size = fd, seq, len(content)

    def _delete_segments_before(self, seq: int) -> None:
        """Delete, oldest first, the segments before ``seq`` (a checkpoint segment).
        Needs no lock: only ``compact`` starts checkpoint segments, one at a time."""
        old = sorted(s for s, _ in _list_segments(self._wal) if s < seq)
        for s in old:
            (self._wal / _segment_name(s)).unlink(missing_ok=True)
        if old:
            _fsync_dir(self._wal)

    def _doomed_snapshots(self) -> list[tuple[int, int]]:
        """The snapshots to delete: all but the one in use and the newest one before it.
        Call with the lock held."""
        base = (self._log.base_index, self._log.base_term)
        found = _list_snapshots(self._snap)
        older = [k for k in found if k[0] < base[0]]
        keep = {base, max(older)} if older else {base}
        return [k for k in found if k not in keep]

    def _prune_snapshots(self) -> None:
        _delete_snapshots(self._snap, self._doomed_snapshots())

    # -- recovery ---------------------------------------------------------------------

    def _recover(self) -> None:
        for sub in (self._wal, self._snap):
            if not sub.exists():
                sub.mkdir()
                _fsync_dir(self._dir)
            _remove_tmp_files(sub)
        segments = _list_segments(self._wal)
        if not segments:
            if _list_snapshots(self._snap):
                raise StorageCorrupt(self._wal, None, "no WAL segment, but snap/ holds "
                                     "snapshots: the WAL is missing")
            self._start_segment(0, _checkpoint_records(0, self._log))
            return
        start = _last_checkpoint(segments)
        for (prev, _), (seq, _) in pairwise(segments[start:]):
            if seq != prev + 1:
                raise StorageCorrupt(self._wal / _segment_name(prev + 1), None,
                                     f"segment missing: the WAL goes from {_segment_name(prev)}"
                                     f" to {_segment_name(seq)}")
        replay = _Replay()
        valid = 0
        for i, (seq, path) in enumerate(segments[start:], start):
            valid = replay.segment(path, seq, last=i == len(segments) - 1)
        snapshot = self._load_snapshot(replay)
        # Everything is checked; now repair what a crash may have left.
        last_seq, last_path = segments[-1]
        if valid < last_path.stat().st_size:
            log.warning("raft WAL: cutting a torn final record (a write that never completed)",
                        file=str(last_path), offset=valid,
                        dropped_bytes=last_path.stat().st_size - valid)
            os.truncate(last_path, valid)
        self._log = replay.log
        self._delete_segments_before(segments[start][0])
        self._remove_orphan_snapshots()
        self._prune_snapshots()
        self._fd = os.open(last_path, os.O_WRONLY | os.O_APPEND)
        os.fsync(self._fd)
        self._seq, self._seg_size = last_seq, valid
        self._recovered = (self._log.hard_state, snapshot, list(self._log.entries))

    def _load_snapshot(self, replay: _Replay) -> Snapshot | None:
        index, term = replay.log.base_index, replay.log.base_term
        if index == 0:
            return None
        path = self._snap / _snapshot_name(index, term)
        marker = f"the WAL ({replay.marker_at}) records a snapshot at index {index} term {term}"
        if not path.exists():
            raise StorageCorrupt(path, None, f"missing, but {marker}")
        return _read_snapshot_file(path, index, term)

    def _remove_orphan_snapshots(self) -> None:
        """Snapshots newer than the one the WAL records: their save/compact never finished."""
        base = (self._log.base_index, self._log.base_term)
        orphans = [k for k in _list_snapshots(self._snap) if k[0] >= base[0] and k != base]
        for index, term in orphans:
            path = self._snap / _snapshot_name(index, term)
            log.warning("raft storage: removing a snapshot the WAL never recorded "
                        "(interrupted save or compact)", file=str(path))
            os.unlink(path)
        if orphans:
            _fsync_dir(self._snap)


class _Replay:
    """Applies segments in order to a ``_Log``, raising StorageCorrupt on damage."""

    def __init__(self) -> None:
        self.log = _Log()
        self.marker_at = "no SNAPSHOT record"

    def segment(self, path: Path, seq: int, *, last: bool) -> int:
        """Apply one segment; return the length of its valid prefix (shorter than the file
        only for a torn final record of the last segment)."""
        view = memoryview(path.read_bytes())
        off = 0
        while off < len(view):
            got = _read_record(view, off)
            if isinstance(got, str):
                if last and off > 0 and not _valid_record_after(view, off):
                    return off
                raise StorageCorrupt(path, off, got)
            typ, start, end = got
            problem = self._apply(typ, view[start:end], seq, first=off == 0)
            if problem is not None:
                raise StorageCorrupt(path, off, problem)
            if typ == _SNAPSHOT:
                self.marker_at = f"{path.name} at byte offset {off}"
            off = end
        if off == 0:
            raise StorageCorrupt(path, 0, "empty segment: no SEGMENT header")
        return off

    def _apply(self, typ: int, payload: memoryview, seq: int, *, first: bool) -> str | None:
        size = len(payload)
        if first != (typ == _SEGMENT):
            return ("the first record is not a SEGMENT header" if first
                    else "a SEGMENT header in the middle of a segment")
        if typ == _SEGMENT:
            if size != _SEG.size:
                return f"SEGMENT record of {size} bytes, expected {_SEG.size}"
            found, _ = _SEG.unpack(payload)
            return None if found == seq else f"segment header says seq {found}, name says {seq}"
        if typ == _ENTRY:
            if size < _ENTRY_HEAD.size:
                return f"ENTRY record of {size} bytes, shorter than {_ENTRY_HEAD.size}"
            index, term, kind = _ENTRY_HEAD.unpack_from(payload)
            if kind not in _KINDS:
                return f"ENTRY {index} has unknown kind {kind}"
            entry = Entry(index, term, EntryKind(kind), bytes(payload[_ENTRY_HEAD.size:]))
            problem = self.log.append_problem((entry,))
            if problem is None:
                self.log.append((entry,))
            return problem
        if typ == _HARDSTATE:
            if size != _HS.size:
                return f"HARDSTATE record of {size} bytes, expected {_HS.size}"
            self.log.hard_state = HardState(*_HS.unpack(payload))
            return None
        if typ == _SNAPSHOT:
            if size != _MARK.size:
                return f"SNAPSHOT record of {size} bytes, expected {_MARK.size}"
            index, term = _MARK.unpack(payload)
            problem = self.log.install_problem(index, term)
            if problem is None:
                self.log = self.log.installed(index, term)
            return problem
        return f"unknown record type {typ}"


# -- records ---------------------------------------------------------------------------

def _record(typ: int, payload: bytes) -> bytes:
    return _HDR.pack(len(payload), zlib.crc32(payload, _CRC_SEED[typ]), typ) + payload


def _add_entry_records(parts: list[bytes], entries: Sequence[Entry]) -> None:
    """Append the ENTRY records for ``entries`` to ``parts`` (three pieces each).
    Raises ValueError for an entry too large for one record."""
    seed, head_size = _CRC_SEED[_ENTRY], _ENTRY_HEAD.size
    for e in entries:
        head = _ENTRY_HEAD.pack(e.index, e.term, e.kind)
        data = e.data
        if len(data) > MAX_RECORD_BYTES - head_size:
            raise ValueError(f"entry {e.index} is larger than {MAX_RECORD_BYTES} bytes")
        crc = zlib.crc32(data, zlib.crc32(head, seed))
        parts += (_HDR.pack(head_size + len(data), crc, _ENTRY), head, data)


def _checkpoint_records(seq: int, state: _Log) -> bytes:
    hs = state.hard_state
    parts = [_record(_SEGMENT, _SEG.pack(seq, _CHECKPOINT)),
             _record(_SNAPSHOT, _MARK.pack(state.base_index, state.base_term)),
             _record(_HARDSTATE, _HS.pack(hs.term, hs.vote, hs.commit))]
    _add_entry_records(parts, state.entries)
    return b"".join(parts)


def _read_record(view: memoryview, off: int) -> tuple[int, int, int] | str:
    """(type, payload start, end) of the record at ``off``, or what is wrong with it."""
    left = len(view) - off
    if left < _HDR.size:
        return f"incomplete record header ({left} of {_HDR.size} bytes)"
    length, crc, typ = _HDR.unpack_from(view, off)
    if length > MAX_RECORD_BYTES:
        return f"record length {length} exceeds the maximum {MAX_RECORD_BYTES}"
    end = off + _HDR.size + length
    if end > len(view):
        return (f"record of {length} payload bytes runs past the end of the file "
                f"({left - _HDR.size} bytes left)")
    if zlib.crc32(view[off + _HDR.size:end], _CRC_SEED[typ]) != crc:
        return f"CRC mismatch in a record of type {typ} and {length} payload bytes"
    return typ, off + _HDR.size, end


def _valid_record_after(view: memoryview, off: int) -> bool:
    """Whether a whole, checksummed ENTRY, HARDSTATE or SNAPSHOT record starts after ``off``:
    if one does, the bad record at ``off`` is damage, not a torn final write. A regex picks
    the candidates, so scanning megabytes of payload after a damaged length costs little."""
    for m in _RECORD_START.finditer(view, off + 1):
        if not isinstance(_read_record(view, m.start()), str):
            return True
    return False


def _last_checkpoint(segments: list[tuple[int, Path]]) -> int:
    """Position in ``segments`` of the last checkpoint segment."""
    for i in range(len(segments) - 1, -1, -1):
        path = segments[i][1]
        with open(path, "rb") as f:
            head = memoryview(f.read(_HDR.size + _SEG.size))
        got = _read_record(head, 0)
        if isinstance(got, str) or got[0] != _SEGMENT or got[2] != len(head):
            problem = got if isinstance(got, str) else "the first record is not a SEGMENT header"
            raise StorageCorrupt(path, 0, f"bad segment header: {problem}")
        if _SEG.unpack_from(head, _HDR.size)[1] & _CHECKPOINT:
            return i
    first = segments[0][1]
    raise StorageCorrupt(first, 0, "no checkpoint segment: the segments before this one are "
                         "missing")


# -- snapshot files --------------------------------------------------------------------

def _write_snapshot_file(snap_dir: Path, snapshot: Snapshot, tag: str) -> Path:
    """Write ``snapshot`` durably under a temporary name (``tag`` keeps concurrent writers
    apart); return that name, for ``_publish``."""
    m = snapshot.meta
    config = bytes(msgpack.packb(m.config.to_wire()))
    head = (_SNAP_MAGIC + _SNAP_HEAD.pack(m.index, m.term, len(config)) + config
            + _U64.pack(len(snapshot.data)))
    digest = hashlib.sha256(head)
    digest.update(snapshot.data)
    path = snap_dir / _snapshot_name(m.index, m.term)
    tmp = path.with_name(f"{path.name}.{tag}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, head)
        data = memoryview(snapshot.data)
        # Flushed a slice at a time: on ext4 (data=ordered) an fdatasync of the WAL can
        # wait for other files' dirty blocks, and one flush of a whole snapshot at the end
        # held up the writes being acknowledged meanwhile (measured: 60 ms at 8 MB).
        for off in range(0, len(data), SNAPSHOT_FLUSH_BYTES):
            _write_all(fd, data[off:off + SNAPSHOT_FLUSH_BYTES])
            os.fdatasync(fd)
        _write_all(fd, digest.digest())
        os.fsync(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    return tmp


def _publish(tmp: Path) -> None:
    """Rename a file written by ``_write_snapshot_file`` to its final name, durably."""
    os.rename(tmp, tmp.with_name(tmp.name.split(".")[0] + ".snap"))
    _fsync_dir(tmp.parent)


def _read_snapshot_file(path: Path, index: int, term: int, fd: int | None = None) -> Snapshot:
    """Read and verify a snapshot file (from ``fd`` if given, which this closes)."""
    if fd is None:
        raw = path.read_bytes()
    else:
        with open(fd, "rb") as f:
            raw = f.read()
    if len(raw) < _SNAP_MIN:
        raise StorageCorrupt(path, 0, f"{len(raw)} bytes, shorter than a snapshot header")
    if raw[:len(_SNAP_MAGIC)] != _SNAP_MAGIC:
        raise StorageCorrupt(path, 0, f"bad magic {raw[:len(_SNAP_MAGIC)]!r}")
    if hashlib.sha256(memoryview(raw)[:-32]).digest() != raw[-32:]:
        raise StorageCorrupt(path, len(raw) - 32, "SHA-256 mismatch: the snapshot is damaged")
    off = len(_SNAP_MAGIC)
    found_index, found_term, config_len = _SNAP_HEAD.unpack_from(raw, off)
    if (found_index, found_term) != (index, term):
        raise StorageCorrupt(path, off, f"holds snapshot {found_index}/{found_term}, the WAL "
                             f"needs {index}/{term}")
    off += _SNAP_HEAD.size
    if off + config_len + _U64.size + 32 > len(raw):
        raise StorageCorrupt(path, off - 4, f"config length {config_len} runs past the end")
    try:
        config = ClusterConfig.from_wire(msgpack.unpackb(raw[off:off + config_len]))
    except Exception as err:
        raise StorageCorrupt(path, off, f"undecodable cluster config: {err}") from err
    off += config_len
    (data_len,) = _U64.unpack_from(raw, off)
    if off + _U64.size + data_len + 32 != len(raw):
        raise StorageCorrupt(path, off, f"data length {data_len} does not match the file size")
    data = raw[off + _U64.size:off + _U64.size + data_len]
    return Snapshot(SnapshotMeta(index, term, config), data)


# -- files -----------------------------------------------------------------------------

def _segment_name(seq: int) -> str:
    return f"{seq:016x}.wal"


def _snapshot_name(index: int, term: int) -> str:
    return f"{index:016x}-{term:016x}.snap"


def _list_segments(wal: Path) -> list[tuple[int, Path]]:
    found = ((_SEGMENT_NAME.match(p.name), p) for p in wal.iterdir())
    return sorted((int(m.group(1), 16), p) for m, p in found if m)


def _list_snapshots(snap_dir: Path) -> list[tuple[int, int]]:
    found = (_SNAP_NAME.match(p.name) for p in snap_dir.iterdir())
    return sorted((int(m.group(1), 16), int(m.group(2), 16)) for m in found if m)


def _remove_tmp_files(directory: Path) -> None:
    tmp = [p for p in directory.iterdir() if p.name.endswith(".tmp")]
    for p in tmp:
        log.warning("raft storage: removing an unfinished file", file=str(p))
        p.unlink()
    if tmp:
        _fsync_dir(directory)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _delete_snapshots(snap_dir: Path, doomed: list[tuple[int, int]]) -> None:
    """Unlink these snapshots (one may already be gone: ``save`` and ``compact`` both
    prune), then make that durable."""
    for index, term in doomed:
        (snap_dir / _snapshot_name(index, term)).unlink(missing_ok=True)
    if doomed:
        _fsync_dir(snap_dir)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

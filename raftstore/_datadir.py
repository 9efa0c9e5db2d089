"""A member's data directory: what is in it, and refusing one that is not ours or is damaged.

Layout::

    member.json          identity: format, member name, peer address, cluster token
    raft.journal(.meta)  pysyncobj's Raft log (mmap'd) and its term/vote/commit record
    snapshot             our state machine snapshot: magic, SHA-256, pickle

``prepare`` runs before anything else opens these files. pysyncobj itself swallows
errors when loading (it would start from an empty state and serve wrong data), so
every file is checked here first and a problem stops the member with a message that
says which file and what is wrong.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raftstore._config import StoreConfig

FORMAT = "navarch-raftstore"
FORMAT_VERSION = 1
SNAPSHOT_MAGIC = b"NAVARCH-RAFTSTORE-SNAPSHOT-1\n"
# pysyncobj's FileJournal layout: name(24) version(8) format(4) last-record-offset(4),
# then records framed as size(4) + [idx(8) term(8) command] + size(4).
_J_NAME = b"PYSYNCOBJ"
_J_FIRST = 24 + 8 + 4 + 4


class DataDirError(Exception):
    """The data directory cannot be used; the message says why and what to do."""


class SnapshotError(DataDirError):
    """A snapshot file is damaged."""


@dataclass(frozen=True)
class DataDir:
    """Paths inside one member's data directory."""

    root: Path

    @property
    def marker(self) -> Path:
        return self.root / "member.json"

    @property
    def journal(self) -> Path:
        return self.root / "raft.journal"

    @property
    def journal_meta(self) -> Path:
        return self.root / "raft.journal.meta"

    @property
    def snapshot(self) -> Path:
        return self.root / "snapshot"

    def size_bytes(self) -> int:
        total = 0
        for p in (self.journal, self.snapshot):
            try:
                total += p.stat().st_size
            except OSError:
                pass
        return total


def prepare(config: StoreConfig) -> tuple[DataDir, bool]:
    """Create or check the data directory. Returns it and whether it is new."""
    d = DataDir(config.data_dir)
    identity = {
        "format": FORMAT, "version": FORMAT_VERSION, "name": config.name,
        "peer": config.peer_address, "token": config.initial_cluster_token,
    }
    if d.root.exists() and not d.root.is_dir():
        raise DataDirError(f"data dir {d.root} exists and is not a directory")
    if not d.marker.exists():
        if d.root.exists() and any(d.root.iterdir()):
            raise DataDirError(
                f"data dir {d.root} is not empty and has no member.json: it is not a "
                "raftstore member's data dir. Point --data-dir at an empty or new directory.")
        d.root.mkdir(parents=True, exist_ok=True)
        _write_json(d.marker, identity)
        return d, True
    try:
        found = json.loads(d.marker.read_text())
    except (OSError, ValueError) as e:
        raise DataDirError(f"{d.marker} is unreadable or damaged: {e}") from e
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise DataDirError(f"{d.marker} is not a raftstore member file")
    if found.get("version") != FORMAT_VERSION:
        raise DataDirError(
            f"{d.marker} has format version {found.get('version')}; this raftstore reads "
            f"version {FORMAT_VERSION}")
    for key, flag in (("name", "--name"), ("peer", "--initial-cluster"),
                      ("token", "--initial-cluster-token")):
        if found.get(key) != identity[key]:
            raise DataDirError(
                f"data dir {d.root} belongs to a member with {key} {found.get(key)!r}, "
                f"but {flag} gives {identity[key]!r}; use that member's own data dir")
    check_journal(d.journal)
    check_meta(d.journal_meta)
    if d.snapshot.exists():
        read_snapshot(str(d.snapshot), verify_only=True)
    return d, False


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    _fsync_file(tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_file(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_journal(path: Path) -> int:
    """Walk the journal's framing; raise DataDirError if damaged. Returns the entry count."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    where = f"Raft journal {path}"
    if len(data) < _J_FIRST or not data.startswith(_J_NAME):
        raise DataDirError(f"{where} has no pysyncobj journal header: damaged or not a journal")
    (fmt,) = struct.unpack_from("<I", data, 32)
    (last,) = struct.unpack_from("<I", data, 36)
    if fmt != 1:
        raise DataDirError(f"{where} has journal format {fmt}, expected 1")
    if not _J_FIRST <= last <= len(data):
        raise DataDirError(f"{where} is truncated: its header points past the end of the file")
    off, count, prev_idx, prev_term = _J_FIRST, 0, None, 0
    while off < last:
        if off + 4 > last:
            raise DataDirError(f"{where} is damaged at byte {off}: torn record header")
        (size,) = struct.unpack_from("<I", data, off)
        end = off + 4 + size
        if size < 16 or end + 4 > last:
            raise DataDirError(f"{where} is damaged at byte {off}: bad record size {size}")
        (tail,) = struct.unpack_from("<I", data, end)
        if tail != size:
            raise DataDirError(f"{where} is damaged at byte {off}: record framing mismatch")
        idx, term = struct.unpack_from("<QQ", data, off + 4)
        if prev_idx is not None and idx != prev_idx + 1:
            raise DataDirError(
                f"{where} is damaged at byte {off}: entry {idx} follows entry {prev_idx}")
        if term < prev_term:
            raise DataDirError(f"{where} is damaged at entry {idx}: its term goes backwards")
        problem = _check_entry(data[off + 20:end])
        if problem:
            raise DataDirError(f"{where} is damaged at entry {idx} (byte {off}): {problem}")
        prev_idx, prev_term = idx, term
        off = end + 4
        count += 1
    return count


class _EntryUnpickler(pickle.Unpickler):
    """Loads journal entries: builtins, ``_codecs.encode`` (how pickle protocol 2, which
    pysyncobj uses, spells bytes) and pysyncobj's node class (membership entries)."""

    ALLOWED = {("_codecs", "encode"), ("pysyncobj.node", "TCPNode"), ("pysyncobj.node", "Node")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected {module}.{name}")


def _check_entry(command: bytes) -> str | None:
    """What is wrong with one pysyncobj journal entry's command, or None."""
    from raftstore._commands import CorruptCommand, decode

    if not command:
        return "empty command"
    kind, body = command[0], command[1:]
    if kind == 1:  # no-op
        return None if not body else "no-op entry with a body"
    if kind not in (0, 2, 3):
        return f"unknown entry type {kind}"
    try:
        value = _EntryUnpickler(io.BytesIO(body)).load()
    except Exception as e:  # noqa: BLE001 - any failure is damage
        return f"entry does not load ({e.__class__.__name__})"
    if kind != 0:
        return None
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], tuple)
            and len(value[1]) == 1 and isinstance(value[1][0], bytes)):
        return "entry is not a raftstore command"
    try:
        decode(value[1][0])
    except CorruptCommand as e:
        return str(e)
    return None


def check_meta(path: Path) -> None:
    """The journal's term/vote record must load: losing it could let this member vote twice."""
    if not path.exists():
        return
    try:
        meta = pickle.loads(path.read_bytes())
    except Exception as e:
        raise DataDirError(f"Raft metadata {path} is damaged ({e}); it holds the member's "
                           "term and vote and cannot be rebuilt") from e
    if not isinstance(meta, dict) or not isinstance(meta.get("currentTerm", 0), int):
        raise DataDirError(f"Raft metadata {path} does not hold a term and vote")


def write_snapshot(filename: str, state: object, raft_data: object) -> None:
    """Write a snapshot file durably: magic, SHA-256 of the payload, the payload."""
    payload = pickle.dumps((state, raft_data), protocol=pickle.HIGHEST_PROTOCOL)
    with open(filename, "wb") as f:
        f.write(SNAPSHOT_MAGIC)
        f.write(hashlib.sha256(payload).digest())
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def read_snapshot(filename: str, verify_only: bool = False) -> tuple[Any, Any]:
    """Read and verify a snapshot. Raises DataDirError (at startup) if it is damaged."""
    try:
        with open(filename, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SnapshotError(f"snapshot {filename} is unreadable: {e}") from e
    n = len(SNAPSHOT_MAGIC)
    if not data.startswith(SNAPSHOT_MAGIC) or len(data) < n + 32:
        raise SnapshotError(f"snapshot {filename} is damaged or not a raftstore snapshot")
    digest, payload = data[n:n + 32], data[n + 32:]
    if hashlib.sha256(payload).digest() != digest:
        raise SnapshotError(f"snapshot {filename} is damaged: checksum mismatch")
    if verify_only:
        return None, None
    state, raft_data = pickle.loads(payload)
    return state, raft_data

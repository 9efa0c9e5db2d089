"""A member's data directory: whose it is, and refusing one that is not ours.

Layout::

    member.json   identity: format, member name, peer address, cluster token
    raft/         the Raft WAL and snapshots (``raftstore.raft.storage``), which check
                  their own checksums when opened and refuse damage with StorageCorrupt

``prepare`` runs before anything else opens these files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raftstore._config import StoreConfig

FORMAT = "navarch-raftstore"
FORMAT_VERSION = 2  # 1: the journal of an earlier Raft library


class DataDirError(Exception):
    """The data directory cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class DataDir:
    """Paths inside one member's data directory."""

    root: Path

    @property
    def marker(self) -> Path:
        return self.root / "member.json"

    @property
    def raft(self) -> Path:
        return self.root / "raft"


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
    return d, False


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)

"""The programmer against the kernel, in a namespace of its own: what netlink writes is
what ``nft -f`` makes of the same ruleset as text; incremental syncs end where a full
sync would; a refused transaction changes nothing; drift is seen."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.cluster import REPO

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None, reason="needs root and nft")

WORKER = Path(__file__).with_name("programmer_worker.py")


@pytest.fixture
def netns() -> Iterator[str]:
    names = [f"nvq-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield names[0]
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], check=False)


def in_netns(netns: str, *cmd: str, stdin: str | None = None) -> str:
    out = subprocess.run(["ip", "netns", "exec", netns, *cmd], input=stdin,
                         capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return out.stdout


def worker(netns: str, *args: str) -> str:
    return in_netns(netns, sys.executable, str(WORKER), *args)


def listing(netns: str) -> str:
    return in_netns(netns, "nft", "list", "ruleset")


def canonical(netns: str) -> dict[str, object]:
    """The ruleset as nft's JSON, without what depends on the order things were made in:
    handles, the order of chains and sets, and of set elements."""
    objects = json.loads(in_netns(netns, "nft", "-j", "list", "ruleset"))["nftables"]
    chains, sets, rules = [], [], {}
    for item in objects:
        kind, body = next(iter(item.items()))
        if kind in ("chain", "set", "map"):
            body = {k: v for k, v in body.items() if k != "handle"}
            if "elem" in body:
                body["elem"] = sorted(body["elem"], key=json.dumps)
            (chains if kind == "chain" else sets).append(json.dumps(body, sort_keys=True))
        elif kind == "rule":
            rules.setdefault(body["chain"], []).append(body["expr"])
    return {"chains": sorted(chains), "sets": sorted(sets), "rules": rules}


def test_netlink_matches_nft_text(netns: str) -> None:
    text = worker(netns, "text")
    other = netns + "-t"
    subprocess.run(["ip", "netns", "add", other], check=True)
    try:
        in_netns(other, "nft", "-f", "-", stdin=text)
        worker(netns, "full")
        assert listing(netns) == listing(other)
    finally:
        subprocess.run(["ip", "netns", "del", other], check=False)


def test_incremental_syncs_end_where_a_full_sync_would(netns: str) -> None:
    worker(netns, "incremental")  # full sync of set A, then partial syncs to set B
    incremental = canonical(netns)
    worker(netns, "cleanup")
    assert not listing(netns).strip()
    worker(netns, "full-b")
    assert incremental == canonical(netns)


def test_refused_transaction_changes_nothing_and_drift_is_seen(netns: str) -> None:
    worker(netns, "full")
    before = listing(netns)
    assert "refused" in worker(netns, "refused")  # a rule jumping to a missing chain
    assert listing(netns) == before
    # another writer moves the ruleset generation: the programmer sees it
    assert worker(netns, "drift").split() == ["False", "True"]
    assert listing(netns) != before
    worker(netns, "full")  # a full sync repairs it
    assert listing(netns) == before

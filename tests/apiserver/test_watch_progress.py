"""The watch position and progress-trust rules of services/apiserver/_watch_progress.py,
driven with etcd WatchResponse messages: no server, no I/O.

Each scenario is a list of inputs ("idle" = the stream was silent for a progress interval)
and the outcome of each: "ask" (send a progress request), "created", "-" (nothing),
"batch R/N" (deliver a batch ending at R with N events), "compacted R", "cancel".
"""

from __future__ import annotations

from typing import Any

import pytest
from aetcd.rpc import kv_pb2, rpc_pb2

from services.apiserver._watch_progress import PROGRESS_WATCH_ID, WatchProgress

W = 3  # our watch id


def created(revision: int, canceled: bool = False) -> Any:
    r = rpc_pb2.WatchResponse(watch_id=-1 if canceled else W, created=True, canceled=canceled)
    r.header.revision = revision
    return r


def events(*revisions: int, wid: int = W) -> Any:
    r = rpc_pb2.WatchResponse(watch_id=wid, events=[
        kv_pb2.Event(kv=kv_pb2.KeyValue(key=b"k", mod_revision=rev)) for rev in revisions])
    r.header.revision = max(revisions)
    return r


def answer(revision: int) -> Any:
    r = rpc_pb2.WatchResponse(watch_id=PROGRESS_WATCH_ID)
    r.header.revision = revision
    return r


def notify(revision: int) -> Any:
    r = rpc_pb2.WatchResponse(watch_id=W)
    r.header.revision = revision
    return r


def compacted(revision: int) -> Any:
    return rpc_pb2.WatchResponse(watch_id=W, canceled=True, compact_revision=revision)


def run(progress: WatchProgress, inputs: list[Any]) -> list[str]:
    out = []
    for item in inputs:
        if item == "idle":
            out.append("ask" if progress.on_idle() else "-")
            continue
        step = progress.on_response(item)
        if step.compact_revision:
            out.append(f"compacted {step.compact_revision}")
        elif step.cancel_reason is not None:
            out.append("cancel")
        elif step.created:
            out.append("created")
        elif step.ask_progress:
            out.append("ask")
        elif step.revision:
            out.append(f"batch {step.revision}/{len(step.events)}")
        else:
            out.append("-")
    return out


SCENARIOS: list[tuple[str, int, list[tuple[Any, str]]]] = [
    ("started past the head: a confirmed answer is delivered", 11, [
        (created(10), "created"), ("idle", "ask"), (answer(12), "ask"),
        (answer(13), "batch 12/0")]),
    ("nothing is asked before the watch is created", 11, [
        ("idle", "-"), (created(10), "created"), ("idle", "ask"), ("idle", "-")]),
    ("an event between the two answers voids the pair (etcd-io/etcd#15220)", 11, [
        (created(10), "created"), ("idle", "ask"), (answer(12), "ask"),
        (events(11), "batch 11/1"), (answer(13), "-"),
        ("idle", "ask"), (answer(14), "ask"), (answer(14), "batch 14/0")]),
    ("behind the head, answers wait for an event at or after the creation revision", 5, [
        (created(10), "created"), ("idle", "ask"), (answer(12), "-"),
        (events(7), "batch 7/1"), ("idle", "ask"), (answer(12), "-"),
        (events(10), "batch 10/1"), ("idle", "ask"), (answer(12), "ask"),
        (answer(12), "batch 12/0")]),
    ("a member notification is trusted at once and proves the catch-up", 5, [
        (created(10), "created"), (notify(12), "batch 12/0"),
        ("idle", "ask"), (answer(13), "ask"), (answer(13), "batch 13/0")]),
    ("an answer on the watch itself ends the request (etcd 3.5); a late -1 is ignored", 11, [
        (created(10), "created"), ("idle", "ask"), (notify(12), "batch 12/0"),
        (answer(12), "-"), ("idle", "ask")]),
    ("events and progress already delivered are dropped", 11, [
        (created(10), "created"), (events(9, 10), "-"), (notify(10), "-"),
        (events(10, 11, 12), "batch 12/2"), (notify(12), "-"), (notify(13), "batch 13/0")]),
    ("progress that would not move forward is not delivered", 11, [
        (created(10), "created"), ("idle", "ask"), (answer(10), "ask"), (answer(10), "-")]),
    ("responses of other watches are ignored", 11, [
        (created(10), "created"), (events(11, wid=W + 1), "-"), (events(11), "batch 11/1")]),
    ("compaction and refusal cancel the watch", 2, [
        (created(10), "created"), (compacted(8), "compacted 8")]),
    ("a refused creation", 2, [(created(10, canceled=True), "cancel")]),
]


@pytest.mark.parametrize(("start", "script"), [s[1:] for s in SCENARIOS],
                         ids=[s[0] for s in SCENARIOS])
def test_scenario(start: int, script: list[tuple[Any, str]]) -> None:
    progress = WatchProgress(start)
    assert run(progress, [i for i, _ in script]) == [o for _, o in script]


def test_restart_keeps_the_position_and_forgets_the_stream() -> None:
    progress = WatchProgress(11)
    assert run(progress, [created(10), events(11, 12), "idle", answer(13)]) == [
        "created", "batch 12/2", "ask", "ask"]
    progress.restart()
    assert progress.next_revision == 13
    # the new stream was created behind the head: its answers are not trusted yet
    assert run(progress, [answer(14), created(20), "idle", answer(21)]) == [
        "-", "created", "ask", "-"]

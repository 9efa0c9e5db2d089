"""``navctl logs -l``: which containers' logs it prints, and the --prefix framing
(navarch/_navctl/podio.py)."""

from __future__ import annotations

from navarch._navctl.podio import logs_plan, prefixed
from navarch._pods import DEFAULT_CONTAINER
from navarch.v1 import core_pb2


def pod(name: str, containers: list[str], init: list[str] | None = None,
        default: str = "") -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = name
    for c in containers:
        p.spec.containers.add(name=c)
    for c in init or []:
        p.spec.init_containers.add(name=c)
    if default:
        p.metadata.annotations[DEFAULT_CONTAINER] = default
    return p


PODS = [pod("a", ["web", "sidecar"], init=["setup"]), pod("b", ["web", "sidecar"],
                                                          default="sidecar")]


def test_each_pods_default_container() -> None:
    assert logs_plan(PODS, "", False) == [("a", "web"), ("b", "sidecar")]


def test_a_named_container_in_every_pod() -> None:
    assert logs_plan(PODS, "web", False) == [("a", "web"), ("b", "web")]
    assert logs_plan(PODS, "web", True) == [("a", "web"), ("b", "web")]


def test_all_containers_init_first() -> None:
    assert logs_plan(PODS, "", True) == [("a", "setup"), ("a", "web"), ("a", "sidecar"),
                                         ("b", "web"), ("b", "sidecar")]


def test_no_pods_no_logs() -> None:
    assert logs_plan([], "", True) == []


def test_prefix_goes_before_every_line() -> None:
    assert prefixed(b"one\ntwo\n", b"[pod/a/web] ") == b"[pod/a/web] one\n[pod/a/web] two\n"
    assert prefixed(b"", b"[p] ") == b""
    assert prefixed(b"no newline", b"[p] ") == b"[p] no newline"

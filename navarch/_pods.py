"""Pod facts that both the API server and navctl need."""

from __future__ import annotations

from navarch.v1 import core_pb2

__all__ = ["DEFAULT_CONTAINER", "default_container"]

DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"


def default_container(pod: core_pb2.Pod) -> str:
    """The container logs and exec mean when none is named, as kubectl picks it: the
    default-container annotation, else the first regular container (init containers
    are only ever named explicitly)."""
    named = pod.metadata.annotations.get(DEFAULT_CONTAINER, "")
    if named:
        return named
    return pod.spec.containers[0].name if pod.spec.containers else ""

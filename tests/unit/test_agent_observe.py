"""PodSyncer.observe: a container status CRI fails to give is never taken for absent."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from cri_api.v1 import api_pb2

from node_agent import cri
from node_agent.worker import PodSyncer


class RpcError(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=code.name)


class FakeCri:
    """One sandbox with containers "a" and "b"; ``failures`` maps a container id to the
    status code its ContainerStatus call fails with."""

    def __init__(self, failures: dict[str, grpc.StatusCode]) -> None:
        self.failures = failures

    async def list_sandboxes(self, labels: dict[str, str]) -> list[Any]:
        return [api_pb2.PodSandbox(id="sb")]

    async def sandbox_status(self, sandbox_id: str) -> api_pb2.PodSandboxStatus:
        return api_pb2.PodSandboxStatus(id=sandbox_id, state=api_pb2.SANDBOX_READY)

    async def list_containers(self, labels: dict[str, str]) -> list[Any]:
        return [api_pb2.Container(id=cid, pod_sandbox_id="sb") for cid in ("a", "b")]

    async def container_status(self, container_id: str) -> api_pb2.ContainerStatus:
        if container_id in self.failures:
            raise RpcError(self.failures[container_id])
        return api_pb2.ContainerStatus(id=container_id, state=cri.RUNNING,
                                       metadata=api_pb2.ContainerMetadata(name=container_id))


def observe(failures: dict[str, grpc.StatusCode]) -> Any:
    syncer = PodSyncer(None, FakeCri(failures), None, None, None, None, None)  # type: ignore[arg-type]
    return asyncio.run(syncer.observe("uid"))


def test_every_container_is_observed() -> None:
    state = observe({})
    assert sorted(c.id for c in state.every) == ["a", "b"]
    assert set(state.containers) == {"a", "b"}


def test_a_container_removed_since_the_list_is_left_out() -> None:
    state = observe({"b": grpc.StatusCode.NOT_FOUND})
    assert [c.id for c in state.every] == ["a"]


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                  grpc.StatusCode.UNKNOWN])
def test_any_other_failure_fails_the_observation(code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        observe({"b": code})
    assert exc.value.code() == code

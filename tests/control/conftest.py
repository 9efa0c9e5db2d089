"""Fixtures for control-plane tests: one 3-member raftstore and an API server per module
(the store backend does not matter here: tests/api runs the API on both), a client, a
fresh namespace per test, and ``daemons`` to start scheduler/controllers/simnodes
processes that are all stopped when the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import client, ns  # noqa: F401 - shared fixtures
from tests.api.harness import ApiServerProcess, NavarchProcess
from tests.store.conftest import make_cluster


@pytest.fixture(scope="module")
def control_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    """An API server over a fresh 3-member raftstore, for the whole module."""
    workdir = tmp_path_factory.mktemp("control")
    cluster = make_cluster("raftstore", workdir / "store")
    proc = ApiServerProcess(cluster.endpoints, workdir / "apiserver")
    try:
        proc.start()
        yield proc
    except BaseException:
        print(proc.log_tail())
        raise
    finally:
        proc.stop()
        cluster.destroy()


@pytest.fixture(scope="module")
def apiserver(control_api: ApiServerProcess) -> ApiServerProcess:
    """The module's API server, under the name tests/api's ``client`` fixture expects."""
    return control_api


class Daemons:
    """Starts ``navarch <subcommand>`` processes against the module's API server."""

    def __init__(self, api: ApiServerProcess, workdir: Path) -> None:
        self.api = api
        self.workdir = workdir
        self.procs: list[NavarchProcess] = []

    def start(self, subcommand: str, *args: str, name: str = "",
              timeout: float = 30.0) -> NavarchProcess:
        """Start one and wait until it serves health; stopped at the end of the test."""
        proc = NavarchProcess(self.workdir, ["--server", self.api.address, *args],
                              subcommand=subcommand, name=name)
        self.procs.append(proc)
        try:
            proc.start(timeout)
        except BaseException:
            print(proc.log_tail())
            raise
        return proc

    def stop_all(self) -> None:
        """Stop every process started (SIGCONT first, in case one was paused)."""
        for proc in self.procs:
            proc.resume()
            proc.stop()


@pytest.fixture
def daemons(control_api: ApiServerProcess, tmp_path: Path) -> Iterator[Daemons]:
    """Start control-plane daemons; every one is stopped when the test ends."""
    d = Daemons(control_api, tmp_path)
    try:
        yield d
    finally:
        d.stop_all()

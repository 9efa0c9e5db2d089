"""Fixtures: the store clusters of tests/store (raftstore and etcd, picked by
NAVARCH_STORE_BACKENDS), plus one cluster per backend whose members send their own
progress notifications every half second (``notifying_store``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.cluster import StoreCluster
from tests.store.conftest import (  # noqa: F401
    BACKEND_NAMES,
    fresh_store,
    make_cluster,
    prefix,
    store,
)

NOTIFY_FLAGS = {
    "raftstore": ["--watch-progress-notify-interval", "0.5"],
    "etcd": ["--experimental-watch-progress-notify-interval", "500ms"],
}


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def notifying_store(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreCluster]:
    """A running 3-member cluster whose members notify idle watches every 0.5 s."""
    backend = request.param
    cluster = make_cluster(backend, tmp_path_factory.mktemp(f"{backend}-notify"),
                           NOTIFY_FLAGS[backend])
    yield cluster
    cluster.destroy()

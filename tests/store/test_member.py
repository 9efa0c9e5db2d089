"""One raftstore member's life: flags, data directories, damage, signals, the peer channel.

These are raftstore's own behaviours (etcd has its own flags and files), so they run
against raftstore only.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

from tests.store.cluster import REPO, RaftstoreCluster, free_ports, wait_for

pytestmark = pytest.mark.skipif(
    "raftstore" not in os.environ.get("NAVARCH_STORE_BACKENDS", "raftstore,etcd"),
    reason="raftstore backend not selected",
)


def run_store(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``navarch store`` expecting it to exit by itself (a refusal to start)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "navarch", "store", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def solo_args(data_dir: Path, *extra: str) -> list[str]:
    client, peer = free_ports(2)
    return ["--name", "s1", "--data-dir", str(data_dir), "--listen-client",
            f"127.0.0.1:{client}", "--listen-peer", f"127.0.0.1:{peer}", *extra]


def put(cluster: RaftstoreCluster, i: int, key: bytes, value: bytes) -> int:
    with cluster.channel(i) as ch:
        resp = rpc_pb2_grpc.KVStub(ch).Put(rpc_pb2.PutRequest(key=key, value=value), timeout=10)
    return int(resp.header.revision)


def get(cluster: RaftstoreCluster, i: int, key: bytes, serializable: bool = False) -> bytes | None:
    with cluster.channel(i) as ch:
        resp = rpc_pb2_grpc.KVStub(ch).Range(
            rpc_pb2.RangeRequest(key=key, serializable=serializable), timeout=10)
    return resp.kvs[0].value if resp.kvs else None


# ------------------------------------------------------------------ flags
@pytest.mark.parametrize(("extra", "flag", "says"), [
    (["--initial-cluster", "s1=127.0.0.1:1,s2=127.0.0.1:2"], "--peer-secret-file",
     "authenticate"),
    (["--initial-cluster", "s1"], "--initial-cluster", "NAME=HOST:PORT"),
    (["--initial-cluster", "s2=127.0.0.1:2"], "--initial-cluster", "no entry"),
    (["--initial-cluster", "s1=localhost:2"], "--initial-cluster", "IP address"),
    (["--initial-cluster-state", "maybe"], "--initial-cluster-state", "'new' or 'existing'"),
    (["--election-timeout", "100"], "--election-timeout", "5x"),
    (["--max-request-bytes", "10"], "--max-request-bytes", "between"),
])
def test_bad_flag_is_named(tmp_path: Path, extra: list[str], flag: str, says: str) -> None:
    result = run_store(*solo_args(tmp_path / "d", *extra))
    assert result.returncode == 2, result.stderr
    assert flag in result.stderr and says in result.stderr, result.stderr
    assert not (tmp_path / "d").exists(), "a refused start must not create the data dir"


def test_listen_address_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        (peer,) = free_ports(1)
        result = run_store("--name", "s1", "--data-dir", str(tmp_path / "d"),
                           "--listen-client", f"127.0.0.1:{port}",
                           "--listen-peer", f"127.0.0.1:{peer}")
    assert result.returncode == 1
    assert "--listen-client" in result.stderr and str(port) in result.stderr
    assert not (tmp_path / "d").exists(), "a refused start must not create the data dir"


# ------------------------------------------------------------------ data directories
def test_foreign_data_dir_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "precious.txt").write_text("not a store's")
    result = run_store(*solo_args(d))
    assert result.returncode == 1
    assert "not a raftstore member's data dir" in result.stderr
    assert sorted(p.name for p in d.iterdir()) == ["precious.txt"], "nothing was written"


@pytest.fixture
def stopped_cluster(tmp_path: Path) -> RaftstoreCluster:
    """A 3-member cluster that took writes (enough to snapshot) and was stopped."""
    cluster = RaftstoreCluster(tmp_path, extra_args=["--snapshot-count", "100"])
    cluster.start()
    try:
        for n in range(250):
            put(cluster, n % 3, b"/k/%03d" % n, b"v%d" % n)
        wait_for(lambda: any(cluster.data_dir(0).glob("raft/snap/*.snap")), 30,
                 "member 0 to write a snapshot")
    finally:
        cluster.stop()
    yield cluster
    cluster.destroy()


def test_data_dir_of_another_member_is_refused(stopped_cluster: RaftstoreCluster) -> None:
    cmd = stopped_cluster.member_command(1)
    cmd[cmd.index("--data-dir") + 1] = str(stopped_cluster.data_dir(0))
    result = subprocess.run(cmd, env=stopped_cluster.member_env(), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 1
    assert "belongs to a member with name 's1'" in result.stderr


def _only(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    assert found, f"no {pattern} in {directory}"
    return found[-1]


@pytest.mark.parametrize(("target", "damage", "says"), [
    ("raft/wal/*.wal", "flip-middle", ".wal"),
    ("raft/wal/*.wal", "header", ".wal"),
    ("raft/snap/*.snap", "flip-middle", ".snap"),
    ("member.json", "truncate", "damaged"),
])
def test_damaged_data_dir_stops_member(stopped_cluster: RaftstoreCluster, target: str,
                                       damage: str, says: str) -> None:
    path = _only(stopped_cluster.data_dir(0), target)
    data = bytearray(path.read_bytes())
    if damage == "flip-middle":
        mid = len(data) // 2
        data[mid:mid + 8] = bytes(b ^ 0xFF for b in data[mid:mid + 8])
    elif damage == "header":
        data[4:8] = bytes(b ^ 0xFF for b in data[4:8])  # the first record's checksum
    else:
        data = data[: len(data) // 3]
    path.write_bytes(bytes(data))
    result = subprocess.run(stopped_cluster.member_command(0), env=stopped_cluster.member_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert says in result.stderr, result.stderr[-2000:]
    assert "navarch store:" in result.stderr


def test_restart_after_snapshot_keeps_everything(stopped_cluster: RaftstoreCluster) -> None:
    stopped_cluster.start()
    for n in (0, 137, 249):
        assert get(stopped_cluster, n % 3, b"/k/%03d" % n) == b"v%d" % n


# ------------------------------------------------------------------ signals
def test_sigterm_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    cluster = RaftstoreCluster(tmp_path)
    cluster.start()
    try:
        rev = put(cluster, 0, b"/sigterm", b"kept")
        proc = cluster.procs[2]
        assert proc is not None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        cluster.restart_member(2)
        wait_for(lambda: get(cluster, 2, b"/sigterm", serializable=True) == b"kept", 20,
                 "the restarted member to serve the write")
        assert put(cluster, 2, b"/sigterm2", b"x") > rev
    finally:
        cluster.destroy()


# ------------------------------------------------------------------ the peer channel
class _Evil:
    """Unpickling this creates a file: proof that a pickle was executed."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def _send_raw_pickle(port: int, payload: object) -> None:
    data = zlib.compress(pickle.dumps(payload), 3)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack("i", len(data)) + data)
        s.settimeout(2)
        try:
            s.recv(1024)
        except (TimeoutError, ConnectionError):
            pass


def test_unauthenticated_peer_cannot_run_a_pickle(tmp_path: Path) -> None:
    # Control: the payload is live - unpickling it creates the file.
    control_file = tmp_path / "control-pwned"
    pickle.loads(pickle.dumps(_Evil(str(control_file))))
    assert control_file.exists()

    cluster = RaftstoreCluster(tmp_path / "c")
    cluster.start()
    try:
        target = tmp_path / "pwned"
        for port in cluster.peer_ports:
            _send_raw_pickle(port, _Evil(str(target)))
        # every member still serves, and the pickle never ran
        for i in range(3):
            put(cluster, i, b"/after-attack/%d" % i, b"ok")
        assert not target.exists()
    finally:
        cluster.destroy()


def test_member_with_wrong_secret_gets_nothing(tmp_path: Path) -> None:
    cluster = RaftstoreCluster(tmp_path)
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("x" * 40)
    cmd2 = cluster.member_command(2)
    cmd2[cmd2.index("--peer-secret-file") + 1] = str(wrong)
    cluster.member_command = lambda i, _orig=cluster.member_command: (  # type: ignore[method-assign]
        cmd2 if i == 2 else _orig(i))
    for i in range(3):
        cluster.start_member(i)
    try:
        for i in (0, 1):
            cluster.wait_member(i)
        leader = cluster.wait_leader()
        assert leader in (0, 1)
        put(cluster, leader, b"/secret", b"only for members")
        # the impostor never learns the write: it cannot even find a leader
        with pytest.raises(grpc.RpcError):
            with cluster.channel(2) as ch:
                rpc_pb2_grpc.KVStub(ch).Range(rpc_pb2.RangeRequest(key=b"/secret"), timeout=3)
    finally:
        cluster.destroy()


# ------------------------------------------------------------------ membership
def test_member_add_then_remove(tmp_path: Path) -> None:
    cluster = RaftstoreCluster(tmp_path)
    cluster.start()
    joiner: subprocess.Popen[bytes] | None = None
    try:
        for n in range(50):
            put(cluster, n % 3, b"/before-join/%02d" % n, b"v")
        client_port, peer_port = free_ports(2)
        peer = f"127.0.0.1:{peer_port}"
        with cluster.channel(0) as ch:
            added = rpc_pb2_grpc.ClusterStub(ch).MemberAdd(
                rpc_pb2.MemberAddRequest(peerURLs=[f"http://{peer}"]), timeout=20)
        assert f"http://{peer}" in added.member.peerURLs
        assert len(added.members) == 4

        cmd = cluster.member_command(0)
        cmd[cmd.index("--name") + 1] = "s4"
        cmd[cmd.index("--data-dir") + 1] = str(tmp_path / "s4.data")
        cmd[cmd.index("--listen-client") + 1] = f"127.0.0.1:{client_port}"
        cmd[cmd.index("--listen-peer") + 1] = peer
        cmd[cmd.index("--initial-cluster") + 1] = cluster.initial_cluster() + f",s4={peer}"
        cmd += ["--initial-cluster-state", "existing"]
        with open(tmp_path / "s4.log", "wb") as log:
            joiner = subprocess.Popen(cmd, env=cluster.member_env(), stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)

        def joined_and_caught_up() -> bool:
            with grpc.insecure_channel(f"127.0.0.1:{client_port}") as ch:
                kv = rpc_pb2_grpc.KVStub(ch)
                got = kv.Range(rpc_pb2.RangeRequest(key=b"/before-join/49", serializable=True),
                               timeout=2)
                return bool(got.kvs)
        wait_for(joined_and_caught_up, 60, "the new member to catch up")

        def member_list() -> list[rpc_pb2.Member]:
            with cluster.channel(1) as ch:
                return list(rpc_pb2_grpc.ClusterStub(ch).MemberList(
                    rpc_pb2.MemberListRequest(), timeout=10).members)

        # MemberList is served from the member's own state (as etcd 3.4): s2 shows s4's
        # name once it has applied s4's publish
        members = wait_for(
            lambda: (ms := member_list()) and sorted(m.name for m in ms) == [
                "s1", "s2", "s3", "s4"] and ms, 30, "s4 to appear by name in MemberList")
        new_id = next(m.ID for m in members if m.name == "s4")

        # the new member takes writes (forwarded to the leader) and serves them
        with grpc.insecure_channel(f"127.0.0.1:{client_port}") as ch:
            rpc_pb2_grpc.KVStub(ch).Put(rpc_pb2.PutRequest(key=b"/via-s4", value=b"x"),
                                        timeout=10)
        assert get(cluster, 2, b"/via-s4") == b"x"

        with cluster.channel(0) as ch:
            left = rpc_pb2_grpc.ClusterStub(ch).MemberRemove(
                rpc_pb2.MemberRemoveRequest(ID=new_id), timeout=20)
        assert sorted(m.ID for m in left.members) == sorted(
            m.ID for m in members if m.ID != new_id)
        put(cluster, 1, b"/after-remove", b"ok")  # three members still form a quorum
        assert get(cluster, 0, b"/after-remove") == b"ok"
    finally:
        if joiner is not None:
            joiner.kill()
            joiner.wait(timeout=10)
        cluster.destroy()


def test_member_add_rejects_bad_urls(store_cluster_for_errors: RaftstoreCluster) -> None:
    with store_cluster_for_errors.channel(0) as ch:
        stub = rpc_pb2_grpc.ClusterStub(ch)
        for urls in (["http://not-an-ip:1"], ["http://127.0.0.1:1", "http://127.0.0.1:2"], []):
            with pytest.raises(grpc.RpcError) as e:
                stub.MemberAdd(rpc_pb2.MemberAddRequest(peerURLs=urls), timeout=10)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "member URLs are invalid" in (e.value.details() or "")
        with pytest.raises(grpc.RpcError) as e:
            stub.MemberRemove(rpc_pb2.MemberRemoveRequest(ID=12345), timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        members = stub.MemberList(rpc_pb2.MemberListRequest(), timeout=10).members
        assert len(members) == 3


@pytest.fixture
def store_cluster_for_errors(tmp_path: Path) -> Iterator[RaftstoreCluster]:
    cluster = RaftstoreCluster(tmp_path)
    cluster.start()
    yield cluster
    cluster.destroy()

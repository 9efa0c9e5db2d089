"""Crashes: kill -9 of the leader, of a follower, of every member, while clients write.

Each test gets a new 3-member cluster (``fresh_store``) and talks to it through raw
``grpc.aio`` stubs, one channel per member (or per client), so that which member a
request goes to, and what counts as an answer, is up to the test. Cluster actions that
block (kill, restart, waiting for a leader) run in threads so writers keep writing.

What the tests hold the store to:

- a write the store acknowledged survives any crash of any minority or of everyone;
- after the leader dies, a new one is elected within 3 s (election timeout 1 s);
- a restarted member catches up: its serializable reads return what was written;
- revisions are never reused after a full restart;
- under crashes, the history of linearizable reads, puts and compare-and-swaps that
  clients observed is linearizable (tests/store/linearizability.py).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from typing import Any, TypeVar

import grpc
import pytest
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

from tests.store.cluster import StoreCluster
from tests.store.etcd_api import EtcdApi, op_put, prefix_end
from tests.store.linearizability import (
    UNKNOWN,
    Operation,
    RevisionedRegister,
    check_per_key,
    revision_conflicts,
)

pytestmark = pytest.mark.slow

T = TypeVar("T")

OP_TIMEOUT = 2.0
"""Deadline of one client request, seconds. Past it, a write's outcome is unknown."""

ELECTION_LIMIT = 3.0
"""Raftstore must elect a new leader within this many seconds of the old one's death (the
issue's line). Etcd, the reference, is only timed: with its defaults (1 s election
timeout, pre-vote, check-quorum) an election after a leader's death took 4.55 s once in
CI, within etcd's own design, and its figure is not ours to hold."""

CATCH_UP_TIMEOUT = 20.0
"""How long a restarted member may take to serve everything written, seconds."""

# Reconnect quickly once a killed member is back (gRPC's default backoff grows to 120 s).
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
)


# -- clients ------------------------------------------------------------------------------


@asynccontextmanager
async def member_api(endpoint: str) -> AsyncIterator[EtcdApi]:
    """An :class:`EtcdApi` on its own channel to one member; requests are never retried
    or redirected elsewhere, and every call here passes its own deadline."""
    channel = grpc.aio.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
    try:
        yield EtcdApi(
            endpoint=endpoint, channel=channel,
            kv=rpc_pb2_grpc.KVStub(channel), lease=rpc_pb2_grpc.LeaseStub(channel),
            cluster=rpc_pb2_grpc.ClusterStub(channel),
            maintenance=rpc_pb2_grpc.MaintenanceStub(channel), auth=rpc_pb2_grpc.AuthStub(channel),
        )
    finally:
        await channel.close()


@asynccontextmanager
async def member_apis(endpoints: list[str]) -> AsyncIterator[list[EtcdApi]]:
    """One :func:`member_api` per endpoint, in order, all closed on exit."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(member_api(e)) for e in endpoints]


async def wait_ready(api: EtcdApi, within: float) -> bool:
    """Wait until the channel to ``api`` is connected (the member is up); False on timeout."""
    try:
        await asyncio.wait_for(api.channel.channel_ready(), within)
    except TimeoutError:
        return False
    return True


async def wait_for_leader(api: EtcdApi, within: float) -> bool:
    """Wait until ``api``'s member is up and names a leader in Status; False on timeout.

    A client waits so after a failed request rather than resend at once: a member with
    no leader may refuse requests instantly, and each refused write would be one more
    operation of unknown outcome.
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            status = await api.maintenance.Status(rpc_pb2.StatusRequest(), timeout=0.5)
        except grpc.aio.AioRpcError:
            await wait_ready(api, max(0.0, min(0.5, deadline - time.monotonic())))
            continue
        if status.leader:
            return True
        await asyncio.sleep(0.05)
    return False


async def put(api: EtcdApi, key: bytes, value: bytes) -> int:
    """Put; the revision it made (the key's new mod_revision)."""
    resp = await api.kv.Put(rpc_pb2.PutRequest(key=key, value=value), timeout=OP_TIMEOUT)
    return int(resp.header.revision)


async def read(api: EtcdApi, key: bytes, serializable: bool = False) -> tuple[bytes | None, int]:
    """(value, mod_revision) of ``key``; (None, 0) when absent. Linearizable by default."""
    resp = await api.kv.Range(rpc_pb2.RangeRequest(key=key, serializable=serializable),
                              timeout=OP_TIMEOUT)
    if not resp.kvs:
        return None, 0
    return resp.kvs[0].value, int(resp.kvs[0].mod_revision)


async def read_prefix(api: EtcdApi, prefix: bytes, serializable: bool
                      ) -> dict[bytes, tuple[bytes, int]]:
    """key -> (value, mod_revision) for every key under ``prefix``."""
    resp = await api.kv.Range(rpc_pb2.RangeRequest(
        key=prefix, range_end=prefix_end(prefix), serializable=serializable), timeout=OP_TIMEOUT)
    return {kv.key: (kv.value, int(kv.mod_revision)) for kv in resp.kvs}


async def cas(api: EtcdApi, key: bytes, target: str, expected: Any, new: bytes
              ) -> tuple[bool, int | None]:
    """Txn: put ``new`` if the key's value (or mod_revision) equals ``expected``.
    (succeeded, revision of the put or None)."""
    if target == "value":
        compare = rpc_pb2.Compare(key=key, target=rpc_pb2.Compare.VALUE,
                                  result=rpc_pb2.Compare.EQUAL, value=expected)
    else:
        compare = rpc_pb2.Compare(key=key, target=rpc_pb2.Compare.MOD,
                                  result=rpc_pb2.Compare.EQUAL, mod_revision=expected)
    resp = await api.kv.Txn(rpc_pb2.TxnRequest(compare=[compare], success=[op_put(key, new)]),
                            timeout=OP_TIMEOUT)
    return bool(resp.succeeded), (int(resp.header.revision) if resp.succeeded else None)


async def eventually(probe: Callable[[], Awaitable[T | None]], within: float, what: str,
                     interval: float = 0.05) -> T:
    """Await ``probe()`` until it returns a truthy value; RPC errors count as "not yet".
    Fail naming ``what`` (and the last error) after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: BaseException | None = None
    while True:
        try:
            value = await probe()
            if value:
                return value
        except grpc.aio.AioRpcError as e:
            last = e
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}; last error: {last!r}")
        await asyncio.sleep(interval)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking cluster action without stopping the event loop."""
    return await asyncio.to_thread(fn, *args)


# -- an acknowledged-writes recorder -------------------------------------------------------


class AckedWriter:
    """Puts new keys ``prefix + n`` one after another and records the acknowledged ones.

    ``acked`` maps key -> (value, revision) for every put the store answered; ``attempted``
    holds every key sent (an unanswered one may or may not exist). On an error the writer
    moves to the next of its members, once that one is up with a leader (or after
    :data:`OP_TIMEOUT`).
    """

    def __init__(self, apis: list[EtcdApi], prefix: bytes) -> None:
        self.apis = apis
        self.prefix = prefix
        self.acked: dict[bytes, tuple[bytes, int]] = {}
        self.attempted: set[bytes] = set()
        self.errors = 0
        self._target = 0
        self._stop = asyncio.Event()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[AckedWriter]:
        """Write in the background for the duration of the block."""
        self._task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            self._stop.set()
            await self._task

    async def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            key, value = self.prefix + b"%06d" % n, b"value-%d" % n
            n += 1
            self.attempted.add(key)
            api = self.apis[self._target]
            try:
                rev = await put(api, key, value)
            except grpc.aio.AioRpcError:
                self.errors += 1
                self._target = (self._target + 1) % len(self.apis)
                await wait_for_leader(self.apis[self._target], OP_TIMEOUT)
                continue
            async with self._changed:
                self.acked[key] = (value, rev)
                self._changed.notify_all()

    async def wait_acked(self, count: int, within: float, what: str) -> None:
        """Wait until ``count`` puts in all were acknowledged; fail naming ``what``."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(self.acked) >= count), within)
            except TimeoutError:
                pytest.fail(f"{what}: only {len(self.acked)} of {count} puts acknowledged "
                            f"within {within}s ({self.errors} errors)")

    async def more(self, n: int, within: float, what: str) -> None:
        """Wait for ``n`` more acknowledged puts."""
        await self.wait_acked(len(self.acked) + n, within, what)


async def assert_serves(api: EtcdApi, prefix: bytes, acked: dict[bytes, tuple[bytes, int]],
                        what: str, serializable: bool = True,
                        within: float = CATCH_UP_TIMEOUT) -> dict[bytes, tuple[bytes, int]]:
    """Wait until ``api``'s member serves every acknowledged write under ``prefix`` with
    its value and revision; fail listing what is missing. Returns what it read."""
    async def complete() -> dict[bytes, tuple[bytes, int]] | None:
        seen = await read_prefix(api, prefix, serializable)
        return seen if all(seen.get(k) == v for k, v in acked.items()) else None

    try:
        return await eventually(complete, within, what)
    except pytest.fail.Exception:
        seen = await read_prefix(api, prefix, serializable)
        wrong = {k: (v, seen.get(k)) for k, v in acked.items() if seen.get(k) != v}
        sample = dict(list(wrong.items())[:5])
        pytest.fail(f"{what}: {len(wrong)} of {len(acked)} acknowledged writes missing or "
                    f"different on {api.endpoint}, e.g. (acked, served): {sample}")


async def member_ids(apis: list[EtcdApi]) -> list[int]:
    """Each member's id, from its Status header, in member order."""
    return [int((await api.maintenance.Status(rpc_pb2.StatusRequest(), timeout=OP_TIMEOUT))
                .header.member_id) for api in apis]


async def wait_new_leader(apis: list[EtcdApi], survivors: list[int], old_id: int,
                          ids: list[int], within: float) -> int:
    """Poll Status of the survivors until one names a leader other than ``old_id``;
    return that leader's index."""
    async def status(i: int) -> rpc_pb2.StatusResponse | None:
        try:
            return await apis[i].maintenance.Status(rpc_pb2.StatusRequest(), timeout=0.5)
        except grpc.aio.AioRpcError:
            return None

    async def elected() -> int | None:
        for st in await asyncio.gather(*(status(i) for i in survivors)):
            if st is not None and st.leader not in (0, old_id) and st.leader in ids:
                return ids.index(st.leader) + 1  # truthy for member 0
        return None

    return await eventually(elected, within, "a new leader", interval=0.02) - 1


@contextmanager
def figures(record_property: Callable[[str, object], None], backend: str) -> Iterator[
        dict[str, float]]:
    """Collect measured figures; on exit (pass or fail) print them and attach them to the
    test report."""
    values: dict[str, float] = {}
    try:
        yield values
    finally:
        for name, value in values.items():
            record_property(name, value)
        print(f"[{backend}] " + ", ".join(f"{k}={v:.3f}" for k, v in values.items()))


# -- tests ---------------------------------------------------------------------------------


async def test_leader_kill_elects_a_new_leader_and_the_old_one_catches_up(
        fresh_store: StoreCluster, prefix: bytes,
        record_property: Callable[[str, object], None]) -> None:
    cluster = fresh_store
    leader = await in_thread(cluster.wait_leader, 15.0)
    survivors = [i for i in range(cluster.size) if i != leader]
    with figures(record_property, cluster.backend) as fig:
        async with member_apis(cluster.endpoints) as apis:
            ids = await member_ids(apis)
            writer = AckedWriter([apis[survivors[0]]], prefix)
            async with writer.running():
                await writer.more(20, 10.0, "writes through a follower before the kill")
                killed_at = time.monotonic()
                await in_thread(cluster.kill, leader)
                new_leader = await wait_new_leader(apis, survivors, ids[leader], ids, 10.0)
                fig["election_s"] = time.monotonic() - killed_at
                await writer.more(20, 10.0, "writes after the election")
                fig["write_gap_s"] = time.monotonic() - killed_at
            assert new_leader in survivors
            if cluster.backend == "raftstore":
                assert fig["election_s"] < ELECTION_LIMIT, (
                    f"new leader elected {fig['election_s']:.2f}s after the leader was killed")

            await in_thread(cluster.restart_member, leader)
            latest = prefix + b"latest"
            rev = await put(apis[survivors[0]], latest, b"after-restart")
            acked = {**writer.acked, latest: (b"after-restart", rev)}
            restarted_at = time.monotonic()
            await assert_serves(apis[leader], prefix, acked,
                                "the restarted old leader catching up")
            fig["catch_up_s"] = time.monotonic() - restarted_at
            for i in survivors:
                await assert_serves(apis[i], prefix, acked, "a survivor", within=5.0)


async def test_no_acknowledged_write_is_lost_across_leader_crashes(
        fresh_store: StoreCluster, prefix: bytes) -> None:
    cluster = fresh_store
    rounds = 3
    async with member_apis(cluster.endpoints) as apis:
        writer = AckedWriter(apis, prefix)
        async with writer.running():
            for r in range(rounds):
                await writer.more(15, 15.0, f"round {r}: writes before the kill")
                leader = await in_thread(cluster.wait_leader, 15.0)
                await in_thread(cluster.kill, leader)
                await in_thread(cluster.wait_leader, 15.0, leader)
                await writer.more(15, 15.0, f"round {r}: writes with the old leader down")
                await in_thread(cluster.restart_member, leader)
            await writer.more(15, 15.0, "writes after the last restart")
        for i, api in enumerate(apis):
            seen = await assert_serves(api, prefix, writer.acked,
                                       f"member {cluster.names[i]} after {rounds} leader crashes")
            phantoms = set(seen) - writer.attempted
            assert not phantoms, f"keys nobody wrote: {sorted(phantoms)[:5]}"


async def test_full_cluster_kill_keeps_acknowledged_writes_and_revisions(
        fresh_store: StoreCluster, prefix: bytes) -> None:
    cluster = fresh_store
    async with member_apis(cluster.endpoints) as apis:
        writer = AckedWriter(apis, prefix)
        async with writer.running():
            await writer.more(100, 30.0, "writes before the full kill")
            await in_thread(cluster.kill_all)  # while a put is in flight
        acked = writer.acked
        highest = max(rev for _, rev in acked.values())

        await in_thread(cluster.start, 30.0)
        leader = await in_thread(cluster.wait_leader, 15.0)
        seen = await assert_serves(apis[leader], prefix, acked, "after a full restart",
                                   serializable=False, within=10.0)
        assert set(seen) <= writer.attempted
        assert len({rev for _, rev in seen.values()}) == len(seen), "a revision made twice"

        rev = await eventually(lambda: put(apis[leader], prefix + b"after", b"x"), 10.0,
                               "a put after the restart")
        assert rev > highest, f"new put got revision {rev}, not above acknowledged {highest}"
        for i, api in enumerate(apis):
            await assert_serves(api, prefix, {**acked, prefix + b"after": (b"x", rev)},
                                f"member {cluster.names[i]} after the full restart")


async def test_killed_follower_rejoins_and_catches_up(
        fresh_store: StoreCluster, prefix: bytes) -> None:
    cluster = fresh_store
    leader = await in_thread(cluster.wait_leader, 15.0)
    follower = (leader + 1) % cluster.size
    async with member_apis(cluster.endpoints) as apis:
        before = {prefix + b"before": (b"b", await put(apis[leader], prefix + b"before", b"b"))}
        await assert_serves(apis[follower], prefix, before, "the follower before the kill")
        await in_thread(cluster.kill, follower)

        acked = dict(before)
        for batch in range(10):
            keys = [prefix + b"down-%03d" % (batch * 10 + j) for j in range(10)]
            revs = await asyncio.gather(*(put(apis[leader], k, k[-3:]) for k in keys))
            acked.update({k: (k[-3:], rev) for k, rev in zip(keys, revs, strict=True)})
        assert not cluster.is_running(follower)

        await in_thread(cluster.restart_member, follower)
        await assert_serves(apis[follower], prefix, acked, "the restarted follower")
        rev = await put(apis[follower], prefix + b"via-follower", b"f")
        acked[prefix + b"via-follower"] = (b"f", rev)
        for api in apis:
            await assert_serves(api, prefix, acked, "every member", within=5.0)


# -- concurrent workload under crashes, checked for linearizability -------------------------


class Progress:
    """A count of completed operations that a nemesis can wait on."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Condition()

    async def add(self) -> None:
        async with self._changed:
            self.count += 1
            self._changed.notify_all()

    async def more(self, n: int, within: float, what: str) -> None:
        target = self.count + n
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.count >= target),
                                       within)
            except TimeoutError:
                pytest.fail(f"{what}: only {self.count} of {target} operations completed "
                            f"within {within}s")


class Allowance:
    """How many more operations the clients may start: the nemesis grants some for each
    phase, so that the history stays small enough to check however fast the store is,
    and no phase finds the clients done before it (a fixed number per client did, once
    the store got faster than the kills and restarts)."""

    def __init__(self) -> None:
        self._left = 0
        self._closed = False
        self._changed = asyncio.Condition()

    async def grant(self, n: int) -> None:
        async with self._changed:
            self._left += n
            self._changed.notify_all()

    async def close(self) -> None:
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    async def take(self) -> bool:
        """Wait for one operation's allowance; False once closed."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._left > 0 or self._closed)
            if self._closed:
                return False
            self._left -= 1
            return True


async def workload_client(client: int, api: EtcdApi, keys: list[bytes], rng: random.Random,
                          history: list[Operation], progress: Progress, stop: asyncio.Event,
                          allowance: Allowance) -> None:
    """Random linearizable reads, puts and compare-and-swaps on ``keys``, one at a time,
    as long as ``allowance`` lets it.

    Records each as an Operation: a write that failed in any way has an unknown outcome
    (it may have been applied); a failed read is dropped (it changed nothing). After a
    failure the client waits for its member to be up with a leader again.
    """
    seen: dict[bytes, tuple[bytes | None, int]] = {}  # the client's last view of each key
    for n in itertools.count():
        if stop.is_set() or not await allowance.take():
            return
        key = rng.choice(keys)
        value = b"c%d-%d" % (client, n)
        kind = rng.choices(["read", "write", "cas"], [4, 3, 3])[0]
        cur_value, cur_rev = seen.get(key, (None, 0))
        if kind == "read":
            op_in: Any = None
            request: Awaitable[Any] = read(api, key)
        elif kind == "write":
            op_in, request = value, put(api, key, value)
        elif cur_value is not None and rng.random() < 0.5:
            op_in = ("value", cur_value, value)
            request = cas(api, key, "value", cur_value, value)
        else:
            op_in = ("mod_revision", cur_rev, value)
            request = cas(api, key, "mod_revision", cur_rev, value)
        call = time.monotonic()
        try:
            out = await request
        except grpc.aio.AioRpcError:
            if kind != "read":
                history.append(Operation(client, kind, op_in, None, call, UNKNOWN, key))
            while not stop.is_set() and not await wait_for_leader(api, 0.5):
                pass
            continue
        ret = time.monotonic()
        history.append(Operation(client, kind, op_in, out, call, ret, key))
        if kind == "read":
            seen[key] = out
        elif kind == "write":
            seen[key] = (value, out)
        elif out[0]:
            seen[key] = (value, out[1])
        await progress.add()


async def test_concurrent_workload_under_crashes_is_linearizable(
        fresh_store: StoreCluster, prefix: bytes,
        record_property: Callable[[str, object], None]) -> None:
    cluster = fresh_store
    clients = 5
    # operations the clients may start before each kill, while the victim is down, and
    # after the last restart: at most 4 * (600 + 450) + 600 = 4800 in all
    before_kill, while_down, at_end = 600, 450, 600
    keys = [prefix + b"k%d" % k for k in range(3)]
    rng = random.Random(20240611)
    history: list[Operation] = []
    progress = Progress()
    allowance = Allowance()
    stop = asyncio.Event()
    victims = ["leader", "follower", "leader", "leader"]
    started = time.monotonic()
    with figures(record_property, cluster.backend) as fig:
        # Client c talks to member c % 3 only, over its own channel.
        pinned_to = [cluster.endpoints[c % cluster.size] for c in range(clients)]
        async with asyncio.timeout(50), member_apis(pinned_to) as pinned:
            workers = [asyncio.create_task(workload_client(
                c, pinned[c], keys, random.Random(rng.random()), history, progress, stop,
                allowance)) for c in range(clients)]
            try:
                for victim in victims:
                    await allowance.grant(before_kill)
                    await progress.more(100, 15.0, f"operations before killing the {victim}")
                    leader = await in_thread(cluster.wait_leader, 15.0)
                    target = leader if victim == "leader" else (leader + rng.randint(1, 2)) % 3
                    await in_thread(cluster.kill, target)
                    await allowance.grant(while_down)
                    await progress.more(80, 15.0, f"operations with the {victim} down")
                    await in_thread(cluster.restart_member, target)
                await allowance.grant(at_end)
                await progress.more(100, 15.0, "operations after the last restart")
            finally:
                stop.set()
                await allowance.close()
                await asyncio.gather(*workers)
        fig["workload_s"] = time.monotonic() - started
        fig["operations"] = len(history)
        fig["unknown_outcomes"] = sum(op.unknown for op in history)

        assert len(history) >= 200, f"only {len(history)} operations"
        assert {op.op for op in history if not op.unknown} == {"read", "write", "cas"}
        assert any(op.op == "cas" and not op.unknown and op.output[0] for op in history)
        assert revision_conflicts(history) == []
        checked_at = time.monotonic()
        result = check_per_key(history, RevisionedRegister.for_history(history),
                               max_steps=5_000_000)
        fig["check_s"] = time.monotonic() - checked_at
        assert result.ok, result.explain()

"""The Raft peer transport (``raftstore.raft.transport``) over real TCP on 127.0.0.1.

Delivery: two and three transports exchange messages (entries, a snapshot of a few MiB)
in order; a restarted peer is reached again; a full queue drops and counts.
Security: a wrong secret or cluster token, raw clients sending pickles/msgpack/garbage,
a replayed handshake, a misaddressed peer and a tampered frame (a proxy flips one byte)
all end in a closed connection, nothing delivered, a counted failure, and the listener
still serving the others. Lifecycle: ``stop()`` leaves no task behind.
The last test measures throughput (printed, not asserted).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import pickle
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest
from structlog.testing import capture_logs

from raftstore.raft import transport as transport_mod
from raftstore.raft.transport import PROTOCOL_VERSION, PeerTransport
from raftstore.raft.types import (
    ClusterConfig,
    Entry,
    EntryKind,
    Message,
    MsgType,
    Snapshot,
    SnapshotMeta,
)

pytestmark = pytest.mark.timeout(60)

SECRET = b"correct horse battery staple 0123456789"
TOKEN = "transport-test-cluster"
HOST = "127.0.0.1"


# ------------------------------------------------------------------ helpers
def app(frm: int, to: int, i: int, size: int = 16) -> Message:
    """An AppendEntries carrying one entry; ``i`` makes each message distinct."""
    return Message(MsgType.APP, to=to, frm=frm, term=3, log_term=2, index=i,
                   entries=[Entry(i + 1, 3, EntryKind.NORMAL, i.to_bytes(8, "big") * (size // 8))],
                   commit=i)


def snap(frm: int, to: int, size: int) -> Message:
    conf = ClusterConfig(((1, f"{HOST}:1"), (2, f"{HOST}:2"), (3, f"{HOST}:3")))
    return Message(MsgType.SNAP, to=to, frm=frm, term=4,
                   snapshot=Snapshot(SnapshotMeta(900, 4, conf), os.urandom(size)))


async def eventually(cond: Callable[[], bool], within: float = 10.0, what: str = "") -> None:
    """Poll ``cond`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.005)


class Inbox:
    """``on_message`` for a test transport: records messages, wakes waiters."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._changed = asyncio.Event()

    def __call__(self, m: Message) -> None:
        self.messages.append(m)
        self._changed.set()

    async def wait_for(self, n: int, within: float = 10.0) -> list[Message]:
        async with asyncio.timeout(within):
            while len(self.messages) < n:
                self._changed.clear()
                await self._changed.wait()
        return self.messages

    def frm(self, node: int) -> list[Message]:
        return [m for m in self.messages if m.frm == node]


@dataclass
class Node:
    id: int
    t: PeerTransport
    inbox: Inbox

    @property
    def addr(self) -> str:
        host, port = self.t.address
        return f"{host}:{port}"


class Net:
    """Creates started transports and stops them all at the end of the test."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []

    async def node(self, node_id: int, *, port: int = 0, secret: bytes = SECRET,
                   token: str = TOKEN, on_message: Callable[[Message], None] | None = None,
                   **kw: Any) -> Node:
        inbox = Inbox()
        t = PeerTransport(node_id, (HOST, port), secret, token, on_message or inbox, **kw)
        await t.start()
        n = Node(node_id, t, inbox)
        self.nodes.append(n)
        return n

    @staticmethod
    def mesh(*nodes: Node) -> None:
        for n in nodes:
            n.t.set_peers({o.id: o.addr for o in nodes})

    async def close(self) -> None:
        for n in self.nodes:
            await n.t.stop()


@pytest.fixture
async def net() -> Any:
    """Started transports, stopped at the end; fails the test if the event loop reported
    an error (an exception in a callback, a task's exception never retrieved)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    n = Net()
    yield n
    await n.close()
    await asyncio.sleep(0.01)  # let connection_lost callbacks run
    loop.set_exception_handler(None)
    assert errors == []


class Proxy:
    """A TCP proxy in front of a listener. Records what each dialer sent, and can flip
    one byte of the dialer->listener stream of the current connection at ``flip_at``."""

    def __init__(self, target: Node) -> None:
        self.target = target
        self.recorded: list[bytearray] = []
        self.flip_at: int | None = None
        self.mask = 0x80
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, HOST, 0)
        return f"{HOST}:{self._server.sockets[0].getsockname()[1]}"

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        host, port = self.target.t.address
        try:
            sr, sw = await asyncio.open_connection(host, port)
        except OSError:
            cw.close()
            return
        rec = bytearray()
        self.recorded.append(rec)

        def tamper(data: bytes) -> bytes:
            start = len(rec)
            rec.extend(data)
            at = self.flip_at
            if rec is self.recorded[-1] and at is not None and start <= at < len(rec):
                self.flip_at = None
                b = bytearray(data)
                b[at - start] ^= self.mask
                return bytes(b)
            return data

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter,
                       f: Callable[[bytes], bytes]) -> None:
            with contextlib.suppress(OSError):
                while data := await r.read(65536):
                    w.write(f(data))
                    await w.drain()
            w.close()

        try:
            await asyncio.gather(pipe(cr, sw, tamper), pipe(sr, cw, lambda d: d))
        except asyncio.CancelledError:
            pass  # close() cancels; a cancelled start_server handler trips Python 3.11
        finally:
            cw.transport.abort()
            sw.transport.abort()
            self._tasks.discard(task)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def read_until_closed(reader: asyncio.StreamReader, within: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    async with asyncio.timeout(within):
        with contextlib.suppress(ConnectionResetError):
            while data := await reader.read(65536):
                out += data
    return out


# ------------------------------------------------------------------ delivery
async def test_two_transports_exchange_messages_in_order(net: Net) -> None:
    a, b = await net.node(1), await net.node(2)
    net.mesh(a, b)
    to_b = [app(1, 2, i) for i in range(2000)]
    to_a = [app(2, 1, i, size=64) for i in range(500)]
    for i in range(0, 2000, 100):  # several batches, interleaved with the other direction
        a.t.send(to_b[i:i + 100])
        b.t.send(to_a[i // 4:i // 4 + 25])
        await asyncio.sleep(0)
    assert await b.inbox.wait_for(2000) == to_b
    assert await a.inbox.wait_for(500) == to_a
    assert a.t.connected(2) and b.t.connected(1)
    assert a.t.stats["sent"] == 2000 and b.t.stats["received"] == 2000
    assert a.t.stats["dropped"] == 0 and b.t.stats["bad_frames"] == 0


async def test_three_transports_with_entries_and_a_snapshot(net: Net) -> None:
    a, b, c = await net.node(1), await net.node(2), await net.node(3)
    net.mesh(a, b, c)
    big = snap(1, 2, 3 * 1024 * 1024 + 17)
    to_b = [app(1, 2, i, size=1024) for i in range(50)] + [big] + [app(1, 2, i) for i in range(50)]
    to_c = [snap(1, 3, 5 * 1024 * 1024)] + [app(1, 3, i) for i in range(100)]
    b_to_c = [app(2, 3, i) for i in range(100)]
    a.t.send(to_b[:60])
    a.t.send(to_c)
    b.t.send(b_to_c)
    a.t.send(to_b[60:])
    await b.inbox.wait_for(len(to_b))
    await c.inbox.wait_for(len(to_c) + len(b_to_c))
    assert b.inbox.messages == to_b
    assert c.inbox.frm(1) == to_c and c.inbox.frm(2) == b_to_c
    assert a.inbox.messages == []


async def test_restarted_peer_gets_messages_after_reconnect(net: Net) -> None:
    a, b = await net.node(1), await net.node(2)
    net.mesh(a, b)
    a.t.send([app(1, 2, 0)])
    await b.inbox.wait_for(1)
    port = b.t.address[1]
    await b.t.stop()
    await eventually(lambda: not a.t.connected(2), what="the dialer to notice the close")

    b2 = await net.node(2, port=port)
    i = 1
    while not b2.inbox.messages:  # sent while reconnecting: some may be lost, as Raft allows
        a.t.send([app(1, 2, i)])
        i += 1
        with contextlib.suppress(TimeoutError):
            await b2.inbox.wait_for(1, within=0.2)
        assert i < 100, "never reconnected"
    burst = [app(1, 2, j) for j in range(1000, 1100)]
    a.t.send(burst)
    got = await b2.inbox.wait_for(len(b2.inbox.messages) + 100)
    assert got[-100:] == burst
    assert a.t.connected(2) and a.t.stats["connects"] >= 2


async def test_full_queue_drops_and_counts(net: Net) -> None:
    a, b = await net.node(1, queue_limit=10), await net.node(2)
    net.mesh(a, b)
    msgs = [app(1, 2, i) for i in range(25)]
    a.t.send(msgs)  # synchronous: the writer cannot run in between
    assert a.t.stats["dropped"] == 15
    assert await b.inbox.wait_for(10) == msgs[:10]
    assert a.t.stats["sent"] == 10
    a.t.send([app(1, 1, 0), app(1, 99, 0)])  # to ourselves, to an unknown peer
    assert a.t.stats["dropped"] == 17


async def test_removed_peer_is_no_longer_sent_to_and_bad_address_changes_nothing(
        net: Net) -> None:
    a, b = await net.node(1), await net.node(2)
    net.mesh(a, b)
    a.t.send([app(1, 2, 0)])
    await b.inbox.wait_for(1)
    with pytest.raises(ValueError, match=r"peer 3: address 'nowhere' is not IP:PORT"):
        a.t.set_peers({2: b.addr, 3: "nowhere"})
    assert a.t.connected(2)
    a.t.set_peers({})
    a.t.send([app(1, 2, 1)])
    assert a.t.stats["dropped"] == 1 and not a.t.connected(2)


async def test_on_message_failure_does_not_break_the_connection(net: Net) -> None:
    inbox = Inbox()

    def flaky(m: Message) -> None:
        if m.index == 0:
            raise RuntimeError("boom")
        inbox(m)

    a, b = await net.node(1), await net.node(2, on_message=flaky)
    net.mesh(a, b)
    a.t.send([app(1, 2, 0), app(1, 2, 1)])
    assert [m.index for m in await inbox.wait_for(1)] == [1]


async def test_key_is_renewed_by_reconnecting_before_the_counter_limit(
        net: Net, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_mod, "_MAX_FRAMES_PER_KEY", 4)
    a, b = await net.node(1), await net.node(2)
    net.mesh(a, b)
    msgs = [app(1, 2, i) for i in range(10)]
    for n, m in enumerate(msgs, 1):
        a.t.send([m])
        await b.inbox.wait_for(n)
    assert b.inbox.messages == msgs
    assert a.t.stats["connects"] == 3 and b.t.stats["bad_frames"] == 0


# ------------------------------------------------------------------ frame size
async def test_message_over_max_frame_is_dropped_by_the_sender(net: Net) -> None:
    a, b = await net.node(1, max_frame_bytes=64 * 1024), await net.node(2)
    net.mesh(a, b)
    a.t.send([snap(1, 2, 100 * 1024), app(1, 2, 1)])
    assert a.t.stats["dropped"] == 1
    assert [m.index for m in await b.inbox.wait_for(1)] == [1]


async def test_frame_over_max_frame_closes_the_connection(net: Net) -> None:
    a, b = await net.node(1), await net.node(2, max_frame_bytes=64 * 1024)
    net.mesh(a, b)
    a.t.send([app(1, 2, 0)])
    await b.inbox.wait_for(1)
    a.t.send([snap(1, 2, 100 * 1024)])
    await eventually(lambda: b.t.stats["bad_frames"] == 1, what="bad frame counted")
    await eventually(lambda: not a.t.connected(2), what="connection closed")
    a.t.send([app(1, 2, 2)])
    assert [m.index for m in await b.inbox.wait_for(2)] == [0, 2]


# ------------------------------------------------------------------ authentication
@pytest.mark.parametrize("mismatch", ["secret", "token"])
async def test_wrong_secret_or_token_delivers_nothing_and_counts_on_both_sides(
        net: Net, mismatch: str) -> None:
    other_secret = b"another secret, also long enough"
    kw: dict[str, Any] = ({"secret": other_secret} if mismatch == "secret"
                          else {"token": "another-cluster"})
    a, b = await net.node(1), await net.node(2, **kw)
    net.mesh(a, b)
    with capture_logs() as logs:
        a.t.send([app(1, 2, 0)])
        b.t.send([app(2, 1, 0)])
        await eventually(lambda: a.t.stats["auth_failures"] >= 2
                         and b.t.stats["auth_failures"] >= 2, what="auth failures")
    assert a.inbox.messages == [] and b.inbox.messages == []
    assert not a.t.connected(2) and not b.t.connected(1)
    assert a.t.stats["dropped"] == 1 and a.t.stats["received"] == 0
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert warnings and all(e["remote"].startswith(f"{HOST}:") for e in warnings)
    reasons = {e["reason"] for e in warnings}
    if mismatch == "token":
        assert "wrong cluster token" in reasons
    else:
        assert any("secret" in r for r in reasons)
    text = repr(logs)
    for s in (SECRET, other_secret):
        assert s.decode() not in text and s.hex() not in text


async def test_dialing_the_wrong_node_is_refused(net: Net) -> None:
    a, b = await net.node(1), await net.node(2)
    a.t.set_peers({5: b.addr})  # the address is node 2's, not node 5's
    with capture_logs() as logs:
        a.t.send([app(1, 5, 0)])
        await eventually(lambda: a.t.stats["auth_failures"] == 1)
    assert any("expected node 5" in e.get("reason", "") for e in logs)
    assert b.inbox.messages == []


class _Evil:
    def __reduce__(self) -> tuple[Callable[[], None], tuple[()]]:
        return (_unpickled, ())


UNPICKLED: list[bool] = []


def _unpickled() -> None:
    UNPICKLED.append(True)


def _hello(token: str) -> bytes:
    return struct.pack(">4sHQ32s32s", b"NVRP", PROTOCOL_VERSION, 1,
                       hashlib.sha256(token.encode()).digest(), os.urandom(32))


RAW_PAYLOADS: dict[str, bytes] = {
    "pickle": pickle.dumps(_Evil()),
    "pickled-message": pickle.dumps(app(1, 2, 0)),
    "msgpack-message": msgpack.packb(app(1, 2, 0).to_wire(), use_bin_type=True),
    "garbage": os.urandom(4096),
    "nothing": b"",
    "hello-wrong-token": _hello("another-cluster") + os.urandom(300),
    "hello-then-forged-proof-and-frame": _hello(TOKEN) + os.urandom(32) + os.urandom(300),
}


@pytest.mark.parametrize("name", list(RAW_PAYLOADS))
async def test_raw_client_without_handshake_is_closed_and_others_still_served(
        net: Net, name: str) -> None:
    a, b = await net.node(1), await net.node(2, handshake_timeout=0.5)
    net.mesh(a, b)
    reader, writer = await asyncio.open_connection(*b.t.address)
    writer.write(RAW_PAYLOADS[name])
    reply = await read_until_closed(reader)  # short payloads: closed by the handshake timeout
    writer.close()
    if name == "hello-then-forged-proof-and-frame":
        assert len(reply) == 78  # the listener's head and proof, then it closed
    else:
        assert reply == b""
    await eventually(lambda: b.t.stats["auth_failures"] == 1)
    assert not UNPICKLED
    a.t.send([app(1, 2, 0)])
    assert await b.inbox.wait_for(1) == [app(1, 2, 0)]
    assert b.t.stats["received"] == 1 and b.t.stats["auth_failures"] == 1


async def test_connections_stuck_in_the_handshake_are_capped(
        net: Net, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_mod, "_MAX_HANDSHAKING", 2)
    a, b = await net.node(1), await net.node(2, handshake_timeout=30)
    net.mesh(a, b)
    silent = [await asyncio.open_connection(*b.t.address) for _ in range(2)]
    await eventually(lambda: b.t._handshaking == 2, what="two pending handshakes")
    reader, writer = await asyncio.open_connection(*b.t.address)
    assert await read_until_closed(reader) == b""  # refused at once
    writer.close()
    assert b.t.stats["auth_failures"] == 1
    for _, w in silent:
        w.close()
    await eventually(lambda: b.t._handshaking == 0, what="the silent ones to go")
    a.t.send([app(1, 2, 0)])
    assert await b.inbox.wait_for(1) == [app(1, 2, 0)]


async def test_replayed_handshake_is_refused(net: Net) -> None:
    a, b = await net.node(1), await net.node(2)
    proxy = Proxy(b)
    a.t.set_peers({2: await proxy.start()})
    try:
        a.t.send([app(1, 2, 0), app(1, 2, 1)])
        await b.inbox.wait_for(2)
        recorded = bytes(proxy.recorded[0])
        reader, writer = await asyncio.open_connection(*b.t.address)
        writer.write(recorded)  # hello, proof, both frames: exactly what the dialer sent
        reply = await read_until_closed(reader)
        writer.close()
        assert len(reply) == 78
        await eventually(lambda: b.t.stats["auth_failures"] == 1)
        assert len(b.inbox.messages) == 2
    finally:
        await proxy.close()


@pytest.mark.parametrize("where", ["ciphertext", "tag", "length"])
async def test_tampered_frame_closes_the_connection_and_is_not_delivered(
        net: Net, where: str) -> None:
    a, b = await net.node(1), await net.node(2)
    proxy = Proxy(b)
    a.t.set_peers({2: await proxy.start()})
    try:
        first, tampered, after = app(1, 2, 0), app(1, 2, 1, size=256), app(1, 2, 2)
        a.t.send([first])
        await b.inbox.wait_for(1)
        start = len(proxy.recorded[-1])  # the next frame begins here
        clen = len(msgpack.packb(tampered.to_wire(), use_bin_type=True)) + 16
        proxy.flip_at = {"ciphertext": start + 4 + 40, "tag": start + 4 + clen - 1,
                         "length": start}[where]
        a.t.send([tampered])
        await eventually(lambda: b.t.stats["bad_frames"] == 1, what="bad frame counted")
        assert proxy.flip_at is None  # the byte was flipped
        await eventually(lambda: not a.t.connected(2), what="the dialer sees the close")
        assert b.inbox.messages == [first]
        a.t.send([after])
        assert await b.inbox.wait_for(2) == [first, after]
        assert b.t.stats["received"] == 2 and len(proxy.recorded) == 2
    finally:
        await proxy.close()


async def test_message_claiming_another_sender_is_dropped(net: Net) -> None:
    a, b = await net.node(1), await net.node(2)
    net.mesh(a, b)
    a.t.send([app(7, 2, 0), app(1, 2, 1)])  # node 1 cannot speak for node 7
    assert [m.index for m in await b.inbox.wait_for(1)] == [1]
    assert b.t.stats["rejected"] == 1


# ------------------------------------------------------------------ lifecycle
async def test_start_on_a_busy_port_names_the_address(net: Net) -> None:
    a = await net.node(1)
    host, port = a.t.address
    t = PeerTransport(2, (host, port), SECRET, TOKEN, Inbox())
    with pytest.raises(OSError, match=rf"cannot listen for Raft peers on {host}:{port}"):
        await t.start()


def test_constructor_rejects_a_short_secret() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        PeerTransport(1, (HOST, 0), b"short", TOKEN, Inbox())


async def test_stop_leaves_no_tasks_running() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    before = asyncio.all_tasks()
    net = Net()
    a, b = await net.node(1), await net.node(2, handshake_timeout=30)
    net.mesh(a, b)
    a.t.set_peers({2: b.addr, 3: f"{HOST}:1"})  # node 3 unreachable: its writer backs off
    a.t.send([app(1, 2, 0), app(1, 3, 0)])
    b.t.send([app(2, 1, 0)])
    await b.inbox.wait_for(1)
    await a.inbox.wait_for(1)
    await eventually(lambda: a.t.stats["connect_failures"] >= 1)
    reader, writer = await asyncio.open_connection(*b.t.address)  # handshake left pending
    await eventually(lambda: len(b.t._serving) == 2, what="the pending handler")
    await net.close()
    assert {t for t in asyncio.all_tasks() - before if not t.done()} == set()
    assert await read_until_closed(reader) == b""
    writer.close()
    await asyncio.sleep(0.01)
    loop.set_exception_handler(None)
    assert errors == []


# ------------------------------------------------------------------ throughput
async def test_throughput_of_small_append_messages(net: Net,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Measured, not asserted: 1-entry APP messages of ~300 encoded bytes, both ends in
    this process (so on one core, sender and receiver together)."""
    n = 50_000
    a, b = await net.node(1, queue_limit=n), await net.node(2)
    net.mesh(a, b)
    msgs = [app(1, 2, i, size=280) for i in range(n)]
    size = len(msgpack.packb(msgs[0].to_wire(), use_bin_type=True))
    a.t.send(msgs[:10])
    await b.inbox.wait_for(10)  # connected
    t0 = time.perf_counter()
    for i in range(10, n, 500):
        a.t.send(msgs[i:i + 500])
        await asyncio.sleep(0)
    await b.inbox.wait_for(n, within=120)
    dt = time.perf_counter() - t0
    assert b.inbox.messages == msgs
    with capsys.disabled():
        print(f"\nraft transport: {(n - 10) / dt:,.0f} msg/s, "
              f"{(n - 10) * size / dt / 1e6:.1f} MB/s of {size}-byte APP messages")

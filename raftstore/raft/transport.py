"""The peer transport: Raft messages between members over authenticated, encrypted TCP.

Flow, one direction (each member dials every peer; data only flows from dialer to listener)::

    send([Message]) --encode (msgpack)--> per-peer FIFO queue (bounded, drop when full)
        --> writer task (one per peer): dial lazily + handshake, backoff capped at 1 s
        --> seal every queued message (AES-256-GCM), one transport.write per batch
        ==TCP==> listener: handshake --> read frame --> open (authenticate) --> msgpack
        --> Message.from_wire --> check frm == proven id --> on_message(m)

Handshake (fixed-size binary fields, no msgpack, nothing else is parsed before it ends)::

    C -> S  hello  = "NVRP" | u16 version | u64 node id | SHA-256(cluster token) | nonce_c[32]
    S -> C  head   = "NVRP" | u16 version | u64 node id | nonce_s[32]
            proof_s = HMAC-SHA256(secret, "...server proof" | hello | head)
    C -> S  proof_c = HMAC-SHA256(secret, "...client proof" | hello | head)
    keys   = HKDF-SHA256(secret, salt=nonce_c|nonce_s, info=label|SHA-256(hello|head)), 64 bytes:
             [0:32] dialer->listener, [32:64] listener->dialer (reserved: the listener never sends)

Frames after the handshake: ``u32 big-endian length | AES-GCM(ciphertext | 16-byte tag)``,
the length header is the associated data, the 12-byte nonce is the frame's sequence number
on that connection and direction. Each frame carries one msgpack-encoded ``Message.to_wire()``.

Contracts:
- Everything runs on one event loop; no method may be called from another thread.
- ``send`` never blocks and never raises. Order is kept per peer while one connection
  lives; a message may be lost (queue full, connection lost, dial failed: Raft retransmits).
- ``on_message`` is called on the loop, in arrival order per incoming connection, only with
  messages that were authenticated and whose ``frm`` is the id the dialer proved.
- A frame that fails authentication, is longer than ``max_frame_bytes``, or a handshake that
  fails closes that connection; the transport goes on serving everyone else.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import msgpack
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from raftstore.raft.types import Message

__all__ = ["PROTOCOL_VERSION", "STAT_KEYS", "FrameError", "HandshakeError", "PeerTransport"]

log = structlog.get_logger("raftstore.transport")

PROTOCOL_VERSION: Final = 1
_MAGIC: Final = b"NVRP"
_CLIENT_HELLO: Final = struct.Struct(">4sHQ32s32s")  # magic, version, id, token hash, nonce
_SERVER_HEAD: Final = struct.Struct(">4sHQ32s")  # magic, version, id, nonce
_PROOF_LEN: Final = 32
_SERVER_LABEL: Final = b"navarch raft peer v1 server proof\0"
_CLIENT_LABEL: Final = b"navarch raft peer v1 client proof\0"
_KEYS_LABEL: Final = b"navarch raft peer v1 keys\0"
_LEN: Final = struct.Struct(">I")
_TAG_LEN: Final = 16
_NONCE_LEN: Final = 12
# Frames sealed under one key before the connection is closed and re-keyed by a new
# handshake: far below the 96-bit nonce space, and within AES-GCM's usage bounds.
_MAX_FRAMES_PER_KEY = 2**32
_MIN_SECRET: Final = 16
_BACKOFF_MIN: Final = 0.05
_BACKOFF_MAX: Final = 1.0
_CONNECT_TIMEOUT: Final = 5.0
_READ_CHUNK: Final = 1 << 18
_STREAM_LIMIT: Final = 1 << 16  # a connection buffers at most twice this before pausing
_MAX_HANDSHAKING = 256  # incoming connections not yet authenticated; more are refused
_WRITE_HIGH_WATER: Final = 4 << 20
_LOG_EVERY: Final = 60.0  # the same handshake failure from the same host: one warning a minute

STAT_KEYS: Final = (
    "sent",              # messages written to a connection
    "received",          # messages delivered to on_message
    "dropped",           # messages not sent: queue full, self/unknown peer, too large, dial failed
    "auth_failures",     # handshakes that failed (either side), including timeouts
    "bad_frames",        # frames that failed authentication or were too long: connection closed
    "rejected",          # authenticated messages whose frm/to did not match: dropped
    "malformed",         # authenticated frames that did not decode to a Message: dropped
    "connects",          # outgoing connections established (handshake done)
    "connect_failures",  # outgoing TCP connects that failed
    "accepts",           # incoming connections established (handshake done)
)


class HandshakeError(Exception):
    """A connection failed the peer handshake; ``str(e)`` says why (never the secret)."""


# ------------------------------------------------------------------ handshake (pure parts)
def _token_hash(cluster_token: str) -> bytes:
    return hashlib.sha256(cluster_token.encode()).digest()


def _proof(secret: bytes, label: bytes, transcript: bytes) -> bytes:
    return hmac.new(secret, label + transcript, hashlib.sha256).digest()


def _derive_keys(secret: bytes, nonce_c: bytes, nonce_s: bytes,
                 transcript: bytes) -> tuple[bytes, bytes]:
    """(dialer->listener key, listener->dialer key) for one connection."""
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=nonce_c + nonce_s,
               info=_KEYS_LABEL + hashlib.sha256(transcript).digest()).derive(secret)
    return okm[:32], okm[32:]


def _check_head(magic: bytes, version: int) -> None:
    if magic != _MAGIC:
        raise HandshakeError("not a Navarch Raft peer (bad magic)")
    if version != PROTOCOL_VERSION:
        raise HandshakeError(f"peer speaks protocol version {version}, "
                             f"this node speaks {PROTOCOL_VERSION}")


async def client_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                           node_id: int, expected_peer: int, secret: bytes, token_hash: bytes,
                           nonce: bytes) -> bytes:
    """Run the dialer's side; return the dialer->listener key. Raises HandshakeError,
    or IncompleteReadError/OSError when the listener closes the connection."""
    hello = _CLIENT_HELLO.pack(_MAGIC, PROTOCOL_VERSION, node_id, token_hash, nonce)
    writer.write(hello)
    reply = await reader.readexactly(_SERVER_HEAD.size + _PROOF_LEN)
    head, proof_s = reply[:_SERVER_HEAD.size], reply[_SERVER_HEAD.size:]
    magic, version, server_id, nonce_s = _SERVER_HEAD.unpack(head)
    _check_head(magic, version)
    transcript = hello + head
    if not hmac.compare_digest(proof_s, _proof(secret, _SERVER_LABEL, transcript)):
        raise HandshakeError("the peer did not prove the peer secret (different secret?)")
    if server_id != expected_peer:
        raise HandshakeError(f"the peer is node {server_id:x}, expected node {expected_peer:x}")
    writer.write(_proof(secret, _CLIENT_LABEL, transcript))
    return _derive_keys(secret, nonce, nonce_s, transcript)[0]


async def server_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                           node_id: int, secret: bytes, token_hash: bytes,
                           nonce: bytes) -> tuple[int, bytes]:
    """Run the listener's side; return (the dialer's proven node id, dialer->listener key)."""
    hello = await reader.readexactly(_CLIENT_HELLO.size)
    magic, version, peer_id, peer_token, nonce_c = _CLIENT_HELLO.unpack(hello)
    _check_head(magic, version)
    if not hmac.compare_digest(peer_token, token_hash):
        raise HandshakeError("wrong cluster token")
    if peer_id == 0 or peer_id == node_id:
        raise HandshakeError(f"the dialer claims node id {peer_id:x}")
    head = _SERVER_HEAD.pack(_MAGIC, PROTOCOL_VERSION, node_id, nonce)
    transcript = hello + head
    writer.write(head + _proof(secret, _SERVER_LABEL, transcript))
    proof_c = await reader.readexactly(_PROOF_LEN)
    if not hmac.compare_digest(proof_c, _proof(secret, _CLIENT_LABEL, transcript)):
        raise HandshakeError("the dialer did not prove the peer secret (different secret?)")
    return peer_id, _derive_keys(secret, nonce_c, nonce, transcript)[0]


# ------------------------------------------------------------------ frames
class FrameSealer:
    """Seals frames under one key; nonces are 0, 1, 2, ... and never reused."""

    __slots__ = ("_aead", "_counter")

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self._counter = 0

    @property
    def remaining(self) -> int:
        """Frames this key may still seal."""
        return _MAX_FRAMES_PER_KEY - self._counter

    def seal(self, plain: bytes, out: list[bytes]) -> None:
        """Append ``header`` and ``ciphertext`` of one frame to ``out``."""
        if self._counter >= _MAX_FRAMES_PER_KEY:
            raise OverflowError("frame counter exhausted: re-key")
        header = _LEN.pack(len(plain) + _TAG_LEN)
        out.append(header)
        out.append(self._aead.encrypt(self._counter.to_bytes(_NONCE_LEN, "big"), plain, header))
        self._counter += 1


class FrameError(Exception):
    """A frame was too long, too short or failed authentication: close the connection."""


class FrameOpener:
    """Splits a byte stream into frames and authenticates them in sequence."""

    __slots__ = ("_aead", "_buf", "_counter", "_max")

    def __init__(self, key: bytes, max_frame_bytes: int) -> None:
        self._aead = AESGCM(key)
        self._counter = 0
        self._max = max_frame_bytes
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the plaintexts of the frames now complete.
        Raises FrameError; nothing after a bad frame is returned."""
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos, end = 0, len(buf)
        try:
            with memoryview(buf) as view:
                while end - pos >= _LEN.size:
                    (n,) = _LEN.unpack_from(buf, pos)
                    if n > self._max or n < _TAG_LEN:
                        raise FrameError(f"frame of {n} bytes (limit {self._max})")
                    body = pos + _LEN.size
                    if end - body < n:
                        break
                    if self._counter >= _MAX_FRAMES_PER_KEY:
                        raise FrameError("frame counter exhausted")
                    nonce = self._counter.to_bytes(_NONCE_LEN, "big")
                    self._counter += 1
                    try:
                        out.append(self._aead.decrypt(nonce, view[body:body + n],
                                                      view[pos:body]))
                    except InvalidTag:
                        raise FrameError("frame failed authentication") from None
                    pos = body + n
        finally:
            del buf[:pos]
        return out


# ------------------------------------------------------------------ per-peer state
@dataclass(eq=False, slots=True)
class _Outgoing:
    """One established outgoing connection."""

    address: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    sealer: FrameSealer
    lost: bool = False
    monitor: asyncio.Task[None] | None = None


@dataclass(eq=False, slots=True)
class _Peer:
    """A peer we send to: its queue of encoded messages and its writer task."""

    node_id: int
    address: str
    host: str
    port: int
    queue: collections.deque[bytes] = field(default_factory=collections.deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    conn: _Outgoing | None = None
    task: asyncio.Task[None] | None = None


def parse_address(node_id: int, address: str) -> tuple[str, int]:
    """``"IP:PORT"`` or ``"[IPv6]:PORT"`` -> (host, port); ValueError naming the peer."""
    host, sep, port_s = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ValueError(f"peer {node_id:x}: address {address!r} is not IP:PORT "
                         "(e.g. 10.0.0.5:2380)")
    return host, int(port_s)


def _remote(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if not peer:
        return "?"
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tune_socket(writer: asyncio.StreamWriter) -> None:
    """Keepalive, so that a peer that vanished without a FIN is noticed within a minute."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    writer.transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


# ------------------------------------------------------------------ the transport
class PeerTransport:
    """Sends Raft messages to peers and delivers the ones peers send, over mutually
    authenticated AES-256-GCM channels. All methods run on the event loop."""

    def __init__(self, node_id: int, listen: tuple[str, int], secret: bytes, cluster_token: str,
                 on_message: Callable[[Message], None], *, max_frame_bytes: int = 512 * 1024 * 1024,
                 queue_limit: int = 4096, handshake_timeout: float = 5.0) -> None:
        if not 0 < node_id < 2**64:
            raise ValueError(f"node_id {node_id} must be in 1..2**64-1")
        if len(secret) < _MIN_SECRET:
            raise ValueError(f"the peer secret is {len(secret)} bytes; "
                             f"it must be at least {_MIN_SECRET} (32 random bytes recommended)")
        if not _TAG_LEN < max_frame_bytes < 2**31:  # AES-GCM here seals at most 2**31-1
            raise ValueError(f"max_frame_bytes {max_frame_bytes} must be in 17..2**31-1")
        if queue_limit < 1:
            raise ValueError(f"queue_limit {queue_limit} must be at least 1")
        self.node_id = node_id
        self.listen = listen
        self._secret = secret
        self._token_hash = _token_hash(cluster_token)
        self._on_message = on_message
        self._max_frame = max_frame_bytes
        self._queue_limit = queue_limit
        self._handshake_timeout = handshake_timeout
        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        self._server: asyncio.Server | None = None
        self._peers: dict[int, _Peer] = {}
        self._retired: set[asyncio.Task[None]] = set()   # writers of removed peers, ending
        self._serving: set[asyncio.Task[object]] = set()  # incoming connection handlers
        self._incoming: dict[int, asyncio.StreamWriter] = {}  # newest connection per dialer
        self._handshaking = 0
        self._warned: dict[tuple[str, str, str], float] = {}
        self._stopped = False

    def __repr__(self) -> str:  # never show the secret
        return f"PeerTransport(node_id={self.node_id:x}, listen={self.listen!r})"

    # -------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Listen for peers. Raises OSError naming the address when it cannot."""
        host, port = self.listen
        try:
            self._server = await asyncio.start_server(self._serve, host, port,
                                                      limit=_STREAM_LIMIT, reuse_address=True)
        except OSError as e:
            raise OSError(e.errno, f"cannot listen for Raft peers on {host}:{port}: "
                                   f"{e.strerror or e}") from e

    @property
    def address(self) -> tuple[str, int]:
        """The address actually listened on (the real port when ``listen`` asked for 0)."""
        if self._server is None or not self._server.sockets:
            return self.listen
        name = self._server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    async def stop(self) -> None:
        """Close every connection and end every task this transport started. Final."""
        self._stopped = True
        if self._server is not None:
            self._server.close()
        tasks: list[asyncio.Task[object]] = [*self._retired, *self._serving]
        for peer in self._peers.values():
            self._drop_queue(peer)
            if peer.task is not None:
                tasks.append(peer.task)
        self._peers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        await asyncio.sleep(0)  # a handler accepted just before close() sees _stopped and ends

    # -------------------------------------------------------------- peers and sending
    def set_peers(self, peers: dict[int, str]) -> None:
        """Make the peers exactly ``peers`` (node id -> "IP:PORT"; our own id is ignored).
        New peers get a writer; removed peers lose theirs and their queue; a changed
        address re-dials. Raises ValueError (changing nothing) on a malformed address."""
        parsed = {nid: (addr, *parse_address(nid, addr))
                  for nid, addr in peers.items() if nid != self.node_id}
        if self._stopped:
            return
        for nid in [n for n in self._peers if n not in parsed]:
            self._remove_peer(self._peers.pop(nid))
        loop = asyncio.get_running_loop()
        for nid, (addr, host, port) in parsed.items():
            peer = self._peers.get(nid)
            if peer is None:
                peer = self._peers[nid] = _Peer(nid, addr, host, port)
                peer.task = loop.create_task(self._run_writer(peer),
                                             name=f"raft-transport-writer-{nid:x}")
            elif peer.address != addr:
                peer.address, peer.host, peer.port = addr, host, port
                if peer.conn is not None:
                    peer.conn.lost = True
                    peer.conn.writer.transport.abort()
                peer.wakeup.set()

    def send(self, messages: list[Message]) -> None:
        """Queue ``messages`` for their peers (``m.to``). Never blocks, never raises:
        a message to ourselves, to an unknown peer, too large, or to a full queue is
        dropped and counted in ``stats["dropped"]``. Encoded now: later changes to a
        message object are not sent."""
        peers, limit, stats = self._peers, self._queue_limit, self.stats
        for m in messages:
            peer = peers.get(m.to)
            if peer is None or len(peer.queue) >= limit:
                stats["dropped"] += 1
                continue
            try:
                data = msgpack.packb(m.to_wire(), use_bin_type=True)
            except Exception:  # a caller bug must not take the transport down
                self.stats["dropped"] += 1
                log.exception("cannot encode raft message", type=m.type, to=m.to)
                continue
            if len(data) + _TAG_LEN > self._max_frame:
                self.stats["dropped"] += 1
                log.warning("raft message larger than max_frame_bytes dropped",
                            type=m.type, to=m.to, size=len(data), limit=self._max_frame)
                continue
            peer.queue.append(data)
            peer.wakeup.set()

    def connected(self, node_id: int) -> bool:
        """True while an authenticated outgoing connection to ``node_id`` is up."""
        peer = self._peers.get(node_id)
        return peer is not None and peer.conn is not None and not peer.conn.lost

    def _remove_peer(self, peer: _Peer) -> None:
        self._drop_queue(peer)
        if peer.task is not None:
            peer.task.cancel()
            self._retired.add(peer.task)
            peer.task.add_done_callback(self._retired.discard)

    def _drop_queue(self, peer: _Peer) -> None:
        self.stats["dropped"] += len(peer.queue)
        peer.queue.clear()

    # -------------------------------------------------------------- outgoing
    async def _run_writer(self, peer: _Peer) -> None:
        """Dial when there is something to send, pump the queue, re-dial after backoff."""
        backoff = _BACKOFF_MIN
        while True:
            await peer.wakeup.wait()
            peer.wakeup.clear()
            if not peer.queue:
                continue
            try:
                connected = await self._connect_and_pump(peer)
            except Exception:  # a bug: keep the peer reachable, say so loudly
                log.exception("raft peer writer failed", peer=f"{peer.node_id:x}")
                connected = False
            if connected:  # lost or re-keyed: what is still queued goes on the next one
                backoff = _BACKOFF_MIN
                peer.wakeup.set()
                await asyncio.sleep(_BACKOFF_MIN)
            else:
                self._drop_queue(peer)  # stale by the time we could send them
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, _BACKOFF_MAX)

    async def _connect_and_pump(self, peer: _Peer) -> bool:
        """False if no connection could be established."""
        conn = await self._dial(peer)
        if conn is None:
            return False
        peer.conn = conn
        rekey = False
        try:
            rekey = await self._pump(peer, conn)
        finally:
            peer.conn = None
            await self._close_outgoing(conn, graceful=rekey)
        return True

    async def _dial(self, peer: _Peer) -> _Outgoing | None:
        address = peer.address
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT):
                reader, writer = await asyncio.open_connection(peer.host, peer.port,
                                                               limit=_STREAM_LIMIT)
        except OSError as e:  # includes TimeoutError
            self.stats["connect_failures"] += 1
            log.debug("cannot connect to raft peer", peer=f"{peer.node_id:x}",
                      address=address, error=str(e) or type(e).__name__)
            return None
        remote = _remote(writer)
        try:
            async with asyncio.timeout(self._handshake_timeout):
                key = await client_handshake(
                    reader, writer, node_id=self.node_id, expected_peer=peer.node_id,
                    secret=self._secret, token_hash=self._token_hash, nonce=os.urandom(32))
        except (HandshakeError, OSError, asyncio.IncompleteReadError) as e:
            await _close(writer)
            self._auth_failed("dialer", remote, _reason(e), peer=f"{peer.node_id:x}")
            return None
        except BaseException:
            await _close(writer)
            raise
        _tune_socket(writer)
        self.stats["connects"] += 1
        log.debug("connected to raft peer", peer=f"{peer.node_id:x}", address=address)
        conn = _Outgoing(address, reader, writer, FrameSealer(key))
        conn.monitor = asyncio.get_running_loop().create_task(
            self._watch(peer, conn), name=f"raft-transport-watch-{peer.node_id:x}")
        return conn

    async def _watch(self, peer: _Peer, conn: _Outgoing) -> None:
        """The listener never sends after the handshake: any byte or EOF means lost."""
        with contextlib.suppress(OSError):
            await conn.reader.read(1)
        conn.lost = True
        peer.wakeup.set()

    async def _pump(self, peer: _Peer, conn: _Outgoing) -> bool:
        """Write everything queued, one transport.write per batch, until the connection
        is lost or the peer moved (False) or the key is used up (True: re-key)."""
        while not conn.lost and conn.address == peer.address:
            if not peer.queue:
                await peer.wakeup.wait()
                peer.wakeup.clear()
                continue
            room = conn.sealer.remaining
            if room <= 0:
                return True
            n = min(room, len(peer.queue))
            frames: list[bytes] = []
            for _ in range(n):
                conn.sealer.seal(peer.queue.popleft(), frames)
            conn.writer.write(b"".join(frames))
            self.stats["sent"] += n
            try:
                await conn.writer.drain()
            except OSError:
                return False
        return False

    async def _close_outgoing(self, conn: _Outgoing, *, graceful: bool) -> None:
        conn.lost = True
        if conn.monitor is not None:
            conn.monitor.cancel()
            await asyncio.wait([conn.monitor])
        if graceful:
            conn.writer.close()  # re-key: what was written still reaches the peer
        else:
            await _close(conn.writer)

    # -------------------------------------------------------------- incoming
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One incoming connection: handshake, then frames until it closes or fails."""
        task = asyncio.current_task()
        assert task is not None
        if self._stopped:
            writer.transport.abort()
            return
        remote = _remote(writer)
        if self._handshaking >= _MAX_HANDSHAKING:
            writer.transport.abort()
            self._auth_failed("listener", remote, "too many connections in their handshake")
            return
        self._serving.add(task)
        try:
            await self._serve_authenticated(reader, writer, remote)
        except asyncio.CancelledError:
            # Only stop() cancels handlers. Ending normally matters: Python 3.11's
            # start_server callback calls task.exception() on this task, which raises
            # (and is logged as an error) when the task ended cancelled.
            pass
        except Exception:
            log.exception("raft peer connection failed", remote=remote)
        finally:
            writer.transport.abort()
            self._serving.discard(task)

    async def _serve_authenticated(self, reader: asyncio.StreamReader,
                                   writer: asyncio.StreamWriter, remote: str) -> None:
        self._handshaking += 1
        try:
            async with asyncio.timeout(self._handshake_timeout):
                peer_id, key = await server_handshake(
                    reader, writer, node_id=self.node_id, secret=self._secret,
                    token_hash=self._token_hash, nonce=os.urandom(32))
        except (HandshakeError, OSError, asyncio.IncompleteReadError) as e:
            self._auth_failed("listener", remote, _reason(e))
            return
        finally:
            self._handshaking -= 1
        _tune_socket(writer)
        self.stats["accepts"] += 1
        previous = self._incoming.get(peer_id)
        if previous is not None:  # the dialer keeps one connection: the old one is dead
            previous.transport.abort()
        self._incoming[peer_id] = writer
        try:
            await self._read_frames(reader, FrameOpener(key, self._max_frame), peer_id, remote)
        finally:
            if self._incoming.get(peer_id) is writer:
                del self._incoming[peer_id]

    async def _read_frames(self, reader: asyncio.StreamReader, opener: FrameOpener,
                           peer_id: int, remote: str) -> None:
        while True:
            try:
                data = await reader.read(_READ_CHUNK)
            except OSError:
                return
            if not data:
                return
            try:
                plains = opener.feed(data)
            except FrameError as e:
                self.stats["bad_frames"] += 1
                self._warn("raft peer sent a bad frame; connection closed", "listener", remote,
                           str(e), peer=f"{peer_id:x}")
                return
            for plain in plains:
                self._deliver(plain, peer_id)

    def _deliver(self, plain: bytes, peer_id: int) -> None:
        try:
            m = Message.from_wire(msgpack.unpackb(
                plain, raw=False, use_list=True, max_bin_len=self._max_frame,
                max_str_len=self._max_frame, max_array_len=self._max_frame,
                max_map_len=0, max_ext_len=0))
        except Exception as e:  # authenticated but not a Message: a bug or a version skew
            self.stats["malformed"] += 1
            log.warning("raft peer sent an undecodable message", peer=f"{peer_id:x}",
                        error=type(e).__name__)
            return
        if m.frm != peer_id or m.to != self.node_id:
            self.stats["rejected"] += 1
            log.warning("raft message with wrong sender or recipient dropped",
                        peer=f"{peer_id:x}", frm=f"{m.frm:x}", to=f"{m.to:x}")
            return
        self.stats["received"] += 1
        try:
            self._on_message(m)
        except Exception:
            log.exception("on_message failed", type=m.type, frm=f"{m.frm:x}")

    # -------------------------------------------------------------- logging
    def _auth_failed(self, side: str, remote: str, reason: str, **kw: str) -> None:
        self.stats["auth_failures"] += 1
        self._warn("raft peer handshake failed; connection closed", side, remote, reason, **kw)

    def _warn(self, event: str, side: str, remote: str, reason: str, **kw: str) -> None:
        """One warning per (side, remote host, reason) a minute; debug otherwise."""
        key = (side, remote.rpartition(":")[0], reason)
        now = asyncio.get_running_loop().time()
        last = self._warned.get(key)
        if last is None or now - last >= _LOG_EVERY:
            if len(self._warned) > 1024:
                self._warned.clear()
            self._warned[key] = now
            log.warning(event, side=side, remote=remote, reason=reason, **kw)
        else:
            log.debug(event, side=side, remote=remote, reason=reason, **kw)


def _reason(e: BaseException) -> str:
    if isinstance(e, HandshakeError):
        return str(e)
    if isinstance(e, TimeoutError):
        return "handshake timed out"
    if isinstance(e, asyncio.IncompleteReadError):
        return "connection closed during the handshake"
    return f"connection failed during the handshake: {type(e).__name__}"

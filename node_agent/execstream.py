"""Interactive exec (stdin and/or a TTY) through containerd's streaming server.

CRI ``Exec`` only hands out a URL (``http://127.0.0.1:<port>/exec/<token>``, in the
node's network namespace); the command runs once a client connects there. That server
is kubelet's streaming library, which speaks SPDY or WebSocket; this module is a small
WebSocket client (RFC 6455) for the ``v4.channel.k8s.io`` subprotocol:

    every message: one byte of channel, then data
    0 stdin (to the server)     1 stdout     2 stderr     3 status (JSON metav1.Status)
    4 resize (to the server: {"Width": w, "Height": h})

Limit: v4 has no way to close stdin alone (v5 added one, after containerd 1.6), so a
command reading stdin without a TTY never sees end-of-file; with a TTY the user types
^D as usual.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import grpc
from cri_api.v1 import api_pb2

from navarch.v1 import node_pb2

from .cri import CriClient

__all__ = ["PROTOCOL", "Dial", "ExitStatus", "Frame", "WebSocket", "decode_header",
           "encode_frame", "exit_status", "interactive_exec"]

PROTOCOL = "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, STATUS, RESIZE = range(5)
TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455's, for Sec-WebSocket-Accept
MAX_MESSAGE = 16 << 20

Dial = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def encode_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """One final client frame: masked with the 4 bytes of ``mask``, as clients must."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return head + mask + masked


@dataclass(frozen=True)
class Frame:
    """A frame's first two bytes: whether it ends a message, its opcode, whether it is
    masked, how many header bytes follow (extended length, then mask) and the 7-bit
    length (126, 127: the real one is in those bytes)."""

    fin: bool
    opcode: int
    masked: bool
    extra: int
    length: int


def decode_header(first: bytes) -> Frame:
    """The header fields in a frame's first two bytes."""
    b0, b1 = first[0], first[1]
    size = b1 & 0x7F
    masked = bool(b1 & 0x80)
    extra = (2 if size == 126 else 8 if size == 127 else 0) + (4 if masked else 0)
    return Frame(bool(b0 & 0x80), b0 & 0x0F, masked, extra, size)


@dataclass(frozen=True)
class ExitStatus:
    """How the command ended: its exit code, or why there is none."""

    code: int | None
    error: str = ""


def exit_status(payload: bytes) -> ExitStatus:
    """The status channel's metav1.Status: Success is 0; NonZeroExitCode carries the
    code in details.causes[reason=ExitCode]; anything else is an error message (e.g.
    the executable was not found)."""
    try:
        status = json.loads(payload)
    except ValueError:
        return ExitStatus(None, payload.decode(errors="replace"))
    if status.get("status") == "Success":
        return ExitStatus(0)
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                with contextlib.suppress(TypeError, ValueError):
                    return ExitStatus(int(cause.get("message")))
    return ExitStatus(None, str(status.get("message") or "exec failed"))


class WebSocket:
    """A client WebSocket over asyncio streams. ``send`` from one task and ``recv`` from
    another is safe; two concurrent senders are not."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      host: str, path: str, protocol: str) -> WebSocket:
        """The opening handshake; raises ConnectionError when the server refuses."""
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n"
                      "\r\n").encode())
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status, *fields = head.split("\r\n")
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (f.partition(":") for f in fields if f)}
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        if status.split(" ")[1:2] != ["101"] or headers.get("sec-websocket-accept") != accept:
            raise ConnectionError(f"no WebSocket: the streaming server answered {status!r}")
        return cls(reader, writer)

    async def send(self, data: bytes, opcode: int = BINARY) -> None:
        self.writer.write(encode_frame(opcode, data, os.urandom(4)))
        await self.writer.drain()

    async def recv(self) -> bytes | None:
        """The next data message; None once the server closed (or the connection ended)."""
        message: list[bytes] = []
        size = 0
        try:
            while True:
                frame = decode_header(await self.reader.readexactly(2))
                extra = await self.reader.readexactly(frame.extra)
                length = frame.length
                if length == 126:
                    length = struct.unpack("!H", extra[:2])[0]
                elif length == 127:
                    length = struct.unpack("!Q", extra[:8])[0]
                mask = extra[-4:] if frame.masked else b""
                size += length
                if size > MAX_MESSAGE:
                    raise ConnectionError(f"a message over {MAX_MESSAGE} bytes")
                payload = await self.reader.readexactly(length)
                if mask:
                    key = (mask * (length // 4 + 1))[:length]
                    payload = (int.from_bytes(payload, "big")
                               ^ int.from_bytes(key, "big")).to_bytes(length, "big")
                if frame.opcode == CLOSE:
                    return None
                if frame.opcode == PING:
                    await self.send(payload, PONG)
                    continue
                if frame.opcode == PONG:
                    continue
                message.append(payload)
                if frame.fin:
                    return b"".join(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.send(struct.pack("!H", 1000), CLOSE)
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def _forward_input(ws: WebSocket, inputs: AsyncIterator[node_pb2.ExecInput],
                         stdin: bool) -> None:
    """The caller's stdin and resizes, to the server, until the caller stops sending."""
    async for item in inputs:
        kind = item.WhichOneof("input")
        if kind == "stdin" and stdin and item.stdin:
            await ws.send(bytes([STDIN]) + item.stdin)
        elif kind == "resize":
            size = {"Width": item.resize.width, "Height": item.resize.height}
            await ws.send(bytes([RESIZE]) + json.dumps(size).encode())


async def interactive_exec(cri_client: CriClient, container_id: str,
                           request: node_pb2.ExecRequest,
                           inputs: AsyncIterator[node_pb2.ExecInput],
                           dial: Dial | None = None) -> AsyncIterator[node_pb2.ExecOutput]:
    """Run ``request``'s command with stdin/tty; output as it comes, then the exit code.

    Raises server.Refusal when the command cannot be run or its status is lost."""
    from .server import Refusal

    try:
        url = await cri_client.exec_url(api_pb2.ExecRequest(
            container_id=container_id, cmd=list(request.command), tty=request.tty,
            stdin=request.stdin, stdout=True, stderr=not request.tty))
    except grpc.aio.AioRpcError as exc:
        raise Refusal(grpc.StatusCode.UNKNOWN, f"exec: {exc.details()}") from None
    where = urlsplit(url)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    try:
        reader, writer = await (dial or asyncio.open_connection)(host, port)
        ws = await WebSocket.connect(reader, writer, where.netloc,
                                     where.path + (f"?{where.query}" if where.query else ""),
                                     PROTOCOL)
    except (OSError, ConnectionError, asyncio.IncompleteReadError,
            asyncio.LimitOverrunError) as exc:
        raise Refusal(grpc.StatusCode.UNAVAILABLE,
                      f"containerd's streaming server at {host}:{port}: {exc}") from None
    pump = asyncio.create_task(_forward_input(ws, inputs, request.stdin))
    status: ExitStatus | None = None
    try:
        while (message := await ws.recv()) is not None:
            if not message:
                continue
            channel, data = message[0], message[1:]
            if channel == STDOUT and data:
                yield node_pb2.ExecOutput(stdout=data)
            elif channel == STDERR and data:
                yield node_pb2.ExecOutput(stderr=data)
            elif channel == STATUS and data:
                status = exit_status(data)
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
        await ws.close()
    if status is None:
        raise Refusal(grpc.StatusCode.UNKNOWN,
                      "the exec stream ended without the command's exit status")
    if status.code is None:
        raise Refusal(grpc.StatusCode.UNKNOWN, status.error)
    yield node_pb2.ExecOutput(exit_code=status.code)

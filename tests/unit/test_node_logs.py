"""The pure parts of logs, exec and top, table-driven, no I/O:

- CRI log files read back as ``kubectl logs`` prints them (node_agent.logs): records,
  partial lines, reads that split records, --since, --tail, --timestamps;
- the node service's decisions: which container, CPU rates (node_agent.server);
- the WebSocket framing and exit statuses of interactive exec (node_agent.execstream);
- the Pods proxy's node address and "waiting to start"; navctl top's columns.
"""

from __future__ import annotations

import datetime as dt
import json

import grpc
import pytest

from navarch._navctl.podio import format_cpu, format_memory, percent
from navarch.v1 import core_pb2
from node_agent.execstream import ExitStatus, decode_header, encode_frame, exit_status
from node_agent.logs import LineAssembler, LogLine, parse, parse_time, render, select
from node_agent.server import CpuSample, CpuWindow, Refusal, choose_container, next_cpu_window
from services.apiserver.errors import ApiError
from services.apiserver.podproxy import node_address, waiting_reason

T0 = "2026-11-22T12:00:00.000000001Z"
T1 = "2026-11-22T12:00:01.5Z"
T2 = "2026-11-22T12:00:02.123456789Z"
EPOCH0 = dt.datetime(2026, 11, 22, 12, 0, 0, tzinfo=dt.UTC).timestamp()


def rec(stamp: str, stream: str, tag: str, text: str) -> bytes:
    return f"{stamp} {stream} {tag} {text}\n".encode()


@pytest.mark.parametrize(("stamp", "seconds"), [
    ("2026-11-22T12:00:00Z", EPOCH0),
    ("2026-11-22T12:00:00.000000001Z", EPOCH0),
    ("2026-11-22T12:00:01.5Z", EPOCH0 + 1.5),
    ("2026-11-22T12:00:02.123456789Z", EPOCH0 + 2.123456),
    ("2026-11-22T14:00:00.25+02:00", EPOCH0 + 0.25),
])
def test_parse_time(stamp: str, seconds: float) -> None:
    assert parse_time(stamp) == pytest.approx(seconds, abs=1e-6)


@pytest.mark.parametrize("stamp", ["yesterday", "2026-11-22T12:00:00", "2026-11-22T12:00:00.Z",
                                   ""])
def test_parse_time_rejects(stamp: str) -> None:
    with pytest.raises(ValueError):
        parse_time(stamp)


@pytest.mark.parametrize(("data", "expected"), [
    pytest.param(b"", [], id="empty"),
    pytest.param(rec(T0, "stdout", "F", "hello"), [("stdout", b"hello", T0)], id="one line"),
    pytest.param(rec(T0, "stdout", "F", ""), [("stdout", b"", T0)], id="empty line"),
    pytest.param(f"{T0} stdout F".encode() + b"\n", [("stdout", b"", T0)],
                 id="empty line without the separator"),
    pytest.param(rec(T0, "stdout", "F", "a  b "), [("stdout", b"a  b ", T0)],
                 id="spaces kept"),
    pytest.param(rec(T0, "stdout", "P", "hel") + rec(T1, "stdout", "P", "l")
                 + rec(T2, "stdout", "F", "o"), [("stdout", b"hello", T0)],
                 id="partial records joined, first timestamp"),
    pytest.param(rec(T0, "stdout", "P", "out-") + rec(T1, "stderr", "F", "err")
                 + rec(T2, "stdout", "F", "end"),
                 [("stderr", b"err", T1), ("stdout", b"out-end", T0)],
                 id="partials are per stream"),
    pytest.param(rec(T0, "stdout", "F", "a") + b"garbage\n" + b"not a time stdout F x\n"
                 + f"{T1} stdout X y\n".encode() + rec(T2, "stderr", "F", "b"),
                 [("stdout", b"a", T0), ("stderr", b"b", T2)], id="non-records skipped"),
    pytest.param(rec(T0, "stdout", "F", "a").rstrip(b"\n"), [("stdout", b"a", T0)],
                 id="last record without newline"),
    pytest.param(rec(T0, "stdout", "P", "never finished"), [], id="dangling partial"),
    pytest.param(rec(T0, "stdout", "F", "caf\xe9"), [("stdout", "caf\xe9".encode(), T0)],
                 id="utf-8 bytes kept"),
])
def test_parse(data: bytes, expected: list[tuple[str, bytes, str]]) -> None:
    assert [(ln.stream, ln.text, ln.stamp) for ln in parse(data)] == expected


def test_assembler_joins_across_reads_at_every_split() -> None:
    data = (rec(T0, "stdout", "F", "one") + rec(T1, "stdout", "P", "tw")
            + rec(T1, "stdout", "F", "o") + rec(T2, "stderr", "F", "three"))
    whole = [(ln.stream, ln.text) for ln in parse(data)]
    assert whole == [("stdout", b"one"), ("stdout", b"two"), ("stderr", b"three")]
    for cut in range(len(data) + 1):
        assembler = LineAssembler()
        got = assembler.feed(data[:cut]) + assembler.feed(data[cut:])
        assert [(ln.stream, ln.text) for ln in got] == whole, cut


def test_assembler_holds_an_unfinished_record() -> None:
    assembler = LineAssembler()
    assert assembler.feed(f"{T0} stdout F hal".encode()) == []
    assert [ln.text for ln in assembler.feed(b"f\n")] == [b"half"]


def lines(*texts: str) -> list[LogLine]:
    return [LogLine(EPOCH0 + i, f"2026-11-22T12:00:0{i}Z", "stdout", t.encode())
            for i, t in enumerate(texts)]


@pytest.mark.parametrize(("since", "tail", "expected"), [
    (0.0, None, ["a", "b", "c", "d"]),
    (0.0, 2, ["c", "d"]),
    (0.0, 10, ["a", "b", "c", "d"]),
    (0.0, 0, []),
    (EPOCH0 + 1, None, ["b", "c", "d"]),
    (EPOCH0 + 1.5, None, ["c", "d"]),
    (EPOCH0 + 1, 1, ["d"]),
    (EPOCH0 + 3, 5, ["d"]),
    (EPOCH0 + 10, None, []),
])
def test_select(since: float, tail: int | None, expected: list[str]) -> None:
    chosen = select(lines("a", "b", "c", "d"), since=since, tail=tail)
    assert [ln.text.decode() for ln in chosen] == expected


@pytest.mark.parametrize(("timestamps", "expected"), [
    (False, [b"a\n", b"\n"]),
    (True, [b"2026-11-22T12:00:00Z a\n", b"2026-11-22T12:00:01Z \n"]),
])
def test_render(timestamps: bool, expected: list[bytes]) -> None:
    assert list(render(lines("a", ""), timestamps)) == expected


def test_render_keeps_the_stamp_as_written() -> None:
    (line,) = parse(rec(T2, "stdout", "F", "x"))
    assert list(render([line], timestamps=True)) == [f"{T2} x\n".encode()]


# --- node_agent.server ---------------------------------------------------------------


@pytest.mark.parametrize(("names", "requested", "expected"), [
    (["app"], "", "app"),
    (["app", "app"], "", "app"),  # two attempts of one container
    (["app", "side"], "side", "side"),
    (["app"], "app", "app"),
])
def test_choose_container(names: list[str], requested: str, expected: str) -> None:
    assert choose_container("web", names, requested) == expected


@pytest.mark.parametrize(("names", "requested", "code", "message"), [
    (["b", "a"], "", grpc.StatusCode.INVALID_ARGUMENT,
     "a container name must be specified for pod web, choose one of: [a b]"),
    (["a"], "x", grpc.StatusCode.NOT_FOUND, "container x is not valid for pod web"),
])
def test_choose_container_refuses(names: list[str], requested: str, code: grpc.StatusCode,
                                  message: str) -> None:
    with pytest.raises(Refusal) as err:
        choose_container("web", names, requested)
    assert (err.value.code, err.value.message) == (code, message)


S = 1_000_000_000


@pytest.mark.parametrize(("prev", "sample", "expected"), [
    pytest.param(None, CpuSample(10 * S, 5 * S), CpuWindow(CpuSample(10 * S, 5 * S), None),
                 id="first sample: no rate"),
    pytest.param(CpuWindow(CpuSample(10 * S, 5 * S), None), CpuSample(12 * S, 6 * S),
                 CpuWindow(CpuSample(12 * S, 6 * S), S // 2), id="half a core"),
    pytest.param(CpuWindow(CpuSample(10 * S, 5 * S), 7), CpuSample(10 * S + 1000, 6 * S),
                 CpuWindow(CpuSample(10 * S, 5 * S), 7), id="window too short: kept"),
    pytest.param(CpuWindow(CpuSample(10 * S, 5 * S), 7), CpuSample(11 * S, 5 * S),
                 CpuWindow(CpuSample(11 * S, 5 * S), 0), id="idle"),
    pytest.param(CpuWindow(CpuSample(10 * S, 5 * S), 7), CpuSample(11 * S, 1 * S),
                 CpuWindow(CpuSample(11 * S, 1 * S), None), id="counter went back"),
    pytest.param(CpuWindow(CpuSample(10 * S, 5 * S), 7), CpuSample(9 * S, 6 * S),
                 CpuWindow(CpuSample(9 * S, 6 * S), None), id="clock went back"),
    pytest.param(CpuWindow(CpuSample(0, 0), None), CpuSample(S // 4, S // 2),
                 CpuWindow(CpuSample(S // 4, S // 2), 2 * S), id="two cores"),
])
def test_next_cpu_window(prev: CpuWindow | None, sample: CpuSample,
                         expected: CpuWindow) -> None:
    assert next_cpu_window(prev, sample) == expected


# --- node_agent.execstream -------------------------------------------------------------


def unmask(frame: bytes) -> tuple[int, bytes]:
    head = decode_header(frame[:2])
    rest = frame[2:]
    length = head.length
    if length == 126:
        length, rest = int.from_bytes(rest[:2], "big"), rest[2:]
    elif length == 127:
        length, rest = int.from_bytes(rest[:8], "big"), rest[8:]
    assert head.fin and head.masked and head.extra in (4, 6, 12)
    mask, payload = rest[:4], rest[4:]
    assert len(payload) == length
    return head.opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_encode_frame_round_trips(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    frame = encode_frame(0x2, payload, b"\x01\x02\xfe\xff")
    assert unmask(frame) == (0x2, payload)
    assert len(frame) == len(payload) + 2 + 4 + (0 if size < 126 else 2 if size < 65536 else 8)


@pytest.mark.parametrize(("first", "fin", "opcode", "masked", "extra", "length"), [
    (b"\x82\x05", True, 0x2, False, 0, 5),
    (b"\x02\x7e", False, 0x2, False, 2, 126),
    (b"\x80\xff", True, 0x0, True, 12, 127),
    (b"\x88\x02", True, 0x8, False, 0, 2),
])
def test_decode_header(first: bytes, fin: bool, opcode: int, masked: bool, extra: int,
                       length: int) -> None:
    head = decode_header(first)
    assert (head.fin, head.opcode, head.masked, head.extra, head.length) == (
        fin, opcode, masked, extra, length)


def status(**fields: object) -> bytes:
    return json.dumps({"metadata": {}, **fields}).encode()


@pytest.mark.parametrize(("payload", "expected"), [
    (status(status="Success"), ExitStatus(0)),
    (status(status="Failure", reason="NonZeroExitCode", message="command terminated",
            details={"causes": [{"reason": "ExitCode", "message": "3"}]}), ExitStatus(3)),
    (status(status="Failure", reason="NonZeroExitCode", message="no code",
            details={"causes": [{"reason": "ExitCode", "message": "x"}]}),
     ExitStatus(None, "no code")),
    (status(status="Failure", reason="InternalError",
            message='exec: "nope": executable file not found in $PATH'),
     ExitStatus(None, 'exec: "nope": executable file not found in $PATH')),
    (b"not json", ExitStatus(None, "not json")),
])
def test_exit_status(payload: bytes, expected: ExitStatus) -> None:
    assert exit_status(payload) == expected


# --- the Pods proxy and navctl top ------------------------------------------------------


def node(*addresses: tuple[str, str], port: int = 0) -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = "n1"
    for kind, address in addresses:
        n.status.addresses.add(type=kind, address=address)
    n.status.daemon_endpoints.kubelet_endpoint.port = port
    return n


@pytest.mark.parametrize(("n", "expected"), [
    (node(("Hostname", "n1"), ("InternalIP", "172.30.0.11"), port=10250), "172.30.0.11:10250"),
    (node(("InternalIP", "172.30.0.12")), "172.30.0.12:10250"),
    (node(("InternalIP", "fd00::5"), port=4000), "[fd00::5]:4000"),
])
def test_node_address(n: core_pb2.Node, expected: str) -> None:
    assert node_address(n) == expected


def test_node_address_needs_an_internal_ip() -> None:
    with pytest.raises(ApiError) as err:
        node_address(node(("Hostname", "n1")))
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION


def pod_with(*statuses: core_pb2.ContainerStatus) -> core_pb2.Pod:
    pod = core_pb2.Pod()
    pod.status.container_statuses.extend(statuses)
    return pod


def waiting(name: str, reason: str, restarts: int = 0) -> core_pb2.ContainerStatus:
    s = core_pb2.ContainerStatus(name=name, restart_count=restarts)
    s.state.waiting.reason = reason
    return s


def running(name: str) -> core_pb2.ContainerStatus:
    s = core_pb2.ContainerStatus(name=name)
    s.state.running.SetInParent()
    return s


@pytest.mark.parametrize(("pod", "container", "expected"), [
    (pod_with(waiting("app", "ContainerCreating")), "", "ContainerCreating"),
    (pod_with(waiting("app", "")), "app", "ContainerCreating"),
    (pod_with(waiting("app", "ErrImagePull"), running("side")), "app", "ErrImagePull"),
    (pod_with(waiting("app", "ErrImagePull"), running("side")), "side", ""),
    (pod_with(waiting("app", "CrashLoopBackOff", restarts=2)), "app", ""),
    (pod_with(running("app")), "", ""),
    (pod_with(), "app", ""),
])
def test_waiting_reason(pod: core_pb2.Pod, container: str, expected: str) -> None:
    assert waiting_reason(pod, container) == expected


@pytest.mark.parametrize(("nano", "cpu"), [(0, "0m"), (1, "1m"), (1_000_000, "1m"),
                                           (12_300_000, "13m"), (2_000_000_000, "2000m")])
def test_format_cpu(nano: int, cpu: str) -> None:
    assert format_cpu(nano) == cpu


@pytest.mark.parametrize(("size", "memory"), [(0, "0Mi"), ((1 << 20) - 1, "0Mi"),
                                              (34 << 20, "34Mi"), ((34 << 20) + 1, "34Mi")])
def test_format_memory(size: int, memory: str) -> None:
    assert format_memory(size) == memory


@pytest.mark.parametrize(("used", "available", "expected"), [
    (0, 100, "0%"), (50, 100, "50%"), (199, 200, "99%"), (300, 200, "150%"),
    (5, 0, "<unknown>")])
def test_percent(used: int, available: int, expected: str) -> None:
    assert percent(used, available) == expected


@pytest.mark.parametrize("lines", [0, 1, 3, 2999, 3000, 5000])
def test_read_tail_reads_enough_of_the_end(tmp_path: object, lines: int) -> None:
    from pathlib import Path

    from node_agent.server import _read_tail

    path = Path(str(tmp_path)) / "0.log"
    records = []
    for i in range(3000):  # every third line cut in two partial records: ~200 KiB
        if i % 3:
            records.append(rec(T0, "stdout", "F", f"line {i} " + "y" * 40))
        else:
            records += [rec(T0, "stdout", "P", f"line {i} "), rec(T1, "stdout", "F", "y" * 40)]
    path.write_bytes(b"".join(records))
    data, size = _read_tail(path, lines)
    assert size == path.stat().st_size
    assert select(parse(data), tail=lines) == select(parse(path.read_bytes()), tail=lines)
    assert len(data) < size or lines >= 2999
    assert _read_tail(path.with_name("absent.log"), 3) == (b"", 0)

"""etcdctl compatibility: Debian's etcdctl (API v3) against a running 3-member store.

Every test drives the real ``etcdctl`` binary with ``--endpoints`` set to all three members
and checks what it prints, mostly with ``-w json`` (etcdctl 3.4 formats, noted where they
surprise: keys and values are base64, zero-valued fields such as ``succeeded: false`` or a
PUT event's ``type`` are omitted, lease commands print a flattened header, ``txn -i`` prints
its prompts on stdout, plain ``endpoint health`` writes to stderr).

Long-running commands (``watch``, ``lease keep-alive``) run as subprocesses whose stdout lines
are read with a deadline by :class:`StreamingCommand`; nothing sleeps, and every subprocess is
killed and reaped when its test ends.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.store.cluster import StoreCluster, wait_for

pytestmark = pytest.mark.etcdctl

COMMAND_TIMEOUT = 20.0  # seconds for one short etcdctl command (dial + request + retries)
EVENT_TIMEOUT = 15.0  # seconds to wait for an expected watch event or keep-alive line


# -- running etcdctl -----------------------------------------------------------------------


def b64(data: str) -> str:
    """``data`` as etcdctl's JSON output encodes keys and values."""
    return base64.b64encode(data.encode()).decode()


def unb64(data: str) -> str:
    return base64.b64decode(data).decode()


def last_json(stdout: str) -> Any:
    """The JSON document on the last non-empty line (``txn -i`` prints prompts before it)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "etcdctl printed nothing"
    return json.loads(lines[-1])


@dataclass(frozen=True)
class Etcdctl:
    """Runs ``etcdctl`` (API v3) against the given endpoints; every run has a timeout."""

    binary: str
    endpoints: tuple[str, ...]

    def argv(self, *args: str) -> list[str]:
        return [
            self.binary, f"--endpoints={','.join(self.endpoints)}",
            "--dial-timeout=5s", "--command-timeout=10s", *args,
        ]

    @staticmethod
    def env() -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
        env["ETCDCTL_API"] = "3"
        return env

    def run(self, *args: str, stdin: str | None = None, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        """Run one command to completion; on timeout subprocess.run kills and reaps it."""
        proc = subprocess.run(
            self.argv(*args), input=stdin, capture_output=True, text=True,
            env=self.env(), timeout=COMMAND_TIMEOUT,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
        if check:
            assert proc.returncode == 0, (
                f"etcdctl {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def out(self, *args: str, stdin: str | None = None) -> list[str]:
        """Stdout lines of a successful command in the simple format."""
        return self.run(*args, stdin=stdin).stdout.splitlines()

    def json(self, *args: str, stdin: str | None = None) -> Any:
        """The parsed ``-w json`` output of a successful command."""
        return last_json(self.run(*args, "-w", "json", stdin=stdin).stdout)

    def put(self, key: str, value: str, *flags: str) -> int:
        """Put and return the revision of the write."""
        return int(self.json("put", key, value, *flags)["header"]["revision"])

    def get(self, key: str, *flags: str) -> dict[str, Any]:
        return dict(self.json("get", key, *flags))

    def values(self, key: str, *flags: str) -> dict[str, str]:
        """{key: value} of a get, decoded."""
        return {unb64(kv["key"]): unb64(kv.get("value", ""))
                for kv in self.get(key, *flags).get("kvs", [])}

    def stream(self, *args: str) -> StreamingCommand:
        return StreamingCommand(self.argv(*args), self.env())


class StreamingCommand:
    """A long-running etcdctl whose stdout lines are read one by one with a deadline.

    Two daemon threads drain stdout (into a queue; None marks EOF) and stderr (kept for
    failure messages), so the child never blocks on a full pipe. ``close`` kills and reaps it.
    """

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._threads = [
            threading.Thread(target=self._drain_stdout, daemon=True),
            threading.Thread(target=self._drain_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _drain_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line.rstrip("\n"))

    def describe(self) -> str:
        tail = "\n".join(self._stderr[-10:])
        state = "running" if self.proc.poll() is None else f"exit status {self.proc.returncode}"
        return f"{' '.join(self.argv[4:])} (pid {self.proc.pid}, {state}); stderr:\n{tail}"

    def next_line(self, timeout: float) -> str | None:
        """The next non-empty stdout line within ``timeout`` seconds; None if it exited."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise queue.Empty
            line = self._lines.get(timeout=remaining)
            if line is None:
                self._lines.put(None)  # stay at EOF for later callers
                return None
            if line.strip():
                return line

    def expect_line_or_eof(self, timeout: float = EVENT_TIMEOUT) -> str | None:
        """The next line, None at exit; fail if neither comes within ``timeout`` seconds."""
        try:
            return self.next_line(timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout}s from {self.describe()}") from None

    def expect_line(self, timeout: float = EVENT_TIMEOUT) -> str:
        line = self.expect_line_or_eof(timeout)
        assert line is not None, f"exited early: {self.describe()}"
        return line

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout}s: {self.describe()}") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> StreamingCommand:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


StartWatch = Callable[..., "Watcher"]
"""The ``watch`` fixture: ``watch(KEY, *flags)`` starts a :class:`Watcher`."""


@dataclass(frozen=True)
class WatchEvent:
    """One event of ``etcdctl watch -w json`` (PUT events carry no ``type`` field)."""

    type: str
    key: str
    value: str
    mod_revision: int

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> WatchEvent:
        kv = raw["kv"]
        return cls(
            type={0: "PUT", 1: "DELETE"}[raw.get("type", 0)],
            key=unb64(kv["key"]), value=unb64(kv.get("value", "")),
            mod_revision=int(kv["mod_revision"]),
        )


class Watcher:
    """``etcdctl watch ... -w json`` read as a sequence of events."""

    def __init__(self, stream: StreamingCommand) -> None:
        self.stream = stream
        self._pending: list[WatchEvent] = []

    def _read_response(self, timeout: float) -> None:
        line = self.stream.next_line(timeout)
        assert line is not None, f"watch exited: {self.stream.describe()}"
        response = json.loads(line)
        assert not response.get("Canceled"), f"watch canceled: {line}"
        self._pending.extend(WatchEvent.parse(e) for e in response.get("Events") or [])

    def events(self, n: int, after_revision: int = 0, timeout: float = EVENT_TIMEOUT
               ) -> list[WatchEvent]:
        """The next ``n`` events with mod_revision > ``after_revision`` (earlier ones dropped)."""
        deadline = time.monotonic() + timeout
        got: list[WatchEvent] = []
        while len(got) < n:
            if not self._pending:
                try:
                    self._read_response(deadline - time.monotonic())
                except queue.Empty:
                    raise AssertionError(
                        f"got {got}, still waiting for {n - len(got)} more events after "
                        f"{timeout}s from {self.stream.describe()}") from None
                continue
            event = self._pending.pop(0)
            if event.mod_revision > after_revision:
                got.append(event)
        return got

    def wait_established(self, ctl: Etcdctl, probe_key: str, timeout: float = EVENT_TIMEOUT
                         ) -> int:
        """Put ``probe_key`` until this watcher reports it; return the last probe's revision.

        etcdctl says nothing when its watch is created, so a put that is seen proves the watch
        is live. Later probe events may still be queued: read on with ``after_revision``.
        """
        deadline = time.monotonic() + timeout
        for n in itertools.count():
            revision = ctl.put(probe_key, f"probe-{n}")
            wait_until = min(time.monotonic() + 0.5, deadline)
            while self._pending or time.monotonic() < wait_until:
                if not self._pending:
                    try:
                        self._read_response(wait_until - time.monotonic())
                    except queue.Empty:
                        break
                    continue
                if self._pending.pop(0).key == probe_key:
                    return revision
            assert time.monotonic() < deadline, (
                f"watch never reported {probe_key} within {timeout}s: {self.stream.describe()}")
        raise AssertionError("itertools.count() ended")


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ctl(store: StoreCluster) -> Etcdctl:
    """etcdctl pointed at all members of the module's cluster."""
    binary = shutil.which("etcdctl")
    if binary is None:
        pytest.fail("etcdctl is not installed (Debian package etcd-client; run make deps)")
    return Etcdctl(binary, tuple(store.endpoints))


@pytest.fixture
def p(prefix: bytes) -> str:
    """The test's unique key prefix as text, e.g. ``/t/0123abcd4567/``."""
    return prefix.decode()


@pytest.fixture
def watch(ctl: Etcdctl) -> Iterator[StartWatch]:
    """Start ``etcdctl watch ARGS -w json``; every watcher started is killed at teardown."""
    started: list[StreamingCommand] = []

    def start(*args: str) -> Watcher:
        stream = ctl.stream("watch", *args, "-w", "json")
        started.append(stream)
        return Watcher(stream)

    yield start
    for stream in started:
        stream.close()


def lease_hex(lease_id: int) -> str:
    """A lease ID as etcdctl prints it in text (16 hex digits) and takes it as an argument.

    JSON output gives lease IDs as decimal numbers.
    """
    return f"{lease_id:016x}"


# -- put / get -------------------------------------------------------------------------------


def test_put_then_get(ctl: Etcdctl, p: str) -> None:
    key = p + "k"
    assert ctl.out("put", key, "v1") == ["OK"]
    assert ctl.out("get", key) == [key, "v1"]
    r1 = ctl.put(key, "v2")
    (kv,) = ctl.get(key)["kvs"]
    assert (unb64(kv["key"]), unb64(kv["value"])) == (key, "v2")
    assert kv["version"] == 2
    assert kv["mod_revision"] == r1
    assert kv["create_revision"] < r1


def test_get_missing_key_prints_nothing(ctl: Etcdctl, p: str) -> None:
    assert ctl.run("get", p + "absent").stdout == ""
    reply = ctl.get(p + "absent")
    assert reply.get("count", 0) == 0
    assert "kvs" not in reply
    assert reply["header"]["revision"] > 0


def test_get_prefix(ctl: Etcdctl, p: str) -> None:
    for name in ("b", "a", "c"):
        ctl.put(p + name, "value-" + name)
    ctl.put(p.rstrip("/") + "0", "outside")  # sorts right after the prefix, not under it
    reply = ctl.get(p, "--prefix")
    assert reply["count"] == 3
    assert [unb64(kv["key"]) for kv in reply["kvs"]] == [p + "a", p + "b", p + "c"]
    assert ctl.out("get", p, "--prefix") == [
        p + "a", "value-a", p + "b", "value-b", p + "c", "value-c"]


def test_get_at_revision_returns_old_value(ctl: Etcdctl, p: str) -> None:
    key = p + "k"
    r1 = ctl.put(key, "old")
    r2 = ctl.put(key, "new")
    ctl.run("del", key)
    (kv,) = ctl.get(key, f"--rev={r1}")["kvs"]
    assert (unb64(kv["value"]), kv["mod_revision"], kv["version"]) == ("old", r1, 1)
    assert ctl.out("get", key, f"--rev={r2}") == [key, "new"]
    assert ctl.values(key) == {}


def test_get_at_future_revision_fails(ctl: Etcdctl, p: str) -> None:
    current = ctl.get(p)["header"]["revision"]
    proc = ctl.run("get", p, f"--rev={current + 1_000_000}", check=False)
    assert proc.returncode != 0
    assert "future revision" in proc.stderr


def test_get_keys_only(ctl: Etcdctl, p: str) -> None:
    ctl.put(p + "a", "1")
    ctl.put(p + "b", "2")
    reply = ctl.get(p, "--prefix", "--keys-only")
    assert [unb64(kv["key"]) for kv in reply["kvs"]] == [p + "a", p + "b"]
    assert all("value" not in kv for kv in reply["kvs"])
    assert [line for line in ctl.out("get", p, "--prefix", "--keys-only") if line] == [
        p + "a", p + "b"]


def test_get_limit(ctl: Etcdctl, p: str) -> None:
    for name in "abc":
        ctl.put(p + name, name)
    reply = ctl.get(p, "--prefix", "--limit=2")
    assert [unb64(kv["key"]) for kv in reply["kvs"]] == [p + "a", p + "b"]
    assert reply["more"] is True
    assert reply["count"] == 3
    assert ctl.get(p, "--prefix", "--limit=3").get("more", False) is False


# -- del -------------------------------------------------------------------------------------


def test_del_single_key(ctl: Etcdctl, p: str) -> None:
    ctl.put(p + "k", "v")
    ctl.put(p + "k2", "v")  # shares the first key as a prefix, must survive
    assert ctl.out("del", p + "k") == ["1"]
    assert ctl.values(p, "--prefix") == {p + "k2": "v"}
    assert ctl.out("del", p + "k") == ["0"]
    assert ctl.json("del", p + "k").get("deleted", 0) == 0


def test_del_prefix(ctl: Etcdctl, p: str) -> None:
    for name in "abc":
        ctl.put(p + name, name)
    outside = p.rstrip("/") + "0"
    ctl.put(outside, "stays")
    assert ctl.out("del", p, "--prefix") == ["3"]
    assert ctl.values(p, "--prefix") == {}
    assert ctl.values(outside) == {outside: "stays"}


def test_del_prev_kv(ctl: Etcdctl, p: str) -> None:
    r1 = ctl.put(p + "a", "first")
    reply = ctl.json("del", p + "a", "--prev-kv")
    assert reply["deleted"] == 1
    (prev,) = reply["prev_kvs"]
    assert (unb64(prev["key"]), unb64(prev["value"]), prev["mod_revision"]) == (
        p + "a", "first", r1)
    assert reply["header"]["revision"] > r1
    ctl.put(p + "b", "second")
    assert ctl.out("del", p + "b", "--prev-kv") == ["1", p + "b", "second"]


# -- txn -------------------------------------------------------------------------------------


def txn_input(compares: list[str], success: list[str], failure: list[str]) -> str:
    """What ``etcdctl txn -i`` reads: three blocks of lines, each ended by an empty line."""
    return "".join("".join(line + "\n" for line in block) + "\n"
                   for block in (compares, success, failure))


def txn_lines(stdout: str) -> list[str]:
    """Simple-format txn output without the interactive prompts and blank lines."""
    prompts = ("compares:", "success requests", "failure requests")
    return [line for line in stdout.splitlines() if line and not line.startswith(prompts)]


def test_txn_success_branch(ctl: Etcdctl, p: str) -> None:
    key, flag = p + "k", p + "failure-ran"
    r1 = ctl.put(key, "v1")
    stdin = txn_input(
        [f'value("{key}") = "v1"', f'version("{key}") = "1"', f'mod("{key}") = "{r1}"'],
        [f"put {key} v2", f"get {key}"],
        [f"put {flag} yes"],
    )
    proc = ctl.run("txn", "-i", stdin=stdin)
    assert txn_lines(proc.stdout) == ["SUCCESS", "OK", key, "v2"]
    assert ctl.values(p, "--prefix") == {key: "v2"}


def test_txn_failure_branch(ctl: Etcdctl, p: str) -> None:
    key, flag = p + "k", p + "failure-ran"
    ctl.put(key, "v1")
    stdin = txn_input(
        [f'value("{key}") = "v1"', f'version("{key}") > "1"'],  # the second one is false
        [f"put {key} v2"],
        [f"put {flag} yes", f"get {key}"],
    )
    proc = ctl.run("txn", "-i", stdin=stdin)
    assert txn_lines(proc.stdout) == ["FAILURE", "OK", key, "v1"]
    assert ctl.values(p, "--prefix") == {key: "v1", flag: "yes"}


def test_txn_create_if_absent_json(ctl: Etcdctl, p: str) -> None:
    """The Kubernetes API server's create: compare create_revision = 0, else read."""
    key = p + "obj"
    stdin = txn_input([f'create("{key}") = "0"'], [f"put {key} first"], [f"get {key}"])
    created = ctl.json("txn", "-i", stdin=stdin)
    assert created["succeeded"] is True
    assert list(created["responses"][0]["Response"]) == ["ResponsePut"]
    rev = created["header"]["revision"]

    again = ctl.json("txn", "-i", stdin=stdin.replace("first", "second"))
    assert again.get("succeeded", False) is False  # etcdctl omits false
    (kv,) = again["responses"][0]["Response"]["ResponseRange"]["kvs"]
    assert (unb64(kv["value"]), kv["create_revision"]) == ("first", rev)
    assert ctl.values(key) == {key: "first"}


def test_txn_delete_in_branch(ctl: Etcdctl, p: str) -> None:
    ctl.put(p + "a", "1")
    ctl.put(p + "b", "2")
    stdin = txn_input([f'value("{p}a") < "2"'], [f"del {p} --prefix"], [])
    assert txn_lines(ctl.run("txn", "-i", stdin=stdin).stdout) == ["SUCCESS", "2"]
    assert ctl.values(p, "--prefix") == {}


# -- watch -----------------------------------------------------------------------------------


def test_watch_key(ctl: Etcdctl, watch: StartWatch, p: str) -> None:
    key = p + "k"
    w = watch(key)
    after = w.wait_established(ctl, key)
    r_put = ctl.put(key, "v1")
    ctl.put(key + "x", "not watched")  # same prefix, other key
    ctl.run("del", key)
    events = w.events(2, after_revision=after)
    assert [(e.type, e.key, e.value) for e in events] == [
        ("PUT", key, "v1"), ("DELETE", key, "")]
    assert events[0].mod_revision == r_put
    assert events[1].mod_revision > r_put


def test_watch_prefix(ctl: Etcdctl, watch: StartWatch, p: str) -> None:
    w = watch(p, "--prefix")
    after = w.wait_established(ctl, p + "probe")
    ctl.put(p + "a", "1")
    ctl.put(p.rstrip("/") + "0", "outside")
    ctl.put(p + "b", "2")
    ctl.run("del", p + "a")
    ctl.put(p + "end", "3")
    events = w.events(4, after_revision=after)
    assert [(e.type, e.key, e.value) for e in events] == [
        ("PUT", p + "a", "1"), ("PUT", p + "b", "2"), ("DELETE", p + "a", ""),
        ("PUT", p + "end", "3")]
    revisions = [e.mod_revision for e in events]
    assert revisions == sorted(revisions) and len(set(revisions)) == 4


def test_watch_from_revision_replays_history(ctl: Etcdctl, watch: StartWatch, p: str) -> None:
    key = p + "k"
    ctl.put(key, "v1")
    r2 = ctl.put(key, "v2")
    r3 = ctl.put(key, "v3")
    w = watch(key, f"--rev={r2}")
    history = w.events(2)
    assert [(e.value, e.mod_revision) for e in history] == [("v2", r2), ("v3", r3)]
    r4 = ctl.put(key, "v4")
    (live,) = w.events(1)
    assert (live.type, live.value, live.mod_revision) == ("PUT", "v4", r4)


def test_watch_prefix_from_revision(ctl: Etcdctl, watch: StartWatch, p: str) -> None:
    start = ctl.put(p + "a", "1")
    ctl.put(p + "b", "2")
    ctl.run("del", p + "a")
    w = watch(p, "--prefix", f"--rev={start}")
    assert [(e.type, e.key) for e in w.events(3)] == [
        ("PUT", p + "a"), ("PUT", p + "b"), ("DELETE", p + "a")]


# -- lease -----------------------------------------------------------------------------------


def test_lease_grant_timetolive_revoke(ctl: Etcdctl, p: str) -> None:
    granted = ctl.json("lease", "grant", "60")
    lease, ttl = granted["ID"], granted["TTL"]
    assert lease > 0 and ttl == 60
    assert ctl.out("put", p + "leased", "v", f"--lease={lease_hex(lease)}") == ["OK"]
    ctl.put(p + "plain", "v")

    info = ctl.json("lease", "timetolive", lease_hex(lease), "--keys")
    assert info["id"] == lease
    assert info["granted-ttl"] == 60
    assert 0 < info["ttl"] <= 60
    assert [unb64(k) for k in info["keys"]] == [p + "leased"]
    (kv,) = ctl.get(p + "leased")["kvs"]
    assert kv["lease"] == lease

    assert ctl.out("lease", "revoke", lease_hex(lease)) == [f"lease {lease_hex(lease)} revoked"]
    assert ctl.values(p, "--prefix") == {p + "plain": "v"}
    gone = ctl.json("lease", "timetolive", lease_hex(lease), "--keys")
    assert gone["ttl"] == -1
    assert ctl.out("lease", "timetolive", lease_hex(lease)) == [
        f"lease {lease_hex(lease)} already expired"]
    again = ctl.run("lease", "revoke", lease_hex(lease), check=False)
    assert again.returncode != 0
    assert "lease not found" in again.stderr


def test_lease_keep_alive_once(ctl: Etcdctl) -> None:
    lease = ctl.json("lease", "grant", "30")["ID"]
    reply = ctl.json("lease", "keep-alive", "--once", lease_hex(lease))
    assert (reply["ID"], reply["TTL"]) == (lease, 30)
    assert ctl.out("lease", "keep-alive", "--once", lease_hex(lease)) == [
        f"lease {lease_hex(lease)} keepalived with TTL(30)"]
    ctl.run("lease", "revoke", lease_hex(lease))


def test_lease_keep_alive_keeps_key_past_ttl(ctl: Etcdctl, p: str) -> None:
    granted = ctl.json("lease", "grant", "2")
    granted_at = time.monotonic()
    lease, ttl = granted["ID"], granted["TTL"]
    key = p + "session"
    ctl.put(key, "alive", f"--lease={lease_hex(lease)}")
    with ctl.stream("lease", "keep-alive", lease_hex(lease), "-w", "json") as keeper:
        renewals = 0
        while time.monotonic() - granted_at < 2 * ttl + 1:  # each renewal is an awaited line
            reply = json.loads(keeper.expect_line())
            assert (reply["ID"], reply["TTL"]) == (lease, ttl)
            renewals += 1
        assert renewals >= 3
        assert ctl.values(key) == {key: "alive"}
        assert ctl.json("lease", "timetolive", lease_hex(lease))["ttl"] > 0
    wait_for(lambda: ctl.values(key) == {}, ttl + 15, f"{key} to expire with its lease")
    assert ctl.json("lease", "timetolive", lease_hex(lease))["ttl"] == -1


def test_lease_keep_alive_exits_when_revoked(ctl: Etcdctl) -> None:
    lease = ctl.json("lease", "grant", "6")["ID"]  # renewed every TTL/3 = 2 s
    with ctl.stream("lease", "keep-alive", lease_hex(lease)) as keeper:
        assert keeper.expect_line() == f"lease {lease_hex(lease)} keepalived with TTL(6)"
        ctl.run("lease", "revoke", lease_hex(lease))
        lines = []
        while (line := keeper.expect_line_or_eof()) is not None:
            lines.append(line)
        assert lines and lines[-1] == f"lease {lease_hex(lease)} expired or revoked."
        assert keeper.wait_exit(EVENT_TIMEOUT) == 0


# -- cluster ---------------------------------------------------------------------------------


def host_port(url: str) -> str:
    return url.removeprefix("http://")


def test_member_list(ctl: Etcdctl, store: StoreCluster) -> None:
    reply = ctl.json("member", "list")
    members = {m["name"]: m for m in reply["members"]}
    assert sorted(members) == ["s1", "s2", "s3"]
    for i, name in enumerate(store.names):
        m = members[name]
        assert m["clientURLs"] == [f"http://{store.endpoints[i]}"], m
        assert len(m["peerURLs"]) == 1 and m["peerURLs"][0].endswith(f":{store.peer_ports[i]}")
        assert not m.get("isLearner", False)
    ids = {m["ID"] for m in reply["members"]}
    assert len(ids) == 3 and 0 not in ids
    assert reply["header"]["member_id"] in ids

    lines = ctl.out("member", "list")
    assert len(lines) == 3
    for line in lines:
        member_id, status, name, _peer, client, learner = line.split(", ")
        assert int(member_id, 16) == members[name]["ID"]
        assert (status, learner) == ("started", "false")
        assert client == f"http://{store.endpoints[store.names.index(name)]}"


def member_ids(ctl: Etcdctl) -> set[int]:
    return {m["ID"] for m in ctl.json("member", "list")["members"]}


def test_endpoint_status_agrees_on_one_leader(ctl: Etcdctl, store: StoreCluster) -> None:
    statuses = ctl.json("endpoint", "status")
    assert sorted(s["Endpoint"] for s in statuses) == sorted(store.endpoints)
    leaders = {s["Status"]["leader"] for s in statuses}
    assert len(leaders) == 1, statuses
    (leader,) = leaders
    own_ids = [s["Status"]["header"]["member_id"] for s in statuses]
    assert set(own_ids) == member_ids(ctl)
    assert own_ids.count(leader) == 1
    (leading,) = [s["Endpoint"] for s in statuses if s["Status"]["header"]["member_id"] == leader]
    assert leading == store.endpoints[store.leader_index()]
    assert len({s["Status"]["header"]["cluster_id"] for s in statuses}) == 1
    assert all(s["Status"]["raftTerm"] >= 1 and s["Status"]["raftIndex"] >= 1
               for s in statuses)


def test_endpoint_status_of_whole_cluster_uses_member_client_urls(
        store: StoreCluster, ctl: Etcdctl) -> None:
    one = Etcdctl(ctl.binary, (store.endpoints[0],))
    statuses = one.json("endpoint", "status", "--cluster")
    assert sorted(host_port(s["Endpoint"]) for s in statuses) == sorted(store.endpoints)


def test_endpoint_health(ctl: Etcdctl, store: StoreCluster) -> None:
    health = ctl.json("endpoint", "health")
    assert sorted(h["endpoint"] for h in health) == sorted(store.endpoints)
    assert all(h["health"] is True for h in health), health
    proc = ctl.run("endpoint", "health")
    # etcdctl 3.4 prints the plain health report on stderr
    healthy = [line for line in proc.stderr.splitlines() if " is healthy: " in line]
    assert sorted(line.split(" ")[0] for line in healthy) == sorted(store.endpoints)

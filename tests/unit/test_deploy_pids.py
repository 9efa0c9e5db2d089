"""How the local cluster tooling recognises its processes (deploy/nodeenv.py): a pid file
counts only while its process runs with the expected command line; a zombie does not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from deploy.nodeenv import command_line, pid_in_file


def test_a_running_process_is_recognised_by_its_markers(tmp_path: Path) -> None:
    marker = f"marker-{os.getpid()}"
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; print(flush=True); sys.stdin.read()", marker],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        child.stdout.readline()  # it runs its own command line now, not ours
        pid_file = tmp_path / "child.pid"
        pid_file.write_text(str(child.pid))
        own = command_line(child.pid)
        assert own is not None and marker.encode() in own
        assert pid_in_file(pid_file, marker.encode()) == child.pid
        assert pid_in_file(pid_file, b"no-such-marker") is None
    finally:
        child.communicate(b"")  # stdin closed: the child exits


def test_gone_zombie_and_garbage_count_as_not_running(tmp_path: Path) -> None:
    child = subprocess.Popen(["true"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
    try:
        assert command_line(child.pid) is None  # a zombie
    finally:
        child.wait()
    assert command_line(child.pid) is None  # gone
    bad = tmp_path / "bad.pid"
    bad.write_text("not a pid")
    assert pid_in_file(bad, b"x") is None
    assert pid_in_file(tmp_path / "absent.pid", b"x") is None

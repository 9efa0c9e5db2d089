"""``navarch up`` / ``navarch down`` end to end: a 2-node cluster on a real etcd, a
Deployment running on real containers, then nothing left behind.

The cluster uses its own addresses and ports (hidden flags of ``up``), so a user's
``make up`` cluster on 172.30.0.0/24 may run meanwhile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.store.cluster import REPO

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, containerd)"),
    pytest.mark.skipif(any(shutil.which(b) is None for b in
                           ("containerd", "runc", "docker-registry", "etcd")),
                       reason="containerd, runc, docker-registry or etcd missing (make deps)"),
]

PREFIX, SUBNET = "nvl", "172.31.242.0/24"
FLAGS = ["--prefix", PREFIX, "--subnet", SUBNET, "--registry-port", "5092",
         "--api-port", "16443", "--port-offset", "7"]


def navarch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "navarch", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=timeout, check=False)


def navctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "navarch._navctl", "--server",
                           "127.0.0.1:16443", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=60, check=False)


def leftovers(run_dir: Path) -> list[str]:
    """Everything of the cluster still on the machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z" and (str(run_dir) in cmd or f"{PREFIX}-node-" in cmd):
                found.append(f"process {entry.name}: {cmd[:120]}")
    netns = Path("/var/run/netns")
    found += [f"netns {n}" for n in (os.listdir(netns) if netns.is_dir() else [])
              if n.startswith(f"{PREFIX}-")]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [f"link {ln.split(':')[1].strip()}" for ln in links.splitlines()
              if f" {PREFIX}" in ln]
    found += [f"mount {ln.split()[4]}" for ln in
              Path("/proc/self/mountinfo").read_text().splitlines() if str(run_dir) in ln]
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"*/{PREFIX}-node-*")]
    if run_dir.exists():
        found.append(f"directory {run_dir}")
    return found


def test_up_runs_a_deployment_on_real_nodes_and_down_leaves_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    config = tmp_path / "navctl.json"
    os.environ["NAVARCH_CONFIG"] = str(config)
    try:
        up = navarch("up", "--run-dir", str(run_dir), "--nodes", "2", "--store", "etcd",
                     *FLAGS)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        written = json.loads(config.read_text())
        assert written["server"] == "127.0.0.1:16443" and written["token"]
        assert config.stat().st_mode & 0o777 == 0o600  # the admin's token
        # RBAC is on: navctl is the admin (system:masters), nobody else is anonymous-trusted
        assert navctl("auth", "can-i", "delete", "nodes").stdout == "yes\n"
        anonymous = subprocess.run(
            [sys.executable, "-m", "navarch._navctl", "--server", "127.0.0.1:16443", "get",
             "pods"], cwd=REPO, text=True, capture_output=True, timeout=60, check=False,
            env=dict(os.environ, NAVARCH_CONFIG=str(tmp_path / "none.json")))
        assert anonymous.returncode == 1
        assert 'User "system:anonymous" cannot list resource "pods"' in anonymous.stderr
        nodes = navctl("get", "nodes")
        assert [ln.split()[:2] for ln in nodes.stdout.splitlines()[1:]] == \
            [["node-1", "Ready"], ["node-2", "Ready"]]
        images = navarch("images", "--run-dir", str(run_dir)).stdout.split()
        web = next(ref for ref in images if "/navarch/web:1" in ref)
        assert web.startswith("172.31.242.1:5092/")
        manifest = tmp_path / "web.yaml"
        manifest.write_text(f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: default}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: {web}
        readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}
""")
        assert navctl("apply", "-f", str(manifest)).returncode == 0
        status = navctl("rollout", "status", "deployment/web", "--request-timeout", "120s")
        assert status.returncode == 0, status.stderr
        pods = navctl("get", "pods", "-o", "wide").stdout.splitlines()[1:]
        assert len(pods) == 2 and all(" Running " in p for p in pods)
        assert {p.split()[6] for p in pods} == {"node-1", "node-2"}
    finally:
        down = navarch("down", "--run-dir", str(run_dir))
        os.environ.pop("NAVARCH_CONFIG", None)
    assert down.returncode == 0, down.stdout[-2000:] + down.stderr[-2000:]
    deadline = time.monotonic() + 10  # processes killed by down may take a moment to go
    while leftovers(run_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(run_dir) == []

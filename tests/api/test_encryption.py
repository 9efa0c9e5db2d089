"""Encryption at rest against a real API server and store (both backends): Secrets reach
the store sealed, come back in clear, survive a key rotation, and a server without the
key refuses to serve them instead of serving ciphertext."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import uuid
from pathlib import Path

import navarch
from services.apiserver.storage import EtcdStore
from tests.api.harness import ApiServerProcess
from tests.api.util import configmap, obj
from tests.store.cluster import StoreCluster

KEY1 = base64.b64encode(b"a" * 32).decode()
KEY2 = base64.b64encode(b"b" * 32).decode()


def write_config(path: Path, *providers: str) -> Path:
    path.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
                    "resources:\n- resources: [secrets]\n  providers:\n"
                    + "".join(f"  - {p}\n" for p in providers))
    return path


def aesgcm(*keys: tuple[str, str]) -> str:
    listed = ", ".join(f"{{name: {n}, secret: {s}}}" for n, s in keys)
    return f"aesgcm: {{keys: [{listed}]}}"


async def raw(store: StoreCluster, key: str) -> bytes:
    """What the store holds, read past the API server."""
    client = EtcdStore(store.endpoints)
    try:
        kv = await client.get(key.encode())
        assert kv is not None
        return kv.value
    finally:
        await client.close()


async def test_secrets_are_sealed_in_the_store_and_keys_rotate(store: StoreCluster,
                                                               tmp_path: Path) -> None:
    ns = "default"
    name, cm = f"db-{uuid.uuid4().hex[:8]}", f"cm-{uuid.uuid4().hex[:8]}"
    key = f"/registry/secrets/{ns}/{name}"
    secret = obj({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                  "stringData": {"password": "hunter2-" + name}})

    def server(config: Path) -> ApiServerProcess:
        proc = ApiServerProcess(store.endpoints, tmp_path / "api",
                                ["--encryption-provider-config", str(config)])
        proc.start()
        return proc

    first = server(write_config(tmp_path / "one.yaml", aesgcm(("key1", KEY1)), "identity: {}"))
    try:
        async with navarch.Client(first.address, timeout=20) as client:
            await client.secrets(ns).create(secret)
            await client.configmaps(ns).create(configmap(cm, ns))
            got = await client.secrets(ns).get(name)
            assert got.data["password"] == f"hunter2-{name}".encode()
        stored = await raw(store, key)
        assert stored.startswith(b"k8s:enc:aesgcm:v1:key1:")
        assert b"hunter2" not in stored
        assert b"k8s:enc" not in await raw(store, f"/registry/configmaps/{ns}/{cm}")
    finally:
        first.stop()

    # the new key first: old values still read; a write re-seals with the new key
    rotated = server(write_config(tmp_path / "two.yaml",
                                  aesgcm(("key2", KEY2), ("key1", KEY1))))
    try:
        async with navarch.Client(rotated.address, timeout=20) as client:
            got = await client.secrets(ns).get(name)
            assert got.data["password"] == f"hunter2-{name}".encode()
            got.metadata.labels["rotated"] = "yes"
            await client.secrets(ns).update(got)
        assert (await raw(store, key)).startswith(b"k8s:enc:aesgcm:v1:key2:")
    finally:
        rotated.stop()

    # a server without the key stops, naming the object, rather than serve ciphertext
    blind = ApiServerProcess(store.endpoints, tmp_path / "api", [
        "--encryption-provider-config", str(write_config(tmp_path / "three.yaml",
                                                         "identity: {}"))])
    proc = await asyncio.create_subprocess_exec(*blind.command(),
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert f"cannot decrypt {key}: no configured provider reads" in out.decode()


def test_a_bad_config_stops_the_server_with_the_field(store: StoreCluster,
                                                      tmp_path: Path) -> None:
    bad = write_config(tmp_path / "bad.yaml", "aesgcm: {keys: [{name: k, secret: c2hvcnQ=}]}")
    done = subprocess.run([sys.executable, "-m", "navarch", "apiserver", "--store-endpoints",
                           ",".join(store.endpoints), "--encryption-provider-config", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "providers[0].aesgcm.keys[0].secret: an AES key is 16, 24 or 32 bytes, got 5" \
        in done.stderr

"""The local cluster's images: built here from Debian's files, served by a local registry.

No public registry is reachable from these machines, so every image a local cluster runs
is made on the spot and pushed to Debian's ``docker-registry`` (registry API v2, plain
HTTP), from which each node's containerd pulls it like any other image:

- ``<registry>/navarch/pause:3.9``: the sandbox image, a static ``pause`` built from
  ``deploy/images/pause.c``;
- ``<registry>/navarch/busybox:<version>``: Debian's ``busybox-static`` with a link for
  each applet (sh, httpd, wget, nc, sleep, …) in ``/bin``;
- ``<registry>/navarch/web:1`` and ``:2``: busybox's httpd on port 8080 serving a page that
  names its version, and ``/cgi-bin/hostname``, which answers with the pod's name.

Layers are written byte-for-byte reproducibly (fixed owners and times, gzip without a
timestamp), so a rebuild pushes nothing new and a digest names the same content on every
machine.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUSYBOX = Path("/bin/busybox")
PAUSE_SOURCE = HERE / "images" / "pause.c"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
WEB_PORT = 8080
PAUSE_TAG = "3.9"


@dataclass(frozen=True)
class FileEntry:
    """One entry of a layer: a regular file (``data``), a directory or a symlink (``link``)."""

    path: str
    data: bytes | None = None
    link: str | None = None
    mode: int = 0o644


@dataclass(frozen=True)
class Layer:
    """A gzipped tar layer with its two digests (compressed blob, uncompressed diff id)."""

    blob: bytes
    diff_id: str

    @property
    def digest(self) -> str:
        return _sha256(self.blob)


@dataclass(frozen=True)
class Image:
    """An image to push: ``repository`` (``navarch/busybox``), ``tag``, layers, config."""

    repository: str
    tag: str
    layers: tuple[Layer, ...]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ("PATH=/bin:/usr/bin:/sbin:/usr/sbin",)
    working_dir: str = "/"
    exposed_ports: tuple[int, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    def reference(self, registry: str) -> str:
        return f"{registry}/{self.repository}:{self.tag}"

    def config_blob(self) -> bytes:
        config: dict[str, object] = {"Env": list(self.env), "WorkingDir": self.working_dir}
        if self.entrypoint:
            config["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            config["Cmd"] = list(self.cmd)
        if self.exposed_ports:
            config["ExposedPorts"] = {f"{p}/tcp": {} for p in self.exposed_ports}
        if self.labels:
            config["Labels"] = dict(self.labels)
        body = {
            "architecture": _architecture(),
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [la.diff_id for la in self.layers]},
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _architecture() -> str:
    machine = subprocess.run(["uname", "-m"], capture_output=True, text=True,
                             check=True).stdout.strip()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def make_layer(entries: Iterable[FileEntry]) -> Layer:
    """A reproducible layer: entries sorted, owned by root, dated 1970, gzip without mtime."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in sorted(entries, key=lambda e: e.path):
            info = tarfile.TarInfo(e.path.lstrip("/"))
            info.mtime = 0
            info.mode = e.mode
            if e.link is not None:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, e.link, 0o777
                tar.addfile(info)
            elif e.data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
    data = raw.getvalue()
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as gz:
        gz.write(data)
    return Layer(packed.getvalue(), _sha256(data))


def _dirs(*paths: str) -> list[FileEntry]:
    return [FileEntry(p, mode=0o1777 if p == "/tmp" else 0o755) for p in paths]


def busybox_version() -> str:
    """``1.35`` for Debian 12's busybox-static (major.minor of ``busybox --help``)."""
    head = subprocess.run([str(BUSYBOX), "--help"], capture_output=True, text=True,
                          check=False).stdout.splitlines()[0]
    version = head.split()[1].lstrip("v")  # "BusyBox v1.35.0 (Debian …)"
    return ".".join(version.split(".")[:2])


def busybox_entries() -> list[FileEntry]:
    """A root filesystem of busybox: the binary, a link per applet, /etc basics, /tmp."""
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    entries = _dirs("/bin", "/etc", "/tmp", "/root", "/proc", "/sys", "/dev", "/var",
                    "/var/run", "/usr", "/usr/bin", "/usr/sbin", "/sbin")
    entries.append(FileEntry("/bin/busybox", BUSYBOX.read_bytes(), mode=0o755))
    entries += [FileEntry(f"/bin/{a}", link="busybox") for a in applets if a != "busybox"]
    entries.append(FileEntry("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                             b"nobody:x:65534:65534:nobody:/:/bin/false\n"))
    entries.append(FileEntry("/etc/group", b"root:x:0:\nnogroup:x:65534:\n"))
    return entries


def build_pause(work: Path) -> bytes:
    """Compile ``pause.c`` statically (gcc and libc6-dev come from apt-packages.txt)."""
    out = work / "pause"
    subprocess.run(["gcc", "-static", "-Os", "-s", "-o", str(out), str(PAUSE_SOURCE)],
                   check=True, capture_output=True)
    return out.read_bytes()


def web_entries(version: str) -> list[FileEntry]:
    """The example web app's files: a versioned page and a CGI that names the host."""
    page = f"navarch web v{version}\n".encode()
    hostname = b"#!/bin/sh\necho 'Content-Type: text/plain'\necho\nhostname\n"
    return [*_dirs("/www", "/www/cgi-bin"), FileEntry("/www/index.html", page),
            FileEntry("/www/cgi-bin/hostname", hostname, mode=0o755)]


def catalog(work: Path) -> list[Image]:
    """Every image the local registry serves."""
    busybox = make_layer(busybox_entries())
    pause = make_layer([*_dirs("/bin"), FileEntry("/bin/pause", build_pause(work), mode=0o755)])
    images = [
        Image("navarch/pause", PAUSE_TAG, (pause,), entrypoint=("/bin/pause",)),
        Image("navarch/busybox", busybox_version(), (busybox,), cmd=("sh",)),
    ]
    for version in ("1", "2"):
        images.append(Image(
            "navarch/web", version, (busybox, make_layer(web_entries(version))),
            cmd=("httpd", "-f", "-v", "-p", str(WEB_PORT), "-h", "/www"),
            exposed_ports=(WEB_PORT,), labels={"io.navarch.example.version": version}))
    return images


class RegistryClient:
    """Pushes images over the registry HTTP API v2 (monolithic blob uploads)."""

    def __init__(self, registry: str, timeout: float = 30.0) -> None:
        self.registry = registry
        self.timeout = timeout

    def _request(self, method: str, url: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{self.registry}{url}")
        conn = http.client.HTTPConnection(parts.netloc, timeout=self.timeout)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        reply.read()
        conn.close()
        return reply

    def ping(self) -> bool:
        try:
            return self._request("GET", "/v2/").status == 200
        except OSError:
            return False

    def push_blob(self, repository: str, blob: bytes) -> str:
        digest = _sha256(blob)
        if self._request("HEAD", f"/v2/{repository}/blobs/{digest}").status == 200:
            return digest
        start = self._request("POST", f"/v2/{repository}/blobs/uploads/")
        if start.status != 202:
            raise RuntimeError(f"registry {self.registry}: upload of {digest} refused "
                               f"({start.status})")
        location = start.getheader("Location") or ""
        sep = "&" if "?" in location else "?"
        done = self._request("PUT", f"{location}{sep}digest={digest}", body=blob,
                             headers={"Content-Type": "application/octet-stream"})
        if done.status != 201:
            raise RuntimeError(f"registry {self.registry}: blob {digest} not stored "
                               f"({done.status})")
        return digest

    def push(self, image: Image) -> str:
        """Upload the layers, the config and the manifest; returns the manifest's digest."""
        config = image.config_blob()
        for layer in image.layers:
            self.push_blob(image.repository, layer.blob)
        self.push_blob(image.repository, config)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _sha256(config),
                       "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": la.digest, "size": len(la.blob)}
                       for la in image.layers],
        }, sort_keys=True, separators=(",", ":")).encode()
        reply = self._request("PUT", f"/v2/{image.repository}/manifests/{image.tag}",
                              body=manifest, headers={"Content-Type": OCI_MANIFEST})
        if reply.status != 201:
            ref = image.reference(self.registry)
            raise RuntimeError(f"registry {self.registry}: manifest {ref} refused "
                               f"({reply.status})")
        return _sha256(manifest)


def push_all(registry: str) -> list[str]:
    """Build every image and push it; returns their references, one per image."""
    client = RegistryClient(registry)
    with tempfile.TemporaryDirectory(prefix="navarch-images-") as tmp:
        images = catalog(Path(tmp))
    return [(client.push(im), im.reference(registry))[1] for im in images]


def registry_config(root: Path, address: str) -> str:
    """docker-registry's config: filesystem storage under ``root``, HTTP on ``address``."""
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}\n"
    )


def registry_binary() -> str:
    path = shutil.which("docker-registry")
    if path is None:
        raise SystemExit("docker-registry is not installed (apt-get install docker-registry)")
    return path

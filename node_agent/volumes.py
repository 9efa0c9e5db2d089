"""Pod volumes on the node, and the CRI mounts that put them in containers.

Layout: ``<root>/pods/<uid>/volumes/<volume>``. Kinds:

- emptyDir: a directory (mode 0777, as kubelet makes it); ``medium: Memory`` is a tmpfs
  (``sizeLimit`` its size);
- hostPath: the host's path, checked against ``type`` (DirectoryOrCreate, Directory,
  FileOrCreate, File, Socket, CharDevice, BlockDevice; "" checks nothing);
- configMap, secret, downwardAPI, projected: files written by an atomic writer, as
  kubelet's: the content lives in a ``..<timestamp>`` directory, ``..data`` is a symlink
  to it swapped with one rename, and each top-level name is a symlink through ``..data``;
  so a running container sees an update all at once. Secret (and projected) volumes are
  on a tmpfs: secrets never touch the node's disk.

Contracts: ``setup`` is idempotent and rewrites content only when it changed;
``teardown`` unmounts everything it mounted (found from /proc/self/mountinfo, so it also
works after an agent restart) and removes the pod's directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from cri_api.v1 import api_pb2

from navarch._quantity import QuantityError, parse_quantity
from navarch.v1 import core_pb2

from .env import ConfigError, ObjectLookup, field_value, resource_value

__all__ = ["VolumeManager", "container_mounts", "mount_points"]

DEFAULT_MODE = 0o644
DATA_LINK = "..data"
KINDS = ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected")

# path -> (content, mode)
Files = dict[str, tuple[bytes, int]]


def mount_points(under: Path) -> list[str]:
    """Mount points at or below ``under``, deepest first (from /proc/self/mountinfo)."""
    prefix = str(under)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(set(points), key=len, reverse=True)


def _is_mount(path: Path) -> bool:
    return str(path) in mount_points(path)


def _mount_tmpfs(path: Path, size: str = "") -> None:
    if _is_mount(path):
        return
    path.mkdir(parents=True, exist_ok=True)
    options = "mode=0755" + (f",size={size}" if size else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(f"mount tmpfs on {path}: {done.stderr.strip()}")


def _check_relative(path: str, what: str) -> None:
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts:
        raise ConfigError(f"{what} {path!r}: must be a relative path without '..'")


def _key_files(data: Mapping[str, bytes], items: Sequence[core_pb2.KeyToPath],
               default_mode: int, optional: bool, what: str) -> Files:
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    files: Files = {}
    for item in items:
        _check_relative(item.path, f"{what}: items path")
        if item.key not in data:
            if optional:
                continue
            raise ConfigError(f"{what}: configured to use key {item.key!r}, which is "
                              "not in its data")
        mode = item.mode if item.HasField("mode") else default_mode
        files[item.path] = (data[item.key], mode)
    return files


def _cm_data(cm: core_pb2.ConfigMap) -> dict[str, bytes]:
    return {**dict(cm.binary_data), **{k: v.encode() for k, v in cm.data.items()}}


def _secret_data(secret: core_pb2.Secret) -> dict[str, bytes]:
    return {**dict(secret.data), **{k: v.encode() for k, v in secret.string_data.items()}}


class VolumeManager:
    """Sets up and tears down the volumes of the pods on one node (blocking calls: the
    agent runs them in a thread)."""

    def __init__(self, root: Path, node_allocatable: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.node_allocatable = dict(node_allocatable or {})

    def pod_dir(self, uid: str) -> Path:
        return self.root / "pods" / uid

    def setup(self, pod: core_pb2.Pod, lookup: ObjectLookup,
              pod_ips: Sequence[str] = (), host_ip: str = "") -> dict[str, Path]:
        """Make every volume of ``pod``; volume name → host path. ConfigError (naming the
        volume) when one cannot be made."""
        out: dict[str, Path] = {}
        for volume in pod.spec.volumes:
            try:
                out[volume.name] = self._setup_one(pod, volume, lookup, pod_ips, host_ip)
            except ConfigError as exc:
                raise ConfigError(f'volume "{volume.name}": {exc.message}') from None
        return out

    def _setup_one(self, pod: core_pb2.Pod, volume: core_pb2.Volume, lookup: ObjectLookup,
                   pod_ips: Sequence[str], host_ip: str) -> Path:
        path = self.pod_dir(pod.metadata.uid) / "volumes" / volume.name
        ns = pod.metadata.namespace
        if volume.HasField("empty_dir"):
            if volume.empty_dir.medium == "Memory":
                size = ""
                if volume.empty_dir.HasField("size_limit"):
                    try:
                        size = str(parse_quantity(volume.empty_dir.size_limit).value())
                    except QuantityError as exc:
                        raise ConfigError(f"sizeLimit: {exc}") from None
                _mount_tmpfs(path, size)
            else:
                path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o777)
            return path
        if volume.HasField("host_path"):
            return _host_path(volume.host_path)
        files: Files
        on_tmpfs = False
        if volume.HasField("config_map"):
            src = volume.config_map
            files = self._config_map_files(ns, src.name, src.items,
                                           src.default_mode if src.HasField("default_mode")
                                           else DEFAULT_MODE, src.optional, lookup)
        elif volume.HasField("secret"):
            s = volume.secret
            files = self._secret_files(ns, s.secret_name, s.items,
                                       s.default_mode if s.HasField("default_mode")
                                       else DEFAULT_MODE, s.optional, lookup)
            on_tmpfs = True
        elif volume.HasField("downward_api"):
            d = volume.downward_api
            files = self._downward_files(pod, d.items, d.default_mode
                                         if d.HasField("default_mode") else DEFAULT_MODE,
                                         pod_ips, host_ip)
        elif volume.HasField("projected"):
            files, on_tmpfs = self._projected_files(pod, volume.projected, lookup, pod_ips,
                                                    host_ip)
        else:
            raise ConfigError(f"unsupported volume type; accepted: {', '.join(KINDS)}")
        if on_tmpfs:
            _mount_tmpfs(path)
        else:
            path.mkdir(parents=True, exist_ok=True)
        write_atomically(path, files)
        return path

    def _config_map_files(self, ns: str, name: str, items: Sequence[core_pb2.KeyToPath],
                          mode: int, optional: bool, lookup: ObjectLookup) -> Files:
        cm = lookup.config_map(ns, name)
        if cm is None:
            if optional:
                return {}
            raise ConfigError(f'configmap "{name}" not found')
        return _key_files(_cm_data(cm), items, mode, optional, f'configmap "{name}"')

    def _secret_files(self, ns: str, name: str, items: Sequence[core_pb2.KeyToPath],
                      mode: int, optional: bool, lookup: ObjectLookup) -> Files:
        secret = lookup.secret(ns, name)
        if secret is None:
            if optional:
                return {}
            raise ConfigError(f'secret "{name}" not found')
        return _key_files(_secret_data(secret), items, mode, optional, f'secret "{name}"')

    def _downward_files(self, pod: core_pb2.Pod, items: Sequence[core_pb2.DownwardAPIVolumeFile],
                        mode: int, pod_ips: Sequence[str], host_ip: str) -> Files:
        files: Files = {}
        for item in items:
            _check_relative(item.path, "downwardAPI: items path")
            if item.HasField("field_ref"):
                value = field_value(pod, item.field_ref.field_path, pod_ips, host_ip)
            elif item.HasField("resource_field_ref"):
                r = item.resource_field_ref
                value = resource_value(pod, r.container_name, r.resource, r.divisor,
                                       self.node_allocatable)
            else:
                raise ConfigError(f"downwardAPI item {item.path!r}: needs fieldRef or "
                                  "resourceFieldRef")
            files[item.path] = (value.encode(), item.mode if item.HasField("mode") else mode)
        return files

    def _projected_files(self, pod: core_pb2.Pod, src: core_pb2.ProjectedVolumeSource,
                         lookup: ObjectLookup, pod_ips: Sequence[str], host_ip: str
                         ) -> tuple[Files, bool]:
        mode = src.default_mode if src.HasField("default_mode") else DEFAULT_MODE
        ns = pod.metadata.namespace
        files: Files = {}
        secret = False
        for s in src.sources:
            if s.HasField("config_map"):
                c = s.config_map
                files.update(self._config_map_files(ns, c.name, c.items, mode, c.optional,
                                                    lookup))
            elif s.HasField("secret"):
                sec = s.secret
                files.update(self._secret_files(ns, sec.name, sec.items, mode, sec.optional,
                                                lookup))
                secret = True
            elif s.HasField("downward_api"):
                files.update(self._downward_files(pod, s.downward_api.items, mode, pod_ips,
                                                  host_ip))
        return files, secret

    def teardown(self, uid: str) -> None:
        """Unmount and remove everything of pod ``uid`` (idempotent)."""
        base = self.pod_dir(uid)
        if not base.exists():
            return
        for point in mount_points(base):
            subprocess.run(["umount", point], capture_output=True, check=False)
        for point in mount_points(base):  # still busy: detach lazily
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)

    def orphans(self, known_uids: set[str]) -> list[str]:
        """Pod uids with volume directories here that are not in ``known_uids``."""
        pods = self.root / "pods"
        if not pods.is_dir():
            return []
        return sorted(p.name for p in pods.iterdir() if p.name not in known_uids)


def _host_path(src: core_pb2.HostPathVolumeSource) -> Path:
    path = Path(src.path)
    kind = src.type if src.HasField("type") else ""
    if not path.is_absolute():
        raise ConfigError(f"hostPath {src.path!r}: must be an absolute path")
    if kind == "DirectoryOrCreate":
        path.mkdir(mode=0o755, parents=True, exist_ok=True)
    elif kind == "FileOrCreate":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o644, exist_ok=True)
    checks = {"Directory": stat.S_ISDIR, "DirectoryOrCreate": stat.S_ISDIR,
              "File": stat.S_ISREG, "FileOrCreate": stat.S_ISREG, "Socket": stat.S_ISSOCK,
              "CharDevice": stat.S_ISCHR, "BlockDevice": stat.S_ISBLK}
    if kind and kind not in checks:
        raise ConfigError(f"hostPath type {kind!r}: accepted: \"\", "
                          + ", ".join(checks))
    if kind:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise ConfigError(f"hostPath type check failed: {path} does not exist") from None
        if not checks[kind](mode):
            raise ConfigError(f"hostPath type check failed: {path} is not a {kind}")
    return path


def _current(path: Path) -> Files | None:
    data = path / DATA_LINK
    if not data.is_symlink():
        return None
    target = path / os.readlink(data)
    out: Files = {}
    for f in target.rglob("*"):
        if f.is_file():
            out[str(f.relative_to(target))] = (f.read_bytes(), stat.S_IMODE(f.stat().st_mode))
    return out


def write_atomically(path: Path, files: Files) -> bool:
    """Make ``path`` hold exactly ``files`` through a ``..data`` symlink swap; False when
    it already did."""
    if _current(path) == files:
        return False
    stamp = path / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns() % 10**9}"
    stamp.mkdir(mode=0o755)
    for rel, (content, mode) in files.items():
        target = stamp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
    old = os.readlink(path / DATA_LINK) if (path / DATA_LINK).is_symlink() else None
    tmp_link = path / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    tmp_link.symlink_to(stamp.name)
    os.replace(tmp_link, path / DATA_LINK)
    tops = {PurePosixPath(rel).parts[0] for rel in files}
    for top in tops:
        link = path / top
        if not link.is_symlink():
            link.symlink_to(f"{DATA_LINK}/{top}")
    for entry in path.iterdir():  # names no longer in the data
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in tops:
            entry.unlink()
    if old is not None and old != stamp.name:
        shutil.rmtree(path / old, ignore_errors=True)
    return True


def container_mounts(pod: core_pb2.Pod, container: core_pb2.Container,
                     volume_paths: Mapping[str, Path]) -> list[api_pb2.Mount]:
    """The CRI mounts of ``container``'s volumeMounts (configMap, secret, downwardAPI and
    projected volumes read-only, as kubelet mounts them)."""
    kinds = {v.name: v for v in pod.spec.volumes}
    mounts = []
    for vm in container.volume_mounts:
        host = volume_paths.get(vm.name)
        if host is None:
            raise ConfigError(f'volumeMount "{vm.name}": no volume of that name '
                              f"(volumes: {', '.join(sorted(volume_paths)) or 'none'})")
        volume = kinds[vm.name]
        read_only = vm.read_only or any(volume.HasField(k) for k in (
            "config_map", "secret", "downward_api", "projected"))
        if vm.sub_path:
            _check_relative(vm.sub_path, f'volumeMount "{vm.name}": subPath')
            host = host / vm.sub_path
            if not host.exists() and volume.HasField("empty_dir"):
                host.mkdir(parents=True, exist_ok=True)
        mounts.append(api_pb2.Mount(container_path=vm.mount_path, host_path=str(host),
                                    readonly=read_only))
    return mounts

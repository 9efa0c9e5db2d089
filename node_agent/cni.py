"""The node's CNI network config, written once the node knows its pod CIDR.

containerd's CRI plugin watches its CNI ``conf_dir`` and sets pods up with the first
config it finds there, so the agent writes this file when its Node gets
``spec.podCIDR`` (from the nodeipam controller, or ``--pod-cidr``): a Linux bridge
``cni0`` that is the pods' gateway, host-local IPAM over the node's range (its lease files
under the agent's own directory, so nodes on one machine never share them), and portmap for
hostPort.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

NETWORK_NAME = "navarch"
CONF_FILE = "10-navarch.conflist"


def conflist(pod_cidr: str, ipam_dir: Path, bridge: str = "cni0") -> str:
    """The conflist for ``pod_cidr`` (validated: an IPv4 network, host bits clear)."""
    network = ipaddress.IPv4Network(pod_cidr)
    body = {
        "cniVersion": "0.4.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": str(network)}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }
    return json.dumps(body, indent=2) + "\n"


def write_conflist(conf_dir: Path, pod_cidr: str, ipam_dir: Path) -> bool:
    """Write the config atomically if it differs; True when the file changed."""
    text = conflist(pod_cidr, ipam_dir)
    path = conf_dir / CONF_FILE
    if path.exists() and path.read_text() == text:
        return False
    conf_dir.mkdir(parents=True, exist_ok=True)
    ipam_dir.mkdir(parents=True, exist_ok=True)
    # renamed into place inside conf_dir: containerd 1.6's watcher reloads on that rename
    # (it ignores a file created by a rename from elsewhere); a name that is not *.conf*
    # is never loaded half-written
    tmp = conf_dir / f".{CONF_FILE}.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)
    return True

"""Runs inside a test namespace for test_programmer.py: one action per call.

    programmer_worker.py text|full|full-b|incremental|refused|drift|cleanup
"""

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from netproxy.nftnl import Batch, NftError
from netproxy.programmer import Programmer, ruleset_text
from netproxy.ruleset import Endpoint, ServicePort, service_rules

CIDR = "10.244.0.0/16"


def ports(variant: str) -> list[ServicePort]:
    a, b, c = (Endpoint("10.244.1.2", 8080, "n1"), Endpoint("10.244.2.2", 8080, "n2"),
               Endpoint("10.244.3.2", 8080, "n3"))
    base = [
        ServicePort("default", "web", "http", "tcp", "10.96.0.5", 80, 30080, False, 0, (a, b)),
        ServicePort("default", "dns", "dns", "udp", "10.96.0.10", 53, 0, False, 0, (a,)),
        ServicePort("default", "sticky", "", "tcp", "10.96.0.7", 80, 30081, True, 100,
                    (a, b, c)),
        ServicePort("default", "empty", "", "tcp", "10.96.0.8", 80, 30082, False, 0, ()),
        ServicePort("other", "sctp", "s", "sctp", "10.96.0.9", 9, 0, False, 0, (c,)),
    ]
    if variant == "a":
        return base
    # b: web scaled to 3, dns gone, empty got an endpoint, sticky lost affinity, a new one
    return [
        ServicePort("default", "web", "http", "tcp", "10.96.0.5", 80, 30080, False, 0,
                    (a, b, c)),
        ServicePort("default", "sticky", "", "tcp", "10.96.0.7", 80, 30081, True, 0, (a, b)),
        ServicePort("default", "empty", "", "tcp", "10.96.0.8", 80, 30082, False, 0, (c,)),
        base[4],
        ServicePort("default", "new", "p", "udp", "10.96.0.11", 5353, 0, False, 0, (b,)),
    ]


def desired(variant: str) -> dict:
    out: dict = {}
    for sp in ports(variant):
        rules = service_rules(sp, "n1", CIDR)
        key = f"{sp.namespace}/{sp.name}"
        if key in out:
            raise AssertionError(key)
        out[key] = rules
    return out


action = sys.argv[1]
prog = Programmer(cluster_cidr=CIDR)
if action == "text":
    print(ruleset_text(desired("a"), cluster_cidr=CIDR), end="")
elif action == "full":
    prog.full_sync(desired("a"))
elif action == "full-b":
    prog.full_sync(desired("b"))
elif action == "incremental":
    prog.full_sync(desired("a"))
    a, b = desired("a"), desired("b")
    prog.sync({k: b.get(k) for k in ("default/web", "default/dns")})
    prog.sync({k: b.get(k) for k in set(a) | set(b) if k not in ("default/web", "default/dns")})
elif action == "refused":
    batch = Batch("navarch")
    batch.add_rule("services", (("goto", "no-such-chain"),))
    try:
        prog.sock.commit(batch)
    except NftError as err:
        print("refused:", err)
elif action == "drift":
    prog.full_sync(desired("a"))
    print(prog.drifted())
    subprocess.run(["nft", "flush", "chain", "ip", "navarch", "services"], check=True)
    print(prog.drifted())
elif action == "cleanup":
    prog.cleanup()

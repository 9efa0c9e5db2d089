"""UDP conntrack entries that would keep sending datagrams to an endpoint that is gone.

A UDP "connection" to a Service lives in conntrack until it idles out, so a client that
keeps sending (DNS, a game server) would keep reaching a removed endpoint, or keep being
rejected after its Service gained one. kube-proxy deletes those entries; so does this,
through pyroute2's conntrack netlink (blocking calls: run them in a thread).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable

from pyroute2 import Conntrack
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple


def _delete_matching(ct: Conntrack, which: str, **tuple_filter: object) -> int:
    """Delete the UDP entries whose ``which`` ("orig" or "reply") tuple matches."""
    count = 0
    filt = NFCTAttrTuple(proto=socket.IPPROTO_UDP, **tuple_filter)
    kwargs = {"tuple_reply": filt} if which == "reply" else {"tuple_orig": filt}
    for entry in list(ct.dump_entries(**kwargs)):
        with contextlib.suppress(Exception):  # it may have expired meanwhile
            ct.delete(entry)
            count += 1
    return count


def flush_udp(endpoints_gone: Iterable[tuple[str, int]],
              services_now_served: Iterable[tuple[str, int]]) -> int:
    """Delete UDP entries answered by a removed endpoint ``(ip, port)``, and entries to a
    service address ``(ip, port)`` that was rejecting and now has endpoints."""
    gone = list(endpoints_gone)
    served = list(services_now_served)
    if not gone and not served:
        return 0
    count = 0
    with Conntrack() as ct:
        for ip, port in gone:
            count += _delete_matching(ct, "reply", saddr=ip, sport=port)
        for ip, port in served:
            count += _delete_matching(ct, "orig", daddr=ip, dport=port)
    return count

"""nftables over netlink: the statements Navarch's rules use, encoded two ways.

A rule is a tuple of *statements*, small tuples such as ``("daddr", "10.96.0.5")`` or
``("goto", "svc-…")``. ``stmt_exprs`` compiles each into the kernel's expression list
(netlink attributes, the bytes ``nft --debug=netlink`` describes) and ``rule_text`` into
nft's own syntax, so that one ruleset can be loaded either through a netlink batch
(``Batch``, ``NftSocket``) or through ``nft -f`` for comparison.

Why not pyroute2's nftables classes for the messages: they encode a three-expression rule
in about 0.3 ms (their generic attribute machinery is pure Python and builds a tree per
message), which is 30 s for the ~90k messages of 10k services; and their ``commit`` sends
the batch without reading the kernel's answer. Netlink itself is simple: this module packs
the same attributes with ``struct``, caches every statement's bytes (most recur: a jump to
``mark-for-masquerade``, a protocol match), sends a whole transaction in one ``sendmsg``
and reads every error the kernel reports for it. pyroute2's message classes decode what this
writes in ``tests/unit/test_proxy_ruleset.py``, and ``tests/netproxy/test_programmer.py``
checks that the kernel holds the same ruleset as after ``nft -f`` of ``rule_text``;
pyroute2 also does the routes and conntrack.

Constants come from linux/netfilter/nf_tables.h.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable, Sequence
from typing import Any

# netlink / nfnetlink framing
NETLINK_NETFILTER = 12
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLMSG_ERROR = 0x2
NLMSG_DONE = 0x3
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
NFPROTO_IPV4 = 2

# message types
NEWTABLE, GETTABLE, DELTABLE = 0, 1, 2
NEWCHAIN, GETCHAIN, DELCHAIN = 3, 4, 5
NEWRULE, GETRULE, DELRULE = 6, 7, 8
NEWSET, GETSET, DELSET = 9, 10, 11
NEWSETELEM, GETSETELEM, DELSETELEM = 12, 13, 14
NEWGEN, GETGEN = 15, 16

# set flags
SET_CONSTANT = 0x2
SET_MAP = 0x8
SET_TIMEOUT = 0x10
SET_EVAL = 0x20
SET_CONCAT = 0x80
DATA_VERDICT = 0xFFFFFF00

# nft's data type ids (for listings only: the kernel stores them as user data)
TYPE_IPADDR = 7
TYPE_INET_PROTO = 12
TYPE_INET_SERVICE = 13
TYPE_BITS = 6

# verdict codes
NF_DROP, NF_ACCEPT = 0, 1
NFT_JUMP, NFT_GOTO, NFT_RETURN = -3, -4, -5

# registers
REG_VERDICT, REG_1, REG_2 = 0, 1, 2
REG32_01, REG32_02 = 9, 10

HOOK_PREROUTING, HOOK_INPUT, HOOK_FORWARD, HOOK_OUTPUT, HOOK_POSTROUTING = 0, 1, 2, 3, 4
PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132}
MARK_MASQ = 0x4000

Stmt = tuple[Any, ...]

_HDR = struct.Struct("=IHHII")
_NFGEN = struct.Struct("=BBH")


class NftError(Exception):
    """The kernel refused a transaction: nothing of it was applied."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        self.errors = errors
        text = "; ".join(f"{what}: {os.strerror(code)}" for code, what in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"nftables refused the transaction: {text}{more}")


# --- attributes ---------------------------------------------------------------------------

def attr(kind: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("=HH", n, kind) + payload + b"\0" * (-n & 3)


def nest(kind: int, *children: bytes) -> bytes:
    return attr(kind | 0x8000, b"".join(children))


def s(kind: int, text: str) -> bytes:
    return attr(kind, text.encode() + b"\0")


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack(">I", value & 0xFFFFFFFF))


def u64(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack(">Q", value))


def data_value(kind: int, raw: bytes) -> bytes:
    return nest(kind, attr(1, raw))  # NFTA_DATA_VALUE


def data_verdict(kind: int, code: int, chain: str | None = None) -> bytes:
    inner = u32(1, code) + (s(2, chain) if chain is not None else b"")
    return nest(kind, nest(2, inner))  # NFTA_DATA_VERDICT { CODE, CHAIN }


def expr(name: str, *body: bytes) -> bytes:
    return nest(1, s(1, name), nest(2, *body))  # NFTA_LIST_ELEM { NAME, DATA }


# --- expressions --------------------------------------------------------------------------

def payload(base: int, offset: int, length: int, dreg: int = REG_1) -> bytes:
    return expr("payload", u32(1, dreg), u32(2, base), u32(3, offset), u32(4, length))


def meta(key: int, dreg: int = REG_1) -> bytes:
    return expr("meta", u32(2, key), u32(1, dreg))


def meta_set(key: int, sreg: int = REG_1) -> bytes:
    return expr("meta", u32(2, key), u32(3, sreg))


def cmp(op: int, raw: bytes, sreg: int = REG_1) -> bytes:
    return expr("cmp", u32(1, sreg), u32(2, op), data_value(3, raw))


def bitwise(length: int, mask: bytes, xor: bytes, reg: int = REG_1) -> bytes:
    return expr("bitwise", u32(1, reg), u32(2, reg), u32(3, length), data_value(4, mask),
                data_value(5, xor))


def verdict(code: int, chain: str | None = None) -> bytes:
    return expr("immediate", u32(1, REG_VERDICT), data_verdict(2, code, chain))


def immediate(reg: int, raw: bytes) -> bytes:
    return expr("immediate", u32(1, reg), data_value(2, raw))


def lookup(set_name: str, sreg: int = REG_1, dreg: int | None = None, invert: bool = False
           ) -> bytes:
    body = s(1, set_name) + u32(2, sreg)
    if dreg is not None:
        body += u32(3, dreg)
    if invert:
        body += u32(5, 1)
    return expr("lookup", body)


META_MARK, META_L4PROTO = 3, 16
CMP_EQ, CMP_NEQ = 0, 1
BASE_NETWORK, BASE_TRANSPORT = 1, 2


def _ip(address: str) -> bytes:
    """The 4 bytes of a dotted IPv4 address (strict: inet_aton also takes "10.1")."""
    if address.count(".") != 3:
        raise ValueError(f"{address!r} is not a dotted IPv4 address")
    return socket.inet_aton(address)


def _u32le(value: int) -> bytes:
    return struct.pack("=I", value)


def _stmt_exprs(stmt: Stmt) -> bytes:
    kind = stmt[0]
    if kind == "daddr":
        return payload(BASE_NETWORK, 16, 4) + cmp(CMP_EQ, _ip(stmt[1]))
    if kind == "saddr":
        return payload(BASE_NETWORK, 12, 4) + cmp(CMP_EQ, _ip(stmt[1]))
    if kind == "saddr_not_in":  # ip saddr != CIDR
        net = ipaddress.IPv4Network(stmt[1])
        if net.prefixlen % 8 == 0:
            n = net.prefixlen // 8
            return payload(BASE_NETWORK, 12, n) + cmp(CMP_NEQ, net.network_address.packed[:n])
        return (payload(BASE_NETWORK, 12, 4)
                + bitwise(4, net.netmask.packed, b"\0\0\0\0")
                + cmp(CMP_NEQ, net.network_address.packed))
    if kind == "saddr_in_cidr":  # ip saddr CIDR
        net = ipaddress.IPv4Network(stmt[1])
        return (payload(BASE_NETWORK, 12, 4)
                + bitwise(4, net.netmask.packed, b"\0\0\0\0")
                + cmp(CMP_EQ, net.network_address.packed))
    if kind == "fib_saddr_local":
        return (expr("fib", u32(1, REG_1), u32(2, 3), u32(3, 1))  # ADDRTYPE of SADDR
                + cmp(CMP_EQ, _u32le(2)))
    if kind == "not_loopback":  # ip daddr != 127.0.0.0/8
        return payload(BASE_NETWORK, 16, 1) + cmp(CMP_NEQ, b"\x7f")
    if kind == "l4proto":
        return meta(META_L4PROTO) + cmp(CMP_EQ, bytes([PROTOCOLS[stmt[1]]]))
    if kind == "dport":
        return payload(BASE_TRANSPORT, 2, 2) + cmp(CMP_EQ, struct.pack(">H", stmt[1]))
    if kind == "ct_new":
        return (expr("ct", u32(1, REG_1), u32(2, 0))  # NFT_CT_STATE
                + bitwise(4, _u32le(8), _u32le(0)) + cmp(CMP_NEQ, _u32le(0)))
    if kind == "fib_daddr_local":
        return (expr("fib", u32(1, REG_1), u32(2, 3), u32(3, 2))  # ADDRTYPE of DADDR
                + cmp(CMP_EQ, _u32le(2)))  # RTN_LOCAL
    if kind == "vmap_daddr_proto_port":
        return (payload(BASE_NETWORK, 16, 4) + meta(META_L4PROTO, REG32_01)
                + payload(BASE_TRANSPORT, 2, 2, REG32_02) + lookup(stmt[1], REG_1, REG_VERDICT))
    if kind == "vmap_proto_port":
        return (meta(META_L4PROTO) + payload(BASE_TRANSPORT, 2, 2, REG32_01)
                + lookup(stmt[1], REG_1, REG_VERDICT))
    if kind == "daddr_in":
        return payload(BASE_NETWORK, 16, 4) + lookup(stmt[1])
    if kind == "saddr_in":
        return payload(BASE_NETWORK, 12, 4) + lookup(stmt[1])
    if kind == "numgen":  # numgen random mod N == V
        return (expr("numgen", u32(1, REG_1), u32(2, stmt[1]), u32(3, 1))
                + cmp(CMP_EQ, _u32le(stmt[2])))
    if kind == "update_saddr":  # update @set { ip saddr }
        return payload(BASE_NETWORK, 12, 4) + expr(
            "dynset", s(1, stmt[1]), u32(3, 1), u32(4, REG_1), u64(6, 0))
    if kind == "mark_or":
        bits = stmt[1]
        return (meta(META_MARK) + bitwise(4, _u32le(0xFFFFFFFF ^ bits), _u32le(bits))
                + meta_set(META_MARK))
    if kind == "mark_unset_return":  # meta mark & B == 0 return
        bits = stmt[1]
        return (meta(META_MARK) + bitwise(4, _u32le(bits), _u32le(0))
                + cmp(CMP_EQ, _u32le(0)) + verdict(NFT_RETURN))
    if kind == "mark_xor":
        return (meta(META_MARK) + bitwise(4, _u32le(0xFFFFFFFF), _u32le(stmt[1]))
                + meta_set(META_MARK))
    if kind == "masquerade":
        return expr("masq", u32(1, 0x10))  # NF_NAT_RANGE_PROTO_RANDOM_FULLY
    if kind == "dnat":  # meta l4proto P dnat to IP:PORT
        _, proto, ip, port = stmt
        return (meta(META_L4PROTO) + cmp(CMP_EQ, bytes([PROTOCOLS[proto]]))
                + immediate(REG_1, _ip(ip)) + immediate(REG_2, struct.pack(">H", port))
                + expr("nat", u32(1, 1), u32(2, NFPROTO_IPV4), u32(3, REG_1), u32(4, REG_1),
                       u32(5, REG_2), u32(6, REG_2), u32(7, 0x3)))
    if kind == "jump":
        return verdict(NFT_JUMP, stmt[1])
    if kind == "goto":
        return verdict(NFT_GOTO, stmt[1])
    if kind == "drop":
        return verdict(NF_DROP)
    if kind == "reject":  # ICMP port unreachable: a TCP client sees ECONNREFUSED
        return expr("reject", u32(1, 0), attr(2, b"\x03"))
    raise ValueError(f"unknown nftables statement {stmt!r}")


def _template(stmt: Stmt, *markers: bytes) -> list[bytes]:
    """The statement's bytes cut around each marker (values of a fixed length)."""
    raw = _stmt_exprs(stmt)
    pieces = []
    for marker in markers:
        assert raw.count(marker) == 1, (stmt, marker)
        head, raw = raw.split(marker)
        pieces.append(head)
    return [*pieces, raw]


_IP_MARK, _PORT_MARK = "222.173.190.239", 0xCAFE  # de ad be ef, ca fe
_DADDR = _template(("daddr", _IP_MARK), b"\xde\xad\xbe\xef")
_SADDR = _template(("saddr", _IP_MARK), b"\xde\xad\xbe\xef")
_DPORT = _template(("dport", _PORT_MARK), b"\xca\xfe")
_DNAT = {p: _template(("dnat", p, _IP_MARK, _PORT_MARK), b"\xde\xad\xbe\xef", b"\xca\xfe")
         for p in PROTOCOLS}
_PORT = struct.Struct(">H")
_inet_aton = socket.inet_aton


def _verdict_fast(code: int, chain: str) -> bytes:
    # LIST_ELEM { NAME "immediate", DATA { DREG 0, DATA { VERDICT { CODE, CHAIN } } } }
    name = chain.encode() + b"\0"
    n = len(name)
    chain_attr = struct.pack("=HH", 4 + n, 2) + name + b"\0" * (-n & 3)
    v = struct.pack("=HHHH", 12 + len(chain_attr), 0x8002, 8, 1) + struct.pack(">i", code) \
        + chain_attr
    data = struct.pack("=HH", 4 + len(v), 0x8002) + v
    body = _DREG0 + data
    inner = _IMM_NAME + struct.pack("=HH", 4 + len(body), 0x8002) + body
    return struct.pack("=HH", 4 + len(inner), 0x8001) + inner


_DREG0 = u32(1, REG_VERDICT)
_IMM_NAME = s(1, "immediate")
_cache: dict[Stmt, bytes] = {}


def stmt_exprs(stmt: Stmt) -> bytes:
    """The statement's expressions (fast paths for the statements that carry addresses
    and chain names, a cache for the rest)."""
    kind = stmt[0]
    if kind == "goto":
        return _verdict_fast(NFT_GOTO, stmt[1])
    if kind == "jump":  # jumps go to a few fixed chains: cached below
        raw = _cache.get(stmt)
        if raw is None:
            raw = _cache[stmt] = _verdict_fast(NFT_JUMP, stmt[1])
        return raw
    if kind == "daddr":
        return _DADDR[0] + _inet_aton(stmt[1]) + _DADDR[1]
    if kind == "saddr":
        return _SADDR[0] + _inet_aton(stmt[1]) + _SADDR[1]
    if kind == "dport":
        return _DPORT[0] + _PORT.pack(stmt[1]) + _DPORT[1]
    if kind == "dnat":
        t = _DNAT[stmt[1]]
        return t[0] + _inet_aton(stmt[2]) + t[1] + _PORT.pack(stmt[3]) + t[2]
    raw = _cache.get(stmt)
    if raw is None:
        if len(_cache) > 4096:
            _cache.clear()
        raw = _cache[stmt] = _stmt_exprs(stmt)
    return raw


def _stmt_text(stmt: Stmt) -> str:
    kind = stmt[0]
    simple = {
        "daddr": "ip daddr {}", "saddr": "ip saddr {}", "saddr_not_in": "ip saddr != {}",
        "saddr_in_cidr": "ip saddr {}",
        "l4proto": "meta l4proto {}", "dport": "th dport {}", "daddr_in": "ip daddr @{}",
        "saddr_in": "ip saddr @{}", "jump": "jump {}", "goto": "goto {}",
        "update_saddr": "update @{} {{ ip saddr }}", "mark_or": "meta mark set meta mark | {:#x}",
        "mark_xor": "meta mark set meta mark ^ {:#x}",
        "mark_unset_return": "meta mark & {:#x} == 0 return",
        "vmap_daddr_proto_port": "ip daddr . meta l4proto . th dport vmap @{}",
        "vmap_proto_port": "meta l4proto . th dport vmap @{}",
    }
    if kind in simple:
        return simple[kind].format(*stmt[1:])
    if kind == "numgen":
        return f"numgen random mod {stmt[1]} {stmt[2]}"
    if kind == "dnat":
        return f"meta l4proto {stmt[1]} dnat to {stmt[2]}:{stmt[3]}"
    fixed = {"ct_new": "ct state new", "fib_daddr_local": "fib daddr type local",
             "fib_saddr_local": "fib saddr type local",
             "not_loopback": "ip daddr != 127.0.0.0/8", "masquerade": "masquerade fully-random",
             "drop": "drop", "reject": "reject"}
    return fixed[kind]


def rule_text(rule: Sequence[Stmt]) -> str:
    return " ".join(_stmt_text(st) for st in rule)


# --- messages -----------------------------------------------------------------------------

class Batch:
    """One nftables transaction: messages between BATCH_BEGIN and BATCH_END."""

    def __init__(self, table: str, family: int = NFPROTO_IPV4) -> None:
        self.table = table
        self.family = family
        self._table_attr = s(1, table)
        self._parts: list[bytes] = []
        self._what: list[str] = []
        self._seq = 0
        self._set_id = 0
        self._rule_chain = ""
        self._rule_head = b""
        self._control(NFNL_MSG_BATCH_BEGIN, "batch begin")

    def __len__(self) -> int:
        return len(self._parts) - 1

    def _control(self, kind: int, what: str) -> None:
        self._seq += 1
        body = _NFGEN.pack(0, 0, socket.htons(NFNL_SUBSYS_NFTABLES))
        self._parts.append(_HDR.pack(16 + len(body), kind, NLM_F_REQUEST, self._seq, 0) + body)
        self._what.append(what)

    def add(self, msg_type: int, flags: int, body: bytes, what: str) -> None:
        self._seq += 1
        n = 20 + len(body)
        self._parts.append(_HDR.pack(n, (NFNL_SUBSYS_NFTABLES << 8) | msg_type,
                                     NLM_F_REQUEST | flags, self._seq, 0)
                           + _NFGEN.pack(self.family, 0, 0) + body)
        self._what.append(what)

    # objects ----------------------------------------------------------------------------
    def add_table(self) -> None:
        self.add(NEWTABLE, NLM_F_CREATE, self._table_attr, f"add table {self.table}")

    def delete_table(self) -> None:
        self.add(DELTABLE, 0, self._table_attr, f"delete table {self.table}")

    def add_chain(self, name: str, hook: tuple[str, int, int] | None = None) -> None:
        """``hook`` is (type, hook number, priority) for a base chain."""
        body = self._table_attr + s(3, name)
        if hook is not None:
            ctype, num, prio = hook
            body += nest(4, u32(1, num), u32(2, prio)) + u32(5, NF_ACCEPT) + s(7, ctype)
        self.add(NEWCHAIN, NLM_F_CREATE, body, f"add chain {name}")

    def flush_chain(self, name: str) -> None:
        self.add(DELRULE, 0, self._table_attr + s(2, name), f"flush chain {name}")

    def delete_chain(self, name: str) -> None:
        self.add(DELCHAIN, 0, self._table_attr + s(3, name), f"delete chain {name}")

    def add_rule(self, chain: str, rule: Sequence[Stmt]) -> None:
        if chain != self._rule_chain:
            self._rule_chain = chain
            self._rule_head = self._table_attr + s(2, chain)
        exprs = b"".join([stmt_exprs(st) for st in rule])
        body = self._rule_head + struct.pack("=HH", 4 + len(exprs), 0x8004) + exprs
        self.add(NEWRULE, NLM_F_CREATE | NLM_F_APPEND, body, f"add rule {chain} {rule!r}")

    def add_set(self, name: str, key: Sequence[int], verdict_map: bool = False,
                timeout_ms: int | None = None) -> None:
        """A named set (or verdict map) keyed by a concatenation of nft types ``key``."""
        key_type = 0
        for t in key:
            key_type = (key_type << TYPE_BITS) | t
        key_len = sum(4 for _ in key)  # each component takes a 32-bit register
        if len(key) == 1 and key[0] == TYPE_IPADDR:
            key_len = 4
        flags = SET_MAP if verdict_map else 0
        if len(key) > 1:
            flags |= SET_CONCAT
        if timeout_ms is not None:
            flags |= SET_TIMEOUT | SET_EVAL
        self._set_id += 1
        body = (self._table_attr + s(2, name) + u32(3, flags) + u32(4, key_type)
                + u32(5, key_len) + u32(10, self._set_id))
        if verdict_map:
            body += u32(6, DATA_VERDICT)
        if timeout_ms is not None:
            body += u64(11, timeout_ms)
        if len(key) > 1:
            body += nest(9, nest(2, *(nest(1, u32(1, 4)) for _ in key)))  # DESC { CONCAT }
        self.add(NEWSET, NLM_F_CREATE, body, f"add set {name}")

    def delete_set(self, name: str) -> None:
        self.add(DELSET, 0, self._table_attr + s(2, name), f"delete set {name}")

    def flush_set(self, name: str) -> None:
        self.add(DELSETELEM, 0, self._table_attr + s(2, name), f"flush set {name}")

    def set_elements(self, name: str, elements: Iterable[tuple[bytes, str | None]],
                     delete: bool = False) -> None:
        """Add (or delete) ``(key bytes, goto chain or None)`` elements.

        A netlink attribute holds at most 64 KiB, so the elements go in as many messages
        as they need."""
        verb = "delete" if delete else "add"
        head = self._table_attr + s(2, name)
        chunk: list[bytes] = []
        size = 0
        for key, chain in elements:
            elem = nest(1, nest(1, attr(1, key))  # ELEM { KEY { VALUE } [DATA { VERDICT }] }
                        + (data_verdict(2, NFT_GOTO, chain) if chain and not delete else b""))
            if size + len(elem) > 60000:
                self._elements_message(head, chunk, delete, f"{verb} elements of {name}")
                chunk, size = [], 0
            chunk.append(elem)
            size += len(elem)
        if chunk:
            self._elements_message(head, chunk, delete, f"{verb} elements of {name}")

    def _elements_message(self, head: bytes, elems: list[bytes], delete: bool, what: str
                          ) -> None:
        body = head + nest(3, *elems)
        self.add(DELSETELEM if delete else NEWSETELEM, 0 if delete else NLM_F_CREATE, body,
                 f"{what} ({len(elems)})")

    def encode(self) -> tuple[bytes, list[str]]:
        """The transaction's bytes (the last message asks for an ack) and what each is."""
        if len(self._parts) < 2:
            return b"", []
        parts = list(self._parts)
        last = bytearray(parts[-1])
        flags = struct.unpack_from("=H", last, 6)[0]
        struct.pack_into("=H", last, 6, flags | NLM_F_ACK)
        parts[-1] = bytes(last)
        end = _NFGEN.pack(0, 0, socket.htons(NFNL_SUBSYS_NFTABLES))
        parts.append(_HDR.pack(20, NFNL_MSG_BATCH_END, NLM_F_REQUEST, self._seq + 1, 0) + end)
        return b"".join(parts), [*self._what, "batch end"]


def key_ip_proto_port(ip: str, proto: str, port: int) -> bytes:
    return _ip(ip) + bytes([PROTOCOLS[proto], 0, 0, 0]) + struct.pack(">H", port) + b"\0\0"


def key_proto_port(proto: str, port: int) -> bytes:
    return bytes([PROTOCOLS[proto], 0, 0, 0]) + struct.pack(">H", port) + b"\0\0"


def key_ip(ip: str) -> bytes:
    return _ip(ip)


# --- the socket ---------------------------------------------------------------------------

class NftSocket:
    """A NETLINK_NETFILTER socket in the current network namespace."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        self._sndbuf = 0
        self._seq = 1 << 30

    def close(self) -> None:
        self.sock.close()

    def _drain(self) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(1 << 20, socket.MSG_DONTWAIT))
            except BlockingIOError:
                return out

    def commit(self, batch: Batch) -> int:
        """Send the transaction; raise NftError with every error the kernel reported.

        nfnetlink runs a batch inside ``sendmsg``: when it returns, the transaction is
        committed or aborted and every answer is queued on the socket."""
        data, what = batch.encode()
        if not data:
            return 0
        self._drain()
        if len(data) + 4096 > self._sndbuf:
            self._sndbuf = max(len(data) + 4096, 1 << 20)
            self.sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, self._sndbuf)
        self.sock.sendall(data)
        errors: list[tuple[int, str]] = []
        acked = False
        last_seq = len(what) - 1  # the message before batch end asked for the ack
        for chunk in self._drain():
            for mtype, seq, body in _messages(chunk):
                if mtype != NLMSG_ERROR:
                    continue
                code = -struct.unpack_from("=i", body)[0]
                if code == 0:
                    acked = acked or seq == last_seq
                else:
                    label = what[seq - 1] if 0 < seq <= len(what) else f"message {seq}"
                    errors.append((code, label))
        if errors:
            raise NftError(errors)
        if not acked:
            raise NftError([(errno.EIO, "no answer to the transaction")])
        return len(what) - 1

    def request(self, msg_type: int, body: bytes, dump: bool = False) -> list[bytes]:
        """A read request; the answer messages' bodies (after the nfgenmsg header)."""
        self._seq += 1
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        msg = (_HDR.pack(20 + len(body), (NFNL_SUBSYS_NFTABLES << 8) | msg_type, flags,
                         self._seq, 0) + _NFGEN.pack(NFPROTO_IPV4, 0, 0) + body)
        self._drain()
        self.sock.sendall(msg)
        out: list[bytes] = []
        while True:
            chunk = self.sock.recv(1 << 20)
            for mtype, seq, mbody in _messages(chunk):
                if seq != self._seq:
                    continue
                if mtype == NLMSG_DONE:
                    return out
                if mtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", mbody)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    return out
                out.append(mbody[4:])
                if not dump:
                    return out

    def generation(self) -> int:
        """The ruleset generation: it changes with every committed transaction, anyone's."""
        (body,) = self.request(GETGEN, b"")
        for kind, value in attributes(body):
            if kind == 1:  # NFTA_GEN_ID
                return int(struct.unpack(">I", value)[0])
        raise OSError(errno.EIO, "no generation id in the answer")

    def chain_names(self, table: str) -> list[str] | None:
        """Names of the chains of ``table``; None when the table does not exist."""
        try:
            bodies = self.request(GETCHAIN, s(1, table), dump=True)
        except OSError as err:
            if err.errno == errno.ENOENT:
                return None
            raise
        names = []
        found_table = False
        for body in bodies:
            attrs = dict(attributes(body))
            if attrs.get(1, b"").rstrip(b"\0").decode() != table:
                continue
            found_table = True
            names.append(attrs[3].rstrip(b"\0").decode())
        if not found_table and not self.table_exists(table):
            return None
        return names

    def set_names(self, table: str) -> list[str] | None:
        """Names of the sets and maps of ``table``; None when the table does not exist."""
        try:
            bodies = self.request(GETSET, s(1, table), dump=True)
        except OSError as err:
            if err.errno == errno.ENOENT:
                return None
            raise
        names = []
        for body in bodies:
            attrs = dict(attributes(body))
            if attrs.get(1, b"").rstrip(b"\0").decode() == table:
                names.append(attrs[2].rstrip(b"\0").decode())
        return names

    def table_exists(self, table: str) -> bool:
        try:
            self.request(GETTABLE, s(1, table))
        except OSError as err:
            if err.errno == errno.ENOENT:
                return False
            raise
        return True


def _messages(chunk: bytes) -> Iterable[tuple[int, int, bytes]]:
    off = 0
    while off + 16 <= len(chunk):
        length, mtype, _flags, seq, _pid = _HDR.unpack_from(chunk, off)
        if length < 16:
            return
        yield mtype, seq, chunk[off + 16: off + length]
        off += (length + 3) & ~3


def attributes(body: bytes) -> Iterable[tuple[int, bytes]]:
    off = 0
    while off + 4 <= len(body):
        length, kind = struct.unpack_from("=HH", body, off)
        if length < 4:
            return
        yield kind & 0x3FFF, body[off + 4: off + length]
        off += (length + 3) & ~3

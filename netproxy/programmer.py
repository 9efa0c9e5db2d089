"""Puts a ruleset (``netproxy.ruleset``) into the kernel, one transaction per sync.

``full_sync`` writes everything: the table, its maps and base chains, every service chain
(added, then flushed and refilled), every map element (maps flushed first), and deletes
the chains and affinity sets of ours that are no longer wanted. It repairs any drift.

``sync`` is incremental: given the Services that changed, it touches only their chains,
elements and sets, in an order the kernel accepts inside one transaction (new sets and
chains, flushes, rules, element deletions, element additions, then deletions of chains and
sets nothing refers to any more). A transaction is atomic: when the kernel refuses any
message, nothing is applied and ``applied`` still describes the kernel.

``drifted`` compares the kernel's ruleset generation with the one after our last commit:
any other writer (a person with ``nft``, iptables-nft, the CNI portmap plugin) bumps it,
and the proxy answers with a full sync.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from netproxy import nftnl
from netproxy.nftnl import TYPE_INET_PROTO, TYPE_INET_SERVICE, TYPE_IPADDR, Batch, NftSocket
from netproxy.ruleset import (
    BASE_CHAIN_NAMES,
    MAPS,
    TABLE,
    BaseChains,
    Key,
    Rule,
    ServiceRules,
    base_chains,
)

HOOKS = {"prerouting": nftnl.HOOK_PREROUTING, "input": nftnl.HOOK_INPUT,
         "forward": nftnl.HOOK_FORWARD, "output": nftnl.HOOK_OUTPUT,
         "postrouting": nftnl.HOOK_POSTROUTING}
_TYPES = {"ipv4_addr": TYPE_IPADDR, "inet_proto": TYPE_INET_PROTO,
          "inet_service": TYPE_INET_SERVICE}
_EMPTY = ServiceRules()
_MISSING = object()


def element_key(key: Key) -> bytes:
    if len(key) == 3:
        return nftnl.key_ip_proto_port(*key)
    if len(key) == 2:
        return nftnl.key_proto_port(*key)
    return nftnl.key_ip(key[0])


@dataclass
class SyncResult:
    kind: str  # "full" or "partial"
    services: int  # services written
    messages: int
    encode_seconds: float
    commit_seconds: float


class Programmer:
    """The proxy's view of its table: what it last committed, per Service key."""

    def __init__(self, sock: NftSocket | None = None, table: str = TABLE,
                 cluster_cidr: str | None = None) -> None:
        self.sock = sock or NftSocket()
        self.table = table
        self.base = base_chains(cluster_cidr)
        self.applied: dict[str, ServiceRules] = {}
        self.generation: int | None = None

    def close(self) -> None:
        self.sock.close()

    # --- full ---------------------------------------------------------------------------
    def full_sync(self, desired: Mapping[str, ServiceRules]) -> SyncResult:
        t0 = time.perf_counter()
        existing = self.sock.chain_names(self.table)
        existing_sets = set(self.sock.set_names(self.table) or ()) if existing is not None \
            else set()
        had = set(existing or ())
        b = Batch(self.table)
        b.add_table()
        for name, types, is_map in MAPS:
            b.add_set(name, [_TYPES[t] for t in types], verdict_map=is_map)
            if name in existing_sets:
                b.flush_set(name)
        wanted_sets: dict[str, int] = {}
        for rules in desired.values():
            wanted_sets.update(rules.affinity_sets)
        for name, timeout in wanted_sets.items():
            b.add_set(name, [TYPE_IPADDR], timeout_ms=timeout)
        chains: dict[str, tuple[Rule, ...]] = {}
        for rules in desired.values():
            chains.update(rules.chains)
        for name, hook, _ in self.base:
            b.add_chain(name, (hook[0], HOOKS[hook[1]], hook[2]) if hook else None)
        for name in chains:
            b.add_chain(name)
        for name, _, base_rules in self.base:
            if name in had:
                b.flush_chain(name)
            for rule in base_rules:
                b.add_rule(name, rule)
        for name, rules_ in chains.items():
            if name in had:
                b.flush_chain(name)
            for rule in rules_:
                b.add_rule(name, rule)
        elements: dict[str, dict[Key, str | None]] = {}
        for rules in desired.values():
            for map_name, elems in rules.elements.items():
                elements.setdefault(map_name, {}).update(elems)
        for map_name, elems in elements.items():
            b.set_elements(map_name, [(element_key(k), v) for k, v in elems.items()])
        stale = had - set(chains) - BASE_CHAIN_NAMES
        for name in stale:
            b.flush_chain(name)
        for name in stale:
            b.delete_chain(name)
        map_names = {name for name, _, _ in MAPS}
        for name in existing_sets - set(wanted_sets) - map_names:
            b.delete_set(name)
        t1 = time.perf_counter()
        messages = self.sock.commit(b)
        t2 = time.perf_counter()
        self.applied = dict(desired)
        self.generation = self.sock.generation()
        return SyncResult("full", len(desired), messages, t1 - t0, t2 - t1)

    # --- incremental --------------------------------------------------------------------
    def sync(self, changes: Mapping[str, ServiceRules | None]) -> SyncResult:
        """Apply the new rules of the changed Services (None: the Service is gone)."""
        t0 = time.perf_counter()
        b = Batch(self.table)
        add_sets: dict[str, int] = {}
        del_sets: list[str] = []
        add_chains: list[str] = []
        flush: list[str] = []
        fill: list[tuple[str, tuple[Rule, ...]]] = []
        del_chains: list[str] = []
        del_elems: dict[str, list[Key]] = {}
        add_elems: dict[str, list[tuple[Key, str | None]]] = {}
        for key, new in changes.items():
            old = self.applied.get(key, _EMPTY)
            new = new or _EMPTY
            for name, timeout in new.affinity_sets.items():
                if old.affinity_sets.get(name) != timeout:
                    add_sets[name] = timeout
            del_sets.extend(n for n in old.affinity_sets if n not in new.affinity_sets)
            for name, rules in new.chains.items():
                before = old.chains.get(name)
                if before is None:
                    add_chains.append(name)
                    fill.append((name, rules))
                elif before != rules:
                    flush.append(name)
                    fill.append((name, rules))
            for name in old.chains:
                if name not in new.chains:
                    flush.append(name)
                    del_chains.append(name)
            for map_name in set(old.elements) | set(new.elements):
                before_e = old.elements.get(map_name, {})
                after_e = new.elements.get(map_name, {})
                for k, v in before_e.items():
                    if k not in after_e or after_e[k] != v:
                        del_elems.setdefault(map_name, []).append(k)
                for k, v in after_e.items():
                    if before_e.get(k, _MISSING) != v:  # new, or pointing elsewhere
                        add_elems.setdefault(map_name, []).append((k, v))
        for name, timeout in add_sets.items():
            b.add_set(name, [TYPE_IPADDR], timeout_ms=timeout)
        for name in add_chains:
            b.add_chain(name)
        for name in flush:
            b.flush_chain(name)
        for name, rules in fill:
            for rule in rules:
                b.add_rule(name, rule)
        for map_name, keys in del_elems.items():
            b.set_elements(map_name, [(element_key(k), None) for k in keys], delete=True)
        for map_name, items in add_elems.items():
            b.set_elements(map_name, [(element_key(k), v) for k, v in items])
        for name in del_chains:
            b.delete_chain(name)
        for name in del_sets:
            b.delete_set(name)
        t1 = time.perf_counter()
        messages = self.sock.commit(b) if len(b) else 0
        t2 = time.perf_counter()
        for key, new in changes.items():
            if new is None:
                self.applied.pop(key, None)
            else:
                self.applied[key] = new
        if messages:
            self.generation = self.sock.generation()
        return SyncResult("partial", len(changes), messages, t1 - t0, t2 - t1)

    def drifted(self) -> bool:
        return self.generation is None or self.sock.generation() != self.generation

    def cleanup(self) -> bool:
        """Delete the table (and so every rule of ours); False when there was none."""
        if not self.sock.table_exists(self.table):
            return False
        b = Batch(self.table)
        b.delete_table()
        self.sock.commit(b)
        self.applied = {}
        self.generation = None
        return True


# --- the same ruleset as nft(8) text ------------------------------------------------------

def _key_text(key: Key) -> str:
    return " . ".join(str(part) for part in key)


def ruleset_text(desired: Mapping[str, ServiceRules], table: str = TABLE,
                 cluster_cidr: str | None = None) -> str:
    """What ``full_sync`` writes into an empty table, in ``nft -f`` syntax."""
    elements: dict[str, dict[Key, str | None]] = {}
    chains: dict[str, tuple[Rule, ...]] = {}
    sets: dict[str, int] = {}
    for rules in desired.values():
        chains.update(rules.chains)
        sets.update(rules.affinity_sets)
        for map_name, elems in rules.elements.items():
            elements.setdefault(map_name, {}).update(elems)
    out = [f"table ip {table} {{"]
    for name, types, is_map in MAPS:
        kind = "map" if is_map else "set"
        data = " : verdict" if is_map else ""
        out.append(f"\t{kind} {name} {{\n\t\ttype {' . '.join(types)}{data}")
        elems = elements.get(name, {})
        if elems:
            items = [f"{_key_text(k)} : goto {v}" if is_map else _key_text(k)
                     for k, v in elems.items()]
            out.append("\t\telements = { " + ",\n\t\t\t".join(items) + " }")
        out.append("\t}")
    for name, timeout in sets.items():
        out.append(f"\tset {name} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n"
                   f"\t\ttimeout {timeout // 1000}s\n\t}}")
    base: BaseChains = base_chains(cluster_cidr)
    for name, hook, rules_ in base:
        out.extend(_chain_text(name, rules_, hook))
    for name, rules_ in chains.items():
        out.extend(_chain_text(name, rules_, None))
    out.append("}")
    return "\n".join(out) + "\n"


def _chain_text(name: str, rules: Iterable[Rule], hook: tuple[str, str, int] | None
                ) -> list[str]:
    lines = [f"\tchain {name} {{"]
    if hook:
        lines.append(f"\t\ttype {hook[0]} hook {hook[1]} priority {hook[2]}; policy accept;")
    lines.extend(f"\t\t{nftnl.rule_text(rule)}" for rule in rules)
    lines.append("\t}")
    return lines

"""Kubernetes' validators for names, keys and small values.

Every validator returns a list of problems as human-readable phrases; an empty list means
the value is valid. A phrase is written to follow the offending value, as in
``spec.ports[0].name: Invalid value: "HTTP": must contain only ...``, and says what would be
accepted. The rules (character sets, lengths, special cases) are Kubernetes'
(apimachinery ``util/validation``) so that a manifest valid for one is valid for the other:

===================  ====================================================================
validator            accepts
===================  ====================================================================
dns1123_label        Namespace names, container names, hostnames:
                     ``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, at most 63 characters
dns1123_subdomain    most object names: labels joined by dots, at most 253 characters
dns1035_label        Service names: like a DNS-1123 label but starting with a letter
qualified_name       label and annotation keys: optional DNS subdomain prefix and '/',
                     then a name of at most 63 ``[A-Za-z0-9_.-]`` (alphanumeric at ends)
label_value          label values: empty, or like a qualified name's name part
env_var_name         printable ASCII except '=' (Kubernetes' rule since 1.34)
config_map_key       ConfigMap and Secret keys: ``[-._a-zA-Z0-9]+``, not '.' or '..'
port_name            IANA service names: at most 15 of ``[-a-z0-9]``, one letter at least
===================  ====================================================================

Lengths count bytes of UTF-8, as Kubernetes does; every accepted character is ASCII anyway.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

__all__ = [
    "ANNOTATIONS_SIZE_LIMIT",
    "DNS1035_LABEL_MAX_LENGTH",
    "DNS1123_LABEL_MAX_LENGTH",
    "DNS1123_SUBDOMAIN_MAX_LENGTH",
    "LABEL_VALUE_MAX_LENGTH",
    "PORT_NAME_MAX_LENGTH",
    "QUALIFIED_NAME_MAX_LENGTH",
    "annotation_key",
    "annotations_size",
    "cidr",
    "config_map_key",
    "dns1035_label",
    "dns1123_label",
    "dns1123_subdomain",
    "env_var_name",
    "ip_address",
    "ipv4_address",
    "label_value",
    "percent",
    "port_name",
    "port_number",
    "port_number_or_zero",
    "qualified_name",
]

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
DNS1035_LABEL_MAX_LENGTH = 63
QUALIFIED_NAME_MAX_LENGTH = 63
"""Of the name part; the prefix is a DNS subdomain with its own limit."""
LABEL_VALUE_MAX_LENGTH = 63
PORT_NAME_MAX_LENGTH = 15
ANNOTATIONS_SIZE_LIMIT = 256 * 1024
"""Bytes of all annotation keys and values of one object together."""

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(" + _QUALIFIED_NAME + ")?"
_CONFIG_MAP_KEY = "[-._a-zA-Z0-9]+"
_PERCENT = "[0-9]+%"

_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL)
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE)
_CONFIG_MAP_KEY_RE = re.compile(_CONFIG_MAP_KEY)
_PERCENT_RE = re.compile(_PERCENT)
_PORT_NAME_CHARS_RE = re.compile("[-a-z0-9]+")
_PREFIX_LENGTH_RE = re.compile("0|[1-9][0-9]*")


def _size(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def _too_long(limit: int) -> str:
    return f"must be no more than {limit} characters"


def _pattern(rule: str, regex: str, *examples: str) -> str:
    """``rule`` followed by examples and the regular expression that decides."""
    shown = " or ".join(f"'{e}'" for e in examples)
    return f"{rule} (for example {shown}; checked with the regular expression '{regex}')"


_DNS1123_LABEL_RULE = _pattern(
    "must be a lowercase RFC 1123 label: lower-case letters, digits and '-', starting and "
    "ending with a letter or digit", _DNS1123_LABEL, "my-name", "123-abc")
_DNS1123_SUBDOMAIN_RULE = _pattern(
    "must be a lowercase RFC 1123 subdomain: lower-case letters, digits, '-' and '.', "
    "starting and ending with a letter or digit", _DNS1123_SUBDOMAIN, "example.com")
_DNS1035_LABEL_RULE = _pattern(
    "must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter "
    "and ending with a letter or digit", _DNS1035_LABEL, "my-name", "abc-123")
_QUALIFIED_NAME_RULE = _pattern(
    "must consist of letters, digits, '-', '_' and '.', starting and ending with a letter "
    "or digit", _QUALIFIED_NAME, "MyName", "my.name", "123-abc")
_LABEL_VALUE_RULE = _pattern(
    "must be empty or consist of letters, digits, '-', '_' and '.', starting and ending "
    "with a letter or digit", _LABEL_VALUE, "MyValue", "my_value", "12345")
_CONFIG_MAP_KEY_RULE = _pattern(
    "must consist of letters, digits, '-', '_' and '.'", _CONFIG_MAP_KEY,
    "key.name", "KEY_NAME", "key-name")
_PERCENT_RULE = _pattern(
    "must be a whole number followed by '%'", _PERCENT, "1%", "93%")


def dns1123_label(value: str) -> list[str]:
    """Problems with ``value`` as an RFC 1123 DNS label (e.g. a namespace name)."""
    errors = []
    if _size(value) > DNS1123_LABEL_MAX_LENGTH:
        errors.append(_too_long(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            errors.append("must not contain dots")
        else:
            errors.append(_DNS1123_LABEL_RULE)
    return errors


def dns1123_subdomain(value: str) -> list[str]:
    """Problems with ``value`` as an RFC 1123 DNS subdomain (most object names)."""
    errors = []
    if _size(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errors.append(_too_long(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errors.append(_DNS1123_SUBDOMAIN_RULE)
    return errors


def dns1035_label(value: str) -> list[str]:
    """Problems with ``value`` as an RFC 1035 DNS label (Service names)."""
    errors = []
    if _size(value) > DNS1035_LABEL_MAX_LENGTH:
        errors.append(_too_long(DNS1035_LABEL_MAX_LENGTH))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errors.append(_DNS1035_LABEL_RULE)
    return errors


def qualified_name(value: str) -> list[str]:
    """Problems with ``value`` as a qualified name: a label key, an annotation key, a
    finalizer. ``[prefix/]name``: the prefix a DNS subdomain, the name at most 63 characters.
    """
    parts = value.split("/")
    if len(parts) > 2:
        return ["must be a name of letters, digits, '-', '_' and '.' (starting and ending "
                "with a letter or digit) with an optional DNS subdomain prefix and '/', "
                "like 'example.com/MyName'; it has more than one '/'"]
    errors = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + e for e in dns1123_subdomain(prefix))
    if not name:
        errors.append("name part must be non-empty")
        return errors
    if _size(name) > QUALIFIED_NAME_MAX_LENGTH:
        errors.append("name part " + _too_long(QUALIFIED_NAME_MAX_LENGTH))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errors.append("name part " + _QUALIFIED_NAME_RULE)
    return errors


def annotation_key(value: str) -> list[str]:
    """Problems with ``value`` as an annotation key: a qualified name in which case does not
    matter (upper-case letters are accepted in the prefix too)."""
    return qualified_name(value.lower())


def label_value(value: str) -> list[str]:
    """Problems with ``value`` as a label value (the empty string is valid)."""
    errors = []
    if _size(value) > LABEL_VALUE_MAX_LENGTH:
        errors.append(_too_long(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errors.append(_LABEL_VALUE_RULE)
    return errors


def env_var_name(value: str) -> list[str]:
    """Problems with ``value`` as a container environment variable name: any printable
    ASCII character (space included) except '=', at least one."""
    if not value:
        return ["must be non-empty"]
    for ch in value:
        if not " " <= ch <= "~" or ch == "=":
            return [f"must consist only of printable ASCII characters other than '=' "
                    f"(found {ch!r})"]
    return []


def _relative_path_problems(value: str) -> list[str]:
    if value in (".", ".."):
        return [f"must not be '{value}'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def config_map_key(value: str) -> list[str]:
    """Problems with ``value`` as a ConfigMap or Secret key (it becomes a file name)."""
    errors = []
    if _size(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errors.append(_too_long(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _CONFIG_MAP_KEY_RE.fullmatch(value):
        errors.append(_CONFIG_MAP_KEY_RULE)
    errors.extend(_relative_path_problems(value))
    return errors


def port_name(value: str) -> list[str]:
    """Problems with ``value`` as a port name (an IANA service name, RFC 6335, lower case
    only)."""
    errors = []
    if len(value) > PORT_NAME_MAX_LENGTH:
        errors.append(_too_long(PORT_NAME_MAX_LENGTH))
    if not _PORT_NAME_CHARS_RE.fullmatch(value):
        errors.append("must contain only lower-case letters (a-z), digits (0-9) and '-'")
    if not any("a" <= ch <= "z" for ch in value):
        errors.append("must contain at least one letter (a-z)")
    if "--" in value:
        errors.append("must not contain two hyphens in a row")
    if value.startswith("-") or value.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return errors


def _in_range(value: int, low: int, high: int) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"must be an integer between {low} and {high}, inclusive"]
    if low <= value <= high:
        return []
    return [f"must be between {low} and {high}, inclusive"]


def port_number(value: int) -> list[str]:
    """Problems with ``value`` as a port number (1-65535)."""
    return _in_range(value, 1, 65535)


def port_number_or_zero(value: int) -> list[str]:
    """Problems with ``value`` as an optional port number (0, meaning unset, or 1-65535)."""
    return _in_range(value, 0, 65535)


def percent(value: str) -> list[str]:
    """Problems with ``value`` as a percentage string such as ``"25%"``."""
    if _PERCENT_RE.fullmatch(value):
        return []
    return [_PERCENT_RULE]


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if "%" in value:  # IPv6 zone indexes are not addresses of the cluster
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def ip_address(value: str) -> list[str]:
    """Problems with ``value`` as an IPv4 or IPv6 address in canonical form (no leading
    zeros, no IPv4-mapped IPv6, IPv6 as RFC 5952 writes it)."""
    addr = _parse_ip(value)
    if addr is None:
        if _is_sloppy_ipv4(value):
            return [_LEADING_ZEROS]
        return ["must be a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return _canonical_ip(addr, value)


def ipv4_address(value: str) -> list[str]:
    """Problems with ``value`` as an IPv4 address in dotted-quad form."""
    addr = _parse_ip(value)
    if addr is None:
        if _is_sloppy_ipv4(value):
            return [_LEADING_ZEROS]
        return ["must be a valid IPv4 address (e.g. 10.9.8.7)"]
    if addr.version != 4:
        return ["must be an IPv4 address, not an IPv6 one (e.g. 10.9.8.7)"]
    return _canonical_ip(addr, value)


_LEADING_ZEROS = "must not have leading zeros in its octets"


def _canonical_ip(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, value: str) -> list[str]:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return [f"must not be an IPv4-mapped IPv6 address (use {addr.ipv4_mapped})"]
    if str(addr) != value:
        return [f'must be in canonical form ("{addr}")']
    return []


def _is_sloppy_ipv4(value: str) -> bool:
    """Four dot-separated decimal octets, some with leading zeros (which Go's old parser
    accepted and Kubernetes now rejects with a specific message)."""
    octets = value.split(".")
    return (len(octets) == 4 and all(o.isascii() and o.isdigit() and len(o) <= 3
                                     and int(o) <= 255 for o in octets))


def cidr(value: str) -> list[str]:
    """Problems with ``value`` as a network in CIDR notation, canonical: the address has no
    bits set beyond the prefix length, neither part has leading zeros."""
    address, slash, length = value.partition("/")
    invalid = ["must be a valid CIDR value (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    if not slash or not length.isascii() or not length.isdigit():
        return invalid
    addr = _parse_ip(address)
    if addr is None:
        return (["must not have leading zeros in the address or prefix length"]
                if _is_sloppy_ipv4(address) else invalid)
    if not _PREFIX_LENGTH_RE.fullmatch(length):
        return ["must not have leading zeros in the address or prefix length"]
    if int(length) > addr.max_prefixlen:
        return invalid
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return ["must not have an IPv4-mapped IPv6 address"]
    network = ipaddress.ip_network(value, strict=False)
    if network.network_address != addr:
        return [f'must not have bits set beyond the prefix length (the network is "{network}")']
    if str(network) != value:
        return [f'must be in canonical form ("{network}")']
    return []


def annotations_size(annotations: Mapping[str, str]) -> list[str]:
    """Problems with the total size of an object's annotations (keys and values together at
    most 256 KiB)."""
    total = sum(_size(k) + _size(v) for k, v in annotations.items())
    if total <= ANNOTATIONS_SIZE_LIMIT:
        return []
    return [f"may not be more than {ANNOTATIONS_SIZE_LIMIT} bytes in total (256 KiB) "
            f"for all keys and values; these are {total} bytes"]

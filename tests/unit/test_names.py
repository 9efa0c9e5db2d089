"""Name and value validators (``navarch._names``) against Kubernetes' rules.

Each table row is (value, the problems expected). A problem is matched by a fragment of its
message, so that the tests pin what the user is told (which rule, which limit) without
freezing every word.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from navarch import _names as n

Validator = Callable[[str], list[str]]


def check(validator: Validator, value: str, expected: list[str]) -> None:
    problems = validator(value)
    assert len(problems) == len(expected), problems
    for problem, fragment in zip(problems, expected, strict=True):
        assert fragment in problem, (problem, fragment)


REGEX_1123_LABEL = "'[a-z0-9]([-a-z0-9]*[a-z0-9])?'"
LABEL_RULE = "must be a lowercase RFC 1123 label"
SUBDOMAIN_RULE = "must be a lowercase RFC 1123 subdomain"


@pytest.mark.parametrize(("value", "expected"), [
    ("a", []),
    ("my-name", []),
    ("123-abc", []),
    ("0", []),
    ("a" * 63, []),
    ("a" * 64, ["must be no more than 63 characters"]),
    ("", [LABEL_RULE]),
    ("My-Name", [LABEL_RULE]),
    ("-a", [LABEL_RULE]),
    ("a-", [LABEL_RULE]),
    ("a_b", [LABEL_RULE]),
    ("a.b", ["must not contain dots"]),
    ("a" * 64 + ".b", ["must be no more than 63", "must not contain dots"]),
    ("ä", [LABEL_RULE]),
])
def test_dns1123_label(value: str, expected: list[str]) -> None:
    check(n.dns1123_label, value, expected)


def test_rule_messages_show_examples_and_regex() -> None:
    [problem] = n.dns1123_label("Bad")
    assert "'my-name'" in problem and REGEX_1123_LABEL in problem
    [problem] = n.dns1123_subdomain("Bad")
    assert "'example.com'" in problem
    assert "start" in problem and "end" in problem


@pytest.mark.parametrize(("value", "expected"), [
    ("example.com", []),
    ("a", []),
    ("a.b-c.d", []),
    ("1.2.3.4", []),
    (".".join(["a" * 63] * 4)[:253], []),
    ("a" * 254, ["must be no more than 253 characters"]),
    ("a" * 253 + "_", ["must be no more than 253 characters", SUBDOMAIN_RULE]),
    ("", [SUBDOMAIN_RULE]),
    ("a..b", [SUBDOMAIN_RULE]),
    (".a", [SUBDOMAIN_RULE]),
    ("a.", [SUBDOMAIN_RULE]),
    ("a.-b", [SUBDOMAIN_RULE]),
    ("Example.com", [SUBDOMAIN_RULE]),
    ("a_b.com", [SUBDOMAIN_RULE]),
])
def test_dns1123_subdomain(value: str, expected: list[str]) -> None:
    check(n.dns1123_subdomain, value, expected)


@pytest.mark.parametrize(("value", "expected"), [
    ("my-svc", []),
    ("a", []),
    ("abc-123", []),
    ("a" * 63, []),
    ("a" * 64, ["must be no more than 63 characters"]),
    ("1abc", ["must be a DNS-1035 label"]),
    ("", ["starting with a letter"]),
    ("a-", ["must be a DNS-1035 label"]),
    ("a.b", ["must be a DNS-1035 label"]),
    ("Abc", ["must be a DNS-1035 label"]),
])
def test_dns1035_label(value: str, expected: list[str]) -> None:
    check(n.dns1035_label, value, expected)


NAME_RULE = "name part must consist of letters, digits, '-', '_' and '.'"


@pytest.mark.parametrize(("value", "expected"), [
    ("app", []),
    ("MyName", []),
    ("my.name", []),
    ("my_name-1", []),
    ("123-abc", []),
    ("example.com/MyName", []),
    ("app.kubernetes.io/name", []),
    ("a" * 63, []),
    ("a" * 64, ["name part must be no more than 63 characters"]),
    ("", ["name part must be non-empty"]),
    ("example.com/", ["name part must be non-empty"]),
    ("/name", ["prefix part must be non-empty"]),
    ("-name", [NAME_RULE]),
    ("name_", [NAME_RULE]),
    ("na me", [NAME_RULE]),
    ("Example.com/name", ["prefix part " + SUBDOMAIN_RULE]),
    ("a_b/name", ["prefix part " + SUBDOMAIN_RULE]),
    ("a/b/c", ["with an optional DNS subdomain prefix and '/'"]),
    ("x" * 254 + "/n", ["prefix part must be no more than 253 characters"]),
    ("x" * 254 + "./n", ["prefix part must be no more than 253 characters",
                         "prefix part " + SUBDOMAIN_RULE]),
])
def test_qualified_name(value: str, expected: list[str]) -> None:
    check(n.qualified_name, value, expected)


@pytest.mark.parametrize(("value", "expected"), [
    ("Example.COM/Note", []),  # case does not matter in annotation keys
    ("kubectl.kubernetes.io/last-applied-configuration", []),
    ("-x", [NAME_RULE]),
    ("a/b/c", ["with an optional DNS subdomain prefix"]),
])
def test_annotation_key(value: str, expected: list[str]) -> None:
    check(n.annotation_key, value, expected)


VALUE_RULE = "must be empty or consist of letters, digits, '-', '_' and '.'"


@pytest.mark.parametrize(("value", "expected"), [
    ("", []),
    ("v1", []),
    ("MyValue", []),
    ("my_value", []),
    ("1.2.3", []),
    ("a" * 63, []),
    ("a" * 64, ["must be no more than 63 characters"]),
    ("-v", [VALUE_RULE]),
    ("v-", [VALUE_RULE]),
    ("a b", [VALUE_RULE]),
    ("a/b", [VALUE_RULE]),
    ("_" + "a" * 63, ["must be no more than 63", VALUE_RULE]),
])
def test_label_value(value: str, expected: list[str]) -> None:
    check(n.label_value, value, expected)


PRINTABLE = "must consist only of printable ASCII characters other than '='"


@pytest.mark.parametrize(("value", "expected"), [
    ("PATH", []),
    ("my.env-name", []),
    ("1LEADING_DIGIT", []),  # allowed since Kubernetes 1.34's relaxed rule
    ("with space", []),
    ("a:b;c!~", []),
    ("", ["must be non-empty"]),
    ("A=B", [PRINTABLE]),
    ("tab\there", [PRINTABLE]),
    ("new\nline", [PRINTABLE]),
    ("é", [PRINTABLE]),
    ("\x7f", [PRINTABLE]),
])
def test_env_var_name(value: str, expected: list[str]) -> None:
    check(n.env_var_name, value, expected)


def test_env_var_name_names_the_character() -> None:
    assert "'='" in n.env_var_name("A=B")[0]
    assert r"'\t'" in n.env_var_name("A\tB")[0]


KEY_RULE = "must consist of letters, digits, '-', '_' and '.'"


@pytest.mark.parametrize(("value", "expected"), [
    ("key.name", []),
    ("KEY_NAME", []),
    ("key-name", []),
    (".hidden", []),
    ("a..b", []),
    ("a" * 253, []),
    ("a" * 254, ["must be no more than 253 characters"]),
    ("", [KEY_RULE]),
    ("a/b", [KEY_RULE]),
    ("a b", [KEY_RULE]),
    (".", ["must not be '.'"]),
    ("..", ["must not be '..'"]),
    ("..a", ["must not start with '..'"]),
])
def test_config_map_key(value: str, expected: list[str]) -> None:
    check(n.config_map_key, value, expected)


@pytest.mark.parametrize(("value", "expected"), [
    ("http", []),
    ("h2c", []),
    ("a-b-c", []),
    ("x" * 15, []),
    ("x" * 16, ["must be no more than 15 characters"]),
    ("", ["must contain only lower-case", "at least one letter"]),
    ("8080", ["at least one letter"]),
    ("HTTP", ["must contain only lower-case", "at least one letter"]),
    ("my_port", ["must contain only lower-case"]),
    ("a--b", ["two hyphens in a row"]),
    ("-ab", ["begin or end with a hyphen"]),
    ("ab-", ["begin or end with a hyphen"]),
    ("-", ["at least one letter", "begin or end with a hyphen"]),
])
def test_port_name(value: str, expected: list[str]) -> None:
    check(n.port_name, value, expected)


@pytest.mark.parametrize(("value", "port", "port_or_zero"), [
    (0, ["must be between 1 and 65535, inclusive"], []),
    (1, [], []),
    (80, [], []),
    (65535, [], []),
    (65536, ["must be between 1 and 65535, inclusive"],
     ["must be between 0 and 65535, inclusive"]),
    (-1, ["must be between 1 and 65535, inclusive"],
     ["must be between 0 and 65535, inclusive"]),
    (True, ["must be an integer between 1 and 65535, inclusive"],
     ["must be an integer between 0 and 65535, inclusive"]),
])
def test_port_numbers(value: int, port: list[str], port_or_zero: list[str]) -> None:
    assert n.port_number(value) == port
    assert n.port_number_or_zero(value) == port_or_zero


@pytest.mark.parametrize(("value", "expected"), [
    ("0%", []),
    ("25%", []),
    ("100%", []),
    ("250%", []),  # the range is the caller's to check
    ("25", ["must be a whole number followed by '%'"]),
    ("%", ["must be a whole number followed by '%'"]),
    ("2.5%", ["must be a whole number followed by '%'"]),
    ("-5%", ["must be a whole number followed by '%'"]),
    ("25%\n", ["must be a whole number followed by '%'"]),
])
def test_percent(value: str, expected: list[str]) -> None:
    check(n.percent, value, expected)


@pytest.mark.parametrize(("value", "ip", "ipv4"), [
    ("10.9.8.7", [], []),
    ("0.0.0.0", [], []),
    ("255.255.255.255", [], []),
    ("2001:db8::ffff", [], ["must be an IPv4 address, not an IPv6 one"]),
    ("::1", [], ["not an IPv6 one"]),
    ("2001:DB8::1", ['must be in canonical form ("2001:db8::1")'], ["not an IPv6 one"]),
    ("2001:0db8::1", ['must be in canonical form ("2001:db8::1")'], ["not an IPv6 one"]),
    ("::ffff:1.2.3.4", ["must not be an IPv4-mapped IPv6 address (use 1.2.3.4)"],
     ["not an IPv6 one"]),
    ("010.1.1.1", ["must not have leading zeros"], ["must not have leading zeros"]),
    ("1.2.3", ["must be a valid IP address"], ["must be a valid IPv4 address"]),
    ("256.1.1.1", ["must be a valid IP address"], ["must be a valid IPv4 address"]),
    ("", ["must be a valid IP address"], ["must be a valid IPv4 address"]),
    ("fe80::1%eth0", ["must be a valid IP address"], ["must be a valid IPv4 address"]),
    (" 1.2.3.4", ["must be a valid IP address"], ["must be a valid IPv4 address"]),
    ("example.com", ["must be a valid IP address"], ["must be a valid IPv4 address"]),
])
def test_ip_addresses(value: str, ip: list[str], ipv4: list[str]) -> None:
    check(n.ip_address, value, ip)
    check(n.ipv4_address, value, ipv4)


@pytest.mark.parametrize(("value", "expected"), [
    ("10.244.0.0/16", []),
    ("10.96.0.0/12", []),
    ("0.0.0.0/0", []),
    ("10.9.8.7/32", []),
    ("2001:db8::/64", []),
    ("::/0", []),
    ("10.244.1.0/16", ['must not have bits set beyond the prefix length (the network is '
                       '"10.244.0.0/16")']),
    ("2001:db8::1/64", ["must not have bits set beyond the prefix length"]),
    ("2001:DB8::/64", ['must be in canonical form ("2001:db8::/64")']),
    ("010.0.0.0/8", ["must not have leading zeros"]),
    ("10.0.0.0/08", ["must not have leading zeros"]),
    ("::ffff:10.0.0.0/104", ["must not have an IPv4-mapped IPv6 address"]),
    ("10.0.0.0", ["must be a valid CIDR value"]),
    ("10.0.0.0/33", ["must be a valid CIDR value"]),
    ("10.0.0.0/255.0.0.0", ["must be a valid CIDR value"]),
    ("10.0.0.0/", ["must be a valid CIDR value"]),
    ("/8", ["must be a valid CIDR value"]),
    ("2001:db8::/129", ["must be a valid CIDR value"]),
])
def test_cidr(value: str, expected: list[str]) -> None:
    check(n.cidr, value, expected)


def test_annotations_size_limit_is_inclusive() -> None:
    limit = n.ANNOTATIONS_SIZE_LIMIT
    assert limit == 262144
    assert n.annotations_size({}) == []
    assert n.annotations_size({"k": "v" * (limit - 1)}) == []
    [problem] = n.annotations_size({"k": "v" * limit})
    assert "may not be more than 262144 bytes" in problem and "262145 bytes" in problem


def test_annotations_size_counts_keys_and_utf8_bytes() -> None:
    half = n.ANNOTATIONS_SIZE_LIMIT // 2
    assert n.annotations_size({"a" * half: "b" * half}) == []
    assert n.annotations_size({"a" * half: "b" * half, "c": ""}) != []
    assert n.annotations_size({"k": "é" * (half)}) != []  # two bytes each, plus the key


@given(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True))
def test_every_dns1123_label_is_a_subdomain_and_qualified_name(label: str) -> None:
    assert n.dns1123_label(label) == []
    assert n.dns1123_subdomain(label) == []
    assert n.qualified_name(label) == []
    assert n.label_value(label) == []

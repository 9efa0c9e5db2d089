"""Resource quantities (``navarch._quantity``) against Kubernetes' ``resource.Quantity``.

The parse and canonical-form tables are the cases of apimachinery's quantity tests
(TestQuantityParse, TestQuantityString, TestQuantityParseEmit), re-expressed as exact
values; the rest covers rounding, arithmetic, errors and properties.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from navarch._quantity import Quantity, QuantityError, parse_quantity

NANO = Fraction(1, 10**9)
KI, MI, GI, TI, PI, EI = (2**(10 * p) for p in range(1, 7))


def dec(mantissa: int, exponent: int) -> Fraction:
    return Fraction(mantissa) * Fraction(10) ** exponent


@pytest.mark.parametrize(("text", "amount", "fmt"), [
    ("0", 0, "DecimalSI"),
    ("0n", 0, "DecimalSI"),
    ("0m", 0, "DecimalSI"),
    ("0Ki", 0, "DecimalSI"),  # binary values below 1 are decimal
    ("0Ti", 0, "DecimalSI"),
    ("1", 1, "DecimalSI"),
    ("1Ki", KI, "BinarySI"),
    ("8Ki", 8 * KI, "BinarySI"),
    ("7Mi", 7 * MI, "BinarySI"),
    ("6Gi", 6 * GI, "BinarySI"),
    ("5Ti", 5 * TI, "BinarySI"),
    ("4Pi", 4 * PI, "BinarySI"),
    ("3Ei", 3 * EI, "BinarySI"),
    ("5n", dec(5, -9), "DecimalSI"),
    ("4u", dec(4, -6), "DecimalSI"),
    ("3m", dec(3, -3), "DecimalSI"),
    ("8k", dec(8, 3), "DecimalSI"),
    ("50k", dec(5, 4), "DecimalSI"),
    ("7M", dec(7, 6), "DecimalSI"),
    ("6G", dec(6, 9), "DecimalSI"),
    ("5T", dec(5, 12), "DecimalSI"),
    ("2P", dec(2, 15), "DecimalSI"),
    ("1E", dec(1, 18), "DecimalSI"),
    ("12E", dec(12, 18), "DecimalSI"),  # decimal quantities are not capped
    ("1E-3", dec(1, -3), "DecimalExponent"),
    ("1e3", dec(1, 3), "DecimalExponent"),
    ("1E6", dec(1, 6), "DecimalExponent"),
    ("1e+9", dec(1, 9), "DecimalExponent"),
    ("1.3E+6", dec(13, 5), "DecimalExponent"),
    ("1.7E18", dec(17, 17), "DecimalExponent"),
    ("0.5e-1", dec(5, -2), "DecimalExponent"),
    ("100.035k", 100035, "DecimalSI"),
    ("0.001", dec(1, -3), "DecimalSI"),
    ("0.0005k", dec(5, -1), "DecimalSI"),
    ("0.50000", dec(5, -1), "DecimalSI"),
    ("10.035M", dec(10035, 3), "DecimalSI"),
    ("6.987654321G", 6987654321, "DecimalSI"),
    ("1.01E", dec(101, 16), "DecimalSI"),
    # rounded up to whole nano-units
    ("3.001n", dec(4, -9), "DecimalSI"),
    ("1.1E-9", dec(2, -9), "DecimalExponent"),
    ("0.0000000001", NANO, "DecimalSI"),
    ("0.00000000050", NANO, "DecimalSI"),
    ("0.00000012345", dec(124, -9), "DecimalSI"),
    ("1e-1000", NANO, "DecimalExponent"),
    ("-1e-1000", -NANO, "DecimalExponent"),
    # binary quantities are capped at 2^63-1
    ("9Ei", 2**63 - 1, "BinarySI"),
    ("9223372036854775807Ki", 2**63 - 1, "BinarySI"),
    ("-9Ei", -(2**63 - 1), "BinarySI"),
    ("100.035Ki", dec(10243584, -2), "BinarySI"),
    ("0.5Mi", MI // 2, "BinarySI"),
    ("0.05Gi", dec(536870912, -1), "BinarySI"),
    ("0.000000000001Ki", dec(2, -9), "DecimalSI"),
    # odd but accepted writings
    (".001", dec(1, -3), "DecimalSI"),
    (".0001k", dec(100, -3), "DecimalSI"),
    ("1.", 1, "DecimalSI"),
    ("1.G", dec(1, 9), "DecimalSI"),
    ("+1", 1, "DecimalSI"),
    ("-1", -1, "DecimalSI"),
    ("-0", 0, "DecimalSI"),
    ("007", 7, "DecimalSI"),
])
def test_parse(text: str, amount: Fraction | int, fmt: str) -> None:
    q = parse_quantity(text)
    assert q.amount == amount
    assert q.format == fmt


@pytest.mark.parametrize("text", ["1Ki", "1.5", "3.001n", "7Mi", "1e3", "0.5Mi"])
def test_sign_prefix(text: str) -> None:
    positive = parse_quantity(text)
    assert parse_quantity("+" + text) == positive
    negative = parse_quantity("-" + text)
    assert negative.amount == -positive.amount and negative.format == positive.format


@pytest.mark.parametrize(("text", "canonical"), [
    # TestQuantityString's canonical forms (each alternate writing parses to the first)
    ("1Gi", "1Gi"), ("1024Mi", "1Gi"),
    ("300Mi", "300Mi"), ("307200Ki", "300Mi"),
    ("6Ki", "6Ki"),
    ("1001Gi", "1001Gi"), ("1025024Mi", "1001Gi"),
    ("1Ti", "1Ti"), ("1024Gi", "1Ti"),
    ("1G", "1G"), ("1000M", "1G"), ("0.001T", "1G"), ("1000000k", "1G"),
    ("1000000000", "1G"),
    ("1m", "1m"), ("1000u", "1m"),
    ("80m", "80m"),
    ("1080m", "1080m"), ("1.08", "1080m"), ("1080000000n", "1080m"),
    ("300M", "300M"), ("1T", "1T"), ("1234567M", "1234567M"), ("3k", "3k"),
    ("0", "0"), ("00", "0"), ("0Mi", "0"), ("-0", "0"), ("0e5", "0"),
    ("1e9", "1e9"), (".001e12", "1e9"),
    ("1e-3", "1e-3"), ("0.001e0", "1e-3"), ("1E-3", "1e-3"),
    ("1e-9", "1e-9"), ("1000e-12", "1e-9"),
    ("80e-3", "80e-3"), ("300e6", "300e6"), ("1e12", "1e12"), ("1e3", "1e3"), ("3e3", "3e3"),
    ("1e14", "100e12"), ("1.5e3", "1500"), ("1e0", "1"), ("0.5e0", "500e-3"),
    ("1n", "1n"), ("80n", "80n"), ("1080n", "1080n"), ("1.08u", "1080n"),
    ("1u", "1u"), ("80u", "80u"), ("1080u", "1080u"),
    # TestQuantityParseEmit
    ("1Ki", "1Ki"), ("1Mi", "1Mi"), (".001Ki", "1024m"), (".000001Ki", "1024u"),
    (".000000001Ki", "1024n"), (".000000000001Ki", "2n"),
    # the examples of the brief
    ("1000m", "1"), ("0.5", "500m"), ("1536Mi", "1536Mi"), ("2048Ki", "2Mi"),
    ("1.5Gi", "1536Mi"), ("1.5", "1500m"), ("1500", "1500"), ("10k", "10k"),
    # binary quantities below 1024 or with a fraction are written in decimal
    ("1025", "1025"), ("0.5Ki", "512"), ("1.5Ki", "1536"), ("1023.5Ki", "1048064"),
    ("1.0001Ki", "1024102400u"), ("9Ei", "9223372036854775807"), ("8Ei", "9223372036854775807"),
    ("7Ei", "7Ei"),
    ("1000E", "1000E"), ("1e21", "1e21"), ("+1", "1"), ("007", "7"), ("07Ki", "7Ki"),
])
def test_canonical_form(text: str, canonical: str) -> None:
    assert str(parse_quantity(text)) == canonical
    assert str(parse_quantity(canonical)) == canonical
    if canonical != "0" and text[0] not in "+-":
        assert str(parse_quantity("-" + text)) == "-" + canonical


@pytest.mark.parametrize(("text", "value", "milli"), [
    ("1", 1, 1000),
    ("1500m", 2, 1500),
    ("1.5", 2, 1500),
    ("1n", 1, 1),
    ("1001u", 1, 2),
    ("100m", 1, 100),
    ("0", 0, 0),
    ("1Ki", 1024, 1024000),
    ("1.5Gi", 1610612736, 1610612736000),
    ("-1.5", -2, -1500),  # away from zero, as Kubernetes' integer accessors round
    ("-1n", -1, -1),
    ("12E", 12 * 10**18, 12 * 10**21),  # exact, where Kubernetes overflows int64
])
def test_value_and_milli_value_round_up(text: str, value: int, milli: int) -> None:
    q = parse_quantity(text)
    assert q.value() == value
    assert q.milli_value() == milli
    assert q.scaled_value(0) == value
    assert q.scaled_value(-3) == milli


@pytest.mark.parametrize(("exponent", "expected"), [
    (-9, 1_500_000_000), (-6, 1_500_000), (-3, 1500), (0, 2), (3, 1), (9, 1),
])
def test_scaled_value(exponent: int, expected: int) -> None:
    assert parse_quantity("1.5").scaled_value(exponent) == expected


@pytest.mark.parametrize(("a", "b", "total", "difference"), [
    ("1", "500m", "1500m", "500m"),
    ("1Gi", "512Mi", "1536Mi", "512Mi"),
    ("0", "1Gi", "1Gi", "-1Gi"),  # a zero left operand takes the right one's format
    ("1Gi", "0", "1Gi", "1Gi"),
    ("1k", "1Ki", "2024", "-24"),  # the left operand's format otherwise
    ("1Ki", "1k", "2024", "24"),
    ("1e3", "1", "1001", "999"),
    ("100m", "100m", "200m", "0"),
])
def test_add_and_subtract(a: str, b: str, total: str, difference: str) -> None:
    qa, qb = parse_quantity(a), parse_quantity(b)
    assert str(qa + qb) == total
    assert str(qa - qb) == difference
    assert (qa + qb).amount == qa.amount + qb.amount


def test_sum_multiply_negate() -> None:
    requests = [parse_quantity(t) for t in ("100m", "250m", "1")]
    assert str(sum(requests)) == "1350m"
    assert str(parse_quantity("250Mi") * 4) == "1000Mi"
    assert str(3 * parse_quantity("1Gi")) == "3Gi"
    assert str(-parse_quantity("1Gi")) == "-1Gi"
    assert str(abs(parse_quantity("-5m"))) == "5m"


@pytest.mark.parametrize(("a", "b", "order"), [
    ("1", "1000m", 0),
    ("1Ki", "1024", 0),
    ("1k", "1Ki", -1),
    ("1e3", "1k", 0),
    ("-1", "1n", -1),
    ("1.5Gi", "1536Mi", 0),
    ("1G", "1Gi", -1),
])
def test_comparison_is_by_value(a: str, b: str, order: int) -> None:
    qa, qb = parse_quantity(a), parse_quantity(b)
    assert (qa == qb) is (order == 0)
    assert (qa < qb) is (order < 0)
    assert (qa > qb) is (order > 0)
    assert (qa <= qb) is (order <= 0)
    assert (qa >= qb) is (order >= 0)
    if order == 0:
        assert hash(qa) == hash(qb)


def test_comparison_with_integers() -> None:
    q = parse_quantity("2k")
    assert q == 2000 and q > 0 and q < 2001 and q >= 2000 and q <= 2000
    assert parse_quantity("0Mi").is_zero() and parse_quantity("-0").sign() == 0
    assert parse_quantity("-1m").sign() == -1 and q.sign() == 1
    assert (q == "2k") is False
    with pytest.raises(TypeError):
        _ = q < "3k"  # type: ignore[operator]


def test_construction_rounds_to_nano_units() -> None:
    assert Quantity(Fraction(1, 3)).amount == Fraction(333333334, 10**9)
    assert Quantity(Fraction(-1, 3)).amount == -Fraction(333333334, 10**9)
    assert str(Quantity.from_milli(250)) == "250m"
    assert str(Quantity.from_milli(1536 * 1024 * 1000, "BinarySI")) == "1536Ki"
    assert repr(parse_quantity("1.5Gi")) == "Quantity('1536Mi')"
    with pytest.raises(QuantityError, match="unknown quantity format"):
        Quantity(Fraction(1), "Binary")  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "canonical"), [
    (1, "1"), (0, "0"), (-3, "-3"), (10**20, "100E"),
    (0.5, "500m"), (1.5, "1500m"), (0.1, "100m"), (2.0, "2"), (-0.25, "-250m"),
    (1e20, "100e18"), (1e-05, "10e-6"), (1e-12, "1e-9"),
])
def test_numbers(value: int | float, canonical: str) -> None:
    assert str(parse_quantity(value)) == canonical


ACCEPTED = "a quantity is a number such as 1, 0.5, .5 or -2, optionally followed by a suffix"


@pytest.mark.parametrize(("text", "reason"), [
    ("", "it is empty"),
    ("aoeu", "it does not start with a number"),
    ("k", "it does not start with a number"),  # Kubernetes reads these as 0
    ("Mi", "it does not start with a number"),
    (".", "it does not start with a number"),
    ("-", "it does not start with a number"),
    ("+.", "it does not start with a number"),
    (" 1", "it does not start with a number"),
    ("1 ", "spaces are not allowed"),
    ("1 Gi", "spaces are not allowed"),
    ("1.1.M", 'unknown suffix ".M"'),
    ("1+1.0M", 'unknown suffix "+1.0M"'),
    ("0.1mi", 'unknown suffix "mi"'),
    ("0.1am", 'unknown suffix "am"'),
    (".5i", 'unknown suffix "i"'),
    ("1i", 'unknown suffix "i"'),
    ("-3.01i", 'unknown suffix "i"'),
    ("-3.01e-", 'unknown suffix "e-"'),
    ("1e", 'unknown suffix "e"'),
    ("1e3.5", 'unknown suffix "e3.5"'),
    ("1K", 'unknown suffix "K"'),
    ("1KB", 'unknown suffix "KB"'),
    ("1gi", 'unknown suffix "gi"'),
    ("1Mi3", 'unknown suffix "Mi3"'),
    ("1e1001", "the exponent is above the largest supported, 1000"),
    ("1" * 1001, "the number has more than 1000 digits"),
])
def test_parse_errors(text: str, reason: str) -> None:
    with pytest.raises(QuantityError) as info:
        parse_quantity(text)
    message = str(info.value)
    assert message.startswith(f'invalid quantity "{text}": {reason}; ')
    assert ACCEPTED in message
    assert "Ki, Mi, Gi, Ti, Pi or Ei (powers of 1024)" in message


@pytest.mark.parametrize(("value", "message"), [
    (True, "expected a string or a number"),
    (None, "expected a string or a number"),
    (float("nan"), "it must be a finite number"),
    (float("inf"), "it must be a finite number"),
])
def test_parse_errors_for_other_types(value: object, message: str) -> None:
    with pytest.raises(QuantityError, match=message):
        parse_quantity(value)  # type: ignore[arg-type]


_suffix = st.sampled_from(["", "n", "u", "m", "k", "M", "G", "T", "P", "E",
                           "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "e3", "e-3", "E6", "e0"])
_text = st.builds(lambda sign, whole, frac, suffix: f"{sign}{whole}{frac}{suffix}",
                  st.sampled_from(["", "+", "-"]), st.integers(0, 10**12).map(str),
                  st.one_of(st.just(""), st.integers(0, 10**6).map(lambda i: f".{i}")),
                  _suffix)


@given(_text)
def test_canonical_form_is_a_fixed_point(text: str) -> None:
    q = parse_quantity(text)
    again = parse_quantity(str(q))
    assert again == q
    assert str(again) == str(q)
    assert (q.amount * 10**9).denominator == 1


@given(_text, _text)
def test_arithmetic_is_exact(a: str, b: str) -> None:
    qa, qb = parse_quantity(a), parse_quantity(b)
    assert (qa + qb).amount == qa.amount + qb.amount
    assert (qa + qb) - qb == qa
    total = qa + qb
    if total.format != "BinarySI" or abs(total.amount) <= 2**63 - 1:
        assert parse_quantity(str(total)) == total  # parsing caps binary quantities

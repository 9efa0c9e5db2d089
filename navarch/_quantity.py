"""Kubernetes resource quantities ("500m", "1.5Gi", "2e3"): exact parsing, arithmetic and
the canonical string form.

Grammar (Kubernetes')::

    quantity := [+-] number [suffix]
    number   := digits | digits "." digits | digits "." | "." digits
    suffix   := n | u | m | k | M | G | T | P | E       powers of 1000 ("DecimalSI")
              | Ki | Mi | Gi | Ti | Pi | Ei             powers of 1024 ("BinarySI")
              | (e | E) [+-] digits                     powers of ten ("DecimalExponent")

A parsed quantity is exact (a ``Fraction``) but, as in Kubernetes, never finer than one
nano-unit: anything below is rounded up, away from zero ("0.1n" is "1n"), so that asking
for a little of a resource never becomes asking for none. Binary quantities are capped at
2^63-1. A quantity remembers the kind of suffix it was written with and ``str()`` writes it
back in that kind, canonically: the largest suffix that loses no precision and needs no
fraction digits ("1000m" is "1", "0.5" is "500m", "1536Mi" stays, "2048Ki" is "2Mi",
"1e3" stays "1e3", "1.5e3" is "1500"). Binary quantities below 1024 in magnitude or with a
fractional part are written with decimal suffixes.

Deliberate differences from Kubernetes' parser, which also accepts input without any
digit ("-", ".", "k", "Mi" all read as zero there): here a number needs a digit, and
exponents beyond 10^1000 and numbers of more than 1000 digits are refused instead of
overflowing every integer accessor.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

__all__ = ["Quantity", "QuantityError", "QuantityFormat", "parse_quantity"]

QuantityFormat = Literal["DecimalSI", "BinarySI", "DecimalExponent"]
_FORMATS: tuple[QuantityFormat, ...] = ("DecimalSI", "BinarySI", "DecimalExponent")

_NANO = 10**9
_BINARY_CAP = 2**63 - 1
_MAX_EXPONENT = 1000
_MAX_DIGITS = 1000

_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12,
                     "P": 15, "E": 18}
_DECIMAL_BY_EXPONENT = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}  # powers of 1024
_BINARY_BY_POWER = {0: "", **{p: s for s, p in _BINARY_SUFFIXES.items()}}

_NUMBER = re.compile(r"(?P<sign>[+-]?)(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?")
_EXPONENT = re.compile(r"[eE](?P<exp>[+-]?[0-9]+)")

_ACCEPTED = ("a quantity is a number such as 1, 0.5, .5 or -2, optionally followed by a "
             "suffix: n, u, m, k, M, G, T, P or E (powers of 1000), Ki, Mi, Gi, Ti, Pi or "
             "Ei (powers of 1024), or an exponent such as e3 or E-3; no spaces")


class QuantityError(ValueError):
    """A string (or number) that is not a quantity; the message says what is accepted."""


def _round_away(value: Fraction) -> int:
    """The integer nearest ``value`` away from zero (ceiling for positive values)."""
    return math.ceil(value) if value >= 0 else -math.ceil(-value)


@dataclass(frozen=True, slots=True, eq=False)
class Quantity:
    """An exact amount and the suffix kind it is written with.

    Values are compared, hashed and added by ``amount`` alone (``1Ki == 1024``); ``format``
    only decides how ``str()`` writes the value. ``amount`` is rounded up, away from zero,
    to a whole number of nano-units on construction.
    """

    amount: Fraction
    format: QuantityFormat = "DecimalSI"

    def __post_init__(self) -> None:
        if self.format not in _FORMATS:
            raise QuantityError(f'unknown quantity format "{self.format}": use one of '
                                + ", ".join(_FORMATS))
        amount = Fraction(self.amount)
        if (amount * _NANO).denominator != 1:
            amount = Fraction(_round_away(amount * _NANO), _NANO)
        object.__setattr__(self, "amount", amount)

    @classmethod
    def from_milli(cls, milli: int, format: QuantityFormat = "DecimalSI") -> Quantity:
        """The quantity of ``milli`` thousandths (``from_milli(250)`` is "250m")."""
        return cls(Fraction(milli, 1000), format)

    def value(self) -> int:
        """The amount as an integer, rounded up (away from zero): "1500m" gives 2."""
        return _round_away(self.amount)

    def milli_value(self) -> int:
        """The amount in thousandths, rounded up (away from zero): "1.5" gives 1500,
        "1n" gives 1."""
        return _round_away(self.amount * 1000)

    def scaled_value(self, exponent: int) -> int:
        """The amount in units of 10**exponent, rounded up (away from zero):
        ``scaled_value(-3)`` is ``milli_value()``, ``scaled_value(6)`` counts millions."""
        return _round_away(self.amount / Fraction(10) ** exponent)

    def sign(self) -> int:
        """-1, 0 or 1."""
        return (self.amount > 0) - (self.amount < 0)

    def is_zero(self) -> bool:
        """True for any zero ("0", "0Mi", "-0")."""
        return self.amount == 0

    # Arithmetic keeps the left operand's format unless it is zero (then the right one's),
    # as Kubernetes' Quantity.Add and Sub do, so "0" + "1Gi" prints "1Gi".

    def __add__(self, other: Quantity) -> Quantity:
        if not isinstance(other, Quantity):
            return NotImplemented
        fmt = other.format if self.amount == 0 else self.format
        return Quantity(self.amount + other.amount, fmt)

    def __radd__(self, other: int) -> Quantity:
        """Only ``0 + q``, so that ``sum(quantities)`` works."""
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented

    def __sub__(self, other: Quantity) -> Quantity:
        if not isinstance(other, Quantity):
            return NotImplemented
        fmt = other.format if self.amount == 0 else self.format
        return Quantity(self.amount - other.amount, fmt)

    def __mul__(self, factor: int) -> Quantity:
        if isinstance(factor, bool) or not isinstance(factor, int):
            return NotImplemented
        return Quantity(self.amount * factor, self.format)

    __rmul__ = __mul__

    def __neg__(self) -> Quantity:
        return Quantity(-self.amount, self.format)

    def __abs__(self) -> Quantity:
        return Quantity(abs(self.amount), self.format)

    def _other(self, other: object) -> Fraction | None:
        if isinstance(other, Quantity):
            return other.amount
        if isinstance(other, int) and not isinstance(other, bool):
            return Fraction(other)
        return None

    def __eq__(self, other: object) -> bool:
        amount = self._other(other)
        return NotImplemented if amount is None else self.amount == amount

    def __hash__(self) -> int:
        return hash(self.amount)

    def __lt__(self, other: Quantity | int) -> bool:
        amount = self._other(other)
        return NotImplemented if amount is None else self.amount < amount

    def __le__(self, other: Quantity | int) -> bool:
        amount = self._other(other)
        return NotImplemented if amount is None else self.amount <= amount

    def __gt__(self, other: Quantity | int) -> bool:
        amount = self._other(other)
        return NotImplemented if amount is None else self.amount > amount

    def __ge__(self, other: Quantity | int) -> bool:
        amount = self._other(other)
        return NotImplemented if amount is None else self.amount >= amount

    def __str__(self) -> str:
        if self.amount == 0:
            return "0"
        sign = "-" if self.amount < 0 else ""
        magnitude = abs(self.amount)
        fmt = self.format
        if fmt == "BinarySI" and (magnitude < 1024 or magnitude.denominator != 1):
            fmt = "DecimalSI"
        if fmt == "BinarySI":
            return sign + _binary_form(magnitude.numerator)
        return sign + _decimal_form(magnitude, fmt)

    def __repr__(self) -> str:
        return f"Quantity('{self}')"


def _binary_form(value: int) -> str:
    power = 0
    while power < 6 and value % 1024 == 0:
        value //= 1024
        power += 1
    return f"{value}{_BINARY_BY_POWER[power]}"


def _decimal_form(magnitude: Fraction, fmt: QuantityFormat) -> str:
    """Mantissa and a power of ten that is a multiple of three, the largest such power that
    leaves the mantissa whole."""
    mantissa, exponent = int(magnitude * _NANO), -9
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    while exponent % 3:
        mantissa *= 10
        exponent -= 1
    if fmt == "DecimalExponent":
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    if exponent > 18:  # no SI suffix above E: write it in E
        mantissa *= 10 ** (exponent - 18)
        exponent = 18
    return f"{mantissa}{_DECIMAL_BY_EXPONENT[exponent]}"


def _fail(text: str, why: str = "") -> QuantityError:
    reason = f"{why}; " if why else ""
    return QuantityError(f'invalid quantity "{text}": {reason}{_ACCEPTED}')


def _suffix(text: str, suffix: str) -> tuple[int, int, QuantityFormat]:
    """(base, exponent, format) of a suffix: the value is multiplied by base**exponent."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], "DecimalSI"
    if suffix in _BINARY_SUFFIXES:
        return 2, 10 * _BINARY_SUFFIXES[suffix], "BinarySI"
    match = _EXPONENT.fullmatch(suffix)
    if match is None:
        if any(ch.isspace() for ch in suffix):
            raise _fail(text, "spaces are not allowed")
        raise _fail(text, f'unknown suffix "{suffix}"')
    exponent = int(match["exp"])
    if exponent > _MAX_EXPONENT:
        raise _fail(text, f"the exponent is above the largest supported, {_MAX_EXPONENT}")
    return 10, exponent, "DecimalExponent"


def _amount(digits: str, fraction_digits: int, base: int, exponent: int) -> Fraction:
    """digits / 10**fraction_digits * base**exponent, without building huge powers when
    the result is far below one nano-unit (it then rounds up to exactly one)."""
    mantissa = int(digits)
    if mantissa == 0:
        return Fraction(0)
    if base == 10:
        power = exponent - fraction_digits
        if power < -(9 + len(digits) + 1):
            return Fraction(1, _NANO)
        return mantissa * Fraction(10) ** power
    return Fraction(mantissa * 2**exponent, 10**fraction_digits)


@functools.lru_cache(maxsize=4096)  # Quantity is immutable; manifests repeat a few values
def _parse_text(text: str) -> Quantity:
    shape = _NUMBER.match(text)
    if shape is None:  # cannot happen: every part of the pattern is optional
        raise _fail(text)
    whole, fraction = shape["int"], shape["frac"] or ""
    if not whole and not fraction:
        raise _fail(text, "it does not start with a number" if text else "it is empty")
    if len(whole) + len(fraction) > _MAX_DIGITS:
        raise _fail(text, f"the number has more than {_MAX_DIGITS} digits")
    base, exponent, fmt = _suffix(text, text[shape.end():])
    amount = _amount(whole + fraction, len(fraction), base, exponent)
    if amount and (amount * _NANO).denominator != 1:
        amount = Fraction(math.ceil(amount * _NANO), _NANO)
    if fmt == "BinarySI":
        amount = min(amount, Fraction(_BINARY_CAP))
        if amount < 1:
            fmt = "DecimalSI"
    return Quantity(-amount if shape["sign"] == "-" else amount, fmt)


def parse_quantity(text: str | int | float) -> Quantity:
    """Parse a quantity written as Kubernetes accepts it (see the module docstring).

    Integers and finite floats are accepted too, read as their shortest decimal writing
    (a manifest's ``cpu: 0.5``). Raises ``QuantityError`` saying what is accepted.
    """
    if isinstance(text, bool):
        raise QuantityError(f"invalid quantity {text}: expected a string or a number")
    if isinstance(text, int):
        return _parse_text(str(text))
    if isinstance(text, float):
        if not math.isfinite(text):
            raise QuantityError(f"invalid quantity {text}: it must be a finite number")
        return _parse_text(repr(text))
    if not isinstance(text, str):
        raise QuantityError(f"invalid quantity {text!r}: expected a string or a number")
    return _parse_text(text)

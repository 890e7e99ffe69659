"""Exact arithmetic on base-unit amounts and fiat ``Decimal`` values. No float anywhere."""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, localcontext
from typing import Any

from django.db.models import QuerySet

# ISO 4217 minor-unit exponents of the fiat currencies a price may be given in.
CURRENCY_EXPONENTS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "JPY": 0, "KRW": 0, "CNY": 2,
    "HKD": 2, "SGD": 2, "INR": 2, "BRL": 2, "MXN": 2, "ZAR": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2,
    "CZK": 2, "HUF": 2, "TRY": 2, "ILS": 2, "AED": 2, "ISK": 0, "KWD": 3, "BHD": 3, "TND": 3, "VND": 0,
}  # fmt: skip

# How people write an amount for us: ASCII digits with at most one decimal point and digits on both sides of it.
# No sign, spaces, underscores, exponent or other numeral systems: Python's Decimal() would take "1_000", "+10",
# "10.", "1e3" and "١٠", and a price must mean exactly what its writer saw.
AMOUNT_RE = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)
AMOUNT_FORM = (
    'a string like "19.99": ASCII digits with at most one decimal point; no sign, spaces, underscores or exponent'
)

# Wide enough for any uint256 (78 digits) times any scale we use, so no operation here ever rounds.
_PRECISION = 200


def sum_amounts(queryset: QuerySet, field: str = "amount") -> int:
    """Exact sum of a ``Uint256Field`` column, on SQLite and PostgreSQL alike (summed in Python)."""
    return sum(queryset.values_list(field, flat=True), 0)


def parse_amount(value: Any) -> Decimal | None:
    """An amount given as text (``"19.99"``, see :data:`AMOUNT_RE`), a whole number or a finite ``Decimal``; None
    for anything else (bools, floats, other spellings)."""
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str) and AMOUNT_RE.fullmatch(value):
        return Decimal(value)
    return None


def to_base_units(amount: Decimal, decimals: int) -> int:
    """``Decimal("1.5")`` ETH → 1500000000000000000 wei. Rounds up: the merchant is never short-changed."""
    with localcontext(prec=_PRECISION):
        return int((amount * (Decimal(10) ** decimals)).to_integral_value(rounding=ROUND_CEILING))


def from_base_units(units: int, decimals: int) -> Decimal:
    """1500000000000000000 wei → ``Decimal("1.5")``, exact."""
    with localcontext(prec=_PRECISION):
        return Decimal(units).scaleb(-decimals)


def decimal_places(value: Decimal) -> int:
    """Digits after the decimal point as written (``Decimal("1.50")`` → 2); ``ValueError`` if not finite."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"{value} is not a finite number")
    return max(-exponent, 0)


def format_units(units: int, decimals: int) -> str:
    """Human-readable amount without exponent or trailing zeros: ``"1.5"``, ``"0.000001"``."""
    text = format(from_base_units(units, decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# An absolute underpayment tolerance never forgives more than this share of a session's amount due.
MAX_ABSOLUTE_TOLERANCE_PERCENT = Decimal(1)


def tolerance(rule: int | Decimal, amount_due: int) -> int:
    """Base units by which a payment may fall short of ``amount_due`` and still count as paid, under ``rule``
    (an ``UNDERPAYMENT_TOLERANCE`` entry: base units, or a percentage as a ``Decimal``).

    The tolerance is for rounding and fee dust. A percentage applies as configured (below 100 %). An absolute
    tolerance (base units) applies up to :data:`MAX_ABSOLUTE_TOLERANCE_PERCENT` % of ``amount_due`` and never
    more: ``10**16`` wei is dust on a 1 ETH session but the whole price of a $10 one, where it would let a 1 wei
    transfer pay the session.
    """
    if isinstance(rule, Decimal):
        return percent_of(amount_due, rule)
    return min(rule, percent_of(amount_due, MAX_ABSOLUTE_TOLERANCE_PERCENT))


def percent_of(amount: int, percent: Decimal) -> int:
    """``percent`` % of ``amount``, rounded down. Integer arithmetic: a Decimal product would round at 28 digits."""
    numerator, denominator = percent.as_integer_ratio()
    return amount * numerator // (denominator * 100)


def format_fiat(amount: Decimal, currency: str) -> str:
    """A fiat amount as a decimal string with its currency's minor units (``"79.00"`` USD, ``"2000"`` JPY),
    whatever scale the database returned it with; never rounded (more places than the currency has stay)."""
    exponent = CURRENCY_EXPONENTS.get(currency)
    with localcontext(prec=_PRECISION):
        if exponent is not None and amount == amount.quantize(Decimal(1).scaleb(-exponent)):
            return format(amount.quantize(Decimal(1).scaleb(-exponent)), "f")
        return format(amount.normalize(), "f")

"""Exact arithmetic on base-unit amounts and fiat ``Decimal`` values. No float anywhere."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, localcontext

from django.db.models import QuerySet

# Wide enough for any uint256 (78 digits) times any scale we use, so no operation here ever rounds.
_PRECISION = 200


def sum_amounts(queryset: QuerySet, field: str = "amount") -> int:
    """Exact sum of a ``Uint256Field`` column, on SQLite and PostgreSQL alike (summed in Python)."""
    return sum(queryset.values_list(field, flat=True), 0)


def to_base_units(amount: Decimal, decimals: int) -> int:
    """``Decimal("1.5")`` ETH → 1500000000000000000 wei. Rounds up: the merchant is never short-changed."""
    with localcontext(prec=_PRECISION):
        return int((amount * (Decimal(10) ** decimals)).to_integral_value(rounding=ROUND_CEILING))


def from_base_units(units: int, decimals: int) -> Decimal:
    """1500000000000000000 wei → ``Decimal("1.5")``, exact."""
    with localcontext(prec=_PRECISION):
        return Decimal(units).scaleb(-decimals)


def format_units(units: int, decimals: int) -> str:
    """Human-readable amount without exponent or trailing zeros: ``"1.5"``, ``"0.000001"``."""
    text = format(from_base_units(units, decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text

"""Model fields for on-chain amounts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core import exceptions
from django.db import models

UINT256_MAX = 2**256 - 1
_WIDTH = len(str(UINT256_MAX))  # 78 digits


class Uint256Field(models.Field):
    """An exact unsigned 256-bit integer (wei, token base units), as a Python ``int``.

    PostgreSQL stores it as ``numeric(78, 0)``, so SQL sums and comparisons are exact there. SQLite has no
    exact type this wide (its NUMERIC affinity turns large numbers into 8-byte floats), so there the value is
    stored as zero-padded 78-digit text: equality, ordering and range lookups still work in SQL because
    padded decimal strings sort like the numbers. Sum with :func:`payments_gateway.money.sum_amounts`,
    which is exact on both.
    """

    description = "Unsigned 256-bit integer"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default", 0)
        super().__init__(*args, **kwargs)

    def db_type(self, connection: Any) -> str:
        if connection.vendor == "postgresql":
            return "numeric(78, 0)"
        return f"varchar({_WIDTH})"

    def get_internal_type(self) -> str:
        return "Uint256Field"

    def to_python(self, value: Any) -> int | None:
        if value is None or isinstance(value, int) and not isinstance(value, bool):
            return self._validate_range(value)
        if isinstance(value, Decimal):
            if value != value.to_integral_value():
                raise exceptions.ValidationError(f"{value} is not a whole number of base units.")
            return self._validate_range(int(value))
        if isinstance(value, str) and value.strip().isdigit():
            return self._validate_range(int(value))
        raise exceptions.ValidationError(f"{value!r} is not a whole number of base units.", code="invalid")

    def _validate_range(self, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= UINT256_MAX:
            raise exceptions.ValidationError(f"{value} is outside 0..2**256-1.", code="out_of_range")
        return value

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> int | None:
        if value is None:
            return None
        return int(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or hasattr(value, "resolve_expression"):
            return value
        return self.to_python(value)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        if value is None or hasattr(value, "resolve_expression"):
            return value
        if connection.vendor == "postgresql":
            return Decimal(value)
        return str(value).zfill(_WIDTH)

    def formfield(self, **kwargs: Any) -> Any:
        from django import forms

        return super().formfield(**{"form_class": forms.IntegerField, "min_value": 0, **kwargs})

    def value_to_string(self, obj: models.Model) -> str:
        return str(self.value_from_object(obj))

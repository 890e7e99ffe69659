"""Model fields: exact on-chain amounts (``Uint256Field``), exact fiat decimals (``ExactDecimalField``) and JSON
that every database can store (``StorableJSONField``)."""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core import exceptions
from django.db import models
from django.forms.fields import InvalidJSONInput

from .jsonsafe import unstorable_text, validate_storable

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


class ExactDecimalField(models.DecimalField):
    """A non-negative ``Decimal`` (fiat prices, exchange rates) that keeps every digit on SQLite too.

    PostgreSQL stores it as ``numeric(max_digits, decimal_places)``, like ``DecimalField``. SQLite's NUMERIC
    affinity would turn the value into an 8-byte float and keep 15 significant digits, so there it is stored as
    fixed-point text with the integer part zero-padded to ``max_digits - decimal_places`` digits: equality,
    ordering and range lookups still work in SQL because such strings sort like the numbers. Floats are refused
    (they cannot hold a price exactly), and so is a value with more digits than the column holds (never rounded).
    Compute in Python, not in SQL: on SQLite an ``F("amount") + 1`` update or a ``Sum`` goes through floats.
    """

    description = "Exact non-negative decimal number"

    def get_internal_type(self) -> str:
        # Not "DecimalField": SQLite's converter for that type reads the value back through a float.
        return "ExactDecimalField"

    def db_type(self, connection: Any) -> str:
        if connection.vendor == "sqlite":
            return f"varchar({self.max_digits + 1})"
        return connection.data_types["DecimalField"] % self.db_type_parameters(connection)

    def to_python(self, value: Any) -> Decimal | None:
        if isinstance(value, float):
            raise exceptions.ValidationError(
                f"{value!r} is a float: give money as a Decimal or a string.", code="invalid"
            )
        return super().to_python(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        if isinstance(value, float):  # an SQL aggregate on SQLite; sum in Python for an exact total
            return Decimal(repr(value))
        return Decimal(value)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        if value is None or hasattr(value, "resolve_expression") or hasattr(value, "as_sql"):
            return value
        text = self._fixed_point(value)
        return text if connection.vendor == "sqlite" else Decimal(text)

    def _fixed_point(self, value: Decimal) -> str:
        """``value`` as zero-padded fixed-point text, or ``ValidationError`` if the column cannot hold it exactly."""
        width = self.max_digits - self.decimal_places
        try:
            quantized = value.quantize(Decimal(1).scaleb(-self.decimal_places), context=Context(prec=200))
        except InvalidOperation:  # more than 200 digits
            quantized = None
        if quantized is None or value < 0 or quantized != value:
            raise exceptions.ValidationError(
                f"{value} does not fit exactly in a non-negative number with {self.decimal_places} decimal places.",
                code="invalid",
            )
        whole, _, fraction = format(abs(quantized), "f").partition(".")
        if len(whole) > width:
            raise exceptions.ValidationError(f"{value} has more than {width} digits before the point.", code="invalid")
        return whole.zfill(width) + (f".{fraction}" if fraction else "")


class StorableJSONFormField(forms.JSONField):
    """The form field of :class:`StorableJSONField`: refuses text no database stores exactly, and shows such input
    back as it was typed (Django would re-render the decoded lone surrogate, which cannot be encoded: a 500)."""

    def bound_data(self, data: Any, initial: Any) -> Any:
        value = super().bound_data(data, initial)
        return InvalidJSONInput(data) if unstorable_text(value) else value

    def to_python(self, value: Any) -> Any:
        result = super().to_python(value)
        validate_storable(result)
        return result


class StorableJSONField(models.JSONField):
    """A ``JSONField`` (metadata) that refuses lone surrogates and NUL anywhere in it, in forms and
    ``full_clean()``: stored, they break every later read and every webhook carrying them."""

    default_validators = [validate_storable]

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(**{"form_class": StorableJSONFormField, **kwargs})

"""Template filters of the hosted pages: ``{% load payments_gateway %}``."""

from __future__ import annotations

from decimal import Decimal

from django import template

from ..i18n import localize_amount, with_language
from ..money import format_fiat

register = template.Library()


@register.filter
def amount(value: str | Decimal | int | None) -> str:
    """An exact amount in the active language's number format, every digit kept (``"1.234,5"`` in German)."""
    return localize_amount(value)


@register.filter
def fiat(value: Decimal, currency: str) -> str:
    """A fiat amount with its currency's minor units (``"79.00"`` USD), in the active language's number format."""
    return localize_amount(format_fiat(value, currency)) if value is not None else ""


@register.filter
def in_language(url: str, code: str) -> str:
    """``url`` with ``?lang=<code>``: a link or form that keeps the page's language."""
    return with_language(url, code)

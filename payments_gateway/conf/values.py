"""Checks of single setting values, shared by :mod:`.networks` and the settings object.

Each function returns the value normalised or raises ``ImproperlyConfigured`` whose message names the key (as
``key`` is given, e.g. ``PAYMENTS_GATEWAY['NETWORKS']['base']['confirmations']``), the bad value and the fix.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..formats import ADDRESS_RE

SETTING_NAME = "PAYMENTS_GATEWAY"


def key_of(*parts: str) -> str:
    """``key_of("NETWORKS", "base")`` → ``PAYMENTS_GATEWAY['NETWORKS']['base']``."""
    return SETTING_NAME + "".join(f"[{p!r}]" for p in parts)


def sub_key(key: str, part: str) -> str:
    """``sub_key("PAYMENTS_GATEWAY['NETWORKS']", "base")`` → ``PAYMENTS_GATEWAY['NETWORKS']['base']``."""
    return f"{key}[{part!r}]"


def duration(value: Any, key: str) -> timedelta:
    if isinstance(value, int) and not isinstance(value, bool):
        value = timedelta(seconds=value)
    if isinstance(value, timedelta) and value >= timedelta(0):
        return value
    raise ImproperlyConfigured(
        f"{key} must be a timedelta or a whole number of seconds, not negative, e.g. timedelta(hours=24); "
        f"got {value!r}."
    )


def positive_int(value: Any, key: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        floor = 0 if allow_zero else 1
        raise ImproperlyConfigured(f"{key} must be a whole number >= {floor}, not {value!r}.")
    return value


def positive_decimal(value: Any, key: str) -> Decimal:
    if isinstance(value, float):
        raise ImproperlyConfigured(
            f"{key} must be an int, a Decimal or a string, not a float ({value!r}): write it as {str(value)!r}."
        )
    if isinstance(value, bool):
        raise ImproperlyConfigured(f"{key} must be a number, not {value!r}.")
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ImproperlyConfigured(f"{key} must be a number, not {value!r}.") from None
    if not result.is_finite() or result <= 0:
        raise ImproperlyConfigured(f"{key} must be a positive number, not {value!r}.")
    return result


def boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"{key} must be True or False, not {value!r}.")
    return value


def public_url(value: Any, key: str) -> str | None:
    """None, or the origin (``scheme://host[:port]``) of an absolute http(s) URL; links append their path."""
    if value is None:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
        raise ImproperlyConfigured(
            f"{key} must be the scheme and host customers reach your site at, e.g. 'https://shop.example' (no "
            f"path: links add the app's own URL paths), not {value!r}."
        )
    return f"{parts.scheme}://{parts.netloc}"


def address(value: Any, key: str) -> str:
    """An EVM address, returned EIP-55 checksummed."""
    from eth_utils import to_checksum_address

    if not isinstance(value, str) or not ADDRESS_RE.match(value):
        raise ImproperlyConfigured(f"{key} must be a 0x-prefixed 20-byte hex address, not {value!r}.")
    return to_checksum_address(value)


def dotted_path(value: Any, key: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ImproperlyConfigured(f"{key} must be a registered name or a dotted path to a {what}, not {value!r}.")
    return value


def refuse_floats(value: Any, key: str) -> None:
    """Raise if a float hides anywhere in ``value``: floats cannot hold prices exactly."""
    if isinstance(value, float):
        raise ImproperlyConfigured(
            f"{key} is a float ({value!r}); money is never a float here: write it as a string {str(value)!r} "
            "or a Decimal."
        )
    if isinstance(value, dict):
        for k, v in value.items():
            refuse_floats(v, sub_key(key, k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            refuse_floats(v, f"{key}[{i}]")

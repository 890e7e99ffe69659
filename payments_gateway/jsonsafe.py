"""Parsing JSON from strangers without letting a deeply nested body crash the process.

web3's dependencies (py_ecc, py-evm) raise Python's recursion limit to 100 000 when imported. The C JSON
decoder recurses once per nesting level and relies on that limit, so after the import a body of ~100 000 ``[``
overflows the C stack and kills the worker (a segfault, not an exception). Every view that parses untrusted JSON
checks the nesting depth first, with :func:`loads`.
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 100


class JSONTooDeep(ValueError):
    """The document nests arrays/objects deeper than allowed."""


def loads(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that raises ``JSONTooDeep`` (a ``ValueError``) instead of recursing past ``max_depth``."""
    if isinstance(text, bytes | bytearray):
        text = text.decode()
    if nesting_deeper_than(text, max_depth):
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels")
    return json.loads(text)


def nesting_deeper_than(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than ``limit`` (cheap unless the body has many brackets)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def unstorable_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """Where ``value`` (parsed JSON, or a string) holds text no database stores exactly, as ``(path, reason)``;
    None when it holds none.

    JSON may carry a lone surrogate (``"\\ud800"``), which has no UTF-8 form: PostgreSQL refuses it, SQLite
    stores it escaped and hands back a string that no later JSON encoder can write as UTF-8 (an event body that
    can never be sent). NUL (``"\\u0000"``) is refused by PostgreSQL text and jsonb. Keys are checked as well
    as values; ``path`` names the place like ``metadata['a'][0]``.
    """
    if isinstance(value, str):
        for char in value:
            if char == "\x00" or "\ud800" <= char <= "\udfff":
                return path, f"contains U+{ord(char):04X}, a character that cannot be stored or sent"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}[{key!r}]" if path else str(key)
            found = unstorable_text(key, where) or unstorable_text(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_text(item, f"{path}[{index}]")
            if found:
                return found
    return None


def validate_storable(value: Any) -> None:
    """Model field validator (admin forms): ``ValidationError`` for text :func:`unstorable_text` refuses."""
    found = unstorable_text(value)
    if found:
        from django.core.exceptions import ValidationError

        path, reason = found
        raise ValidationError(f"{path or 'This value'} {reason}.", code="unstorable")

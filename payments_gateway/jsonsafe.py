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

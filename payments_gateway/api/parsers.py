"""The API's JSON parser: DRF's, with the nesting depth checked first and text no database can store refused
(see :mod:`payments_gateway.jsonsafe`), for every field of every endpoint at once."""

from __future__ import annotations

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from ..jsonsafe import loads, unstorable_text


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            data = loads(stream.read().decode(encoding))
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        found = unstorable_text(data)
        if found:
            path, reason = found
            field = path.split("[", 1)[0] or "non_field_errors"
            raise ValidationError({field: [f"{path or 'the body'} {reason}."]})
        return data

"""Request bodies taken as strictly as the schema describes them, so the OpenAPI schema is the API's exact rule:

- a field gets the JSON type it is declared with: a string field refuses ``12`` (DRF's own would take it as
  ``"12"``), an integer field ``"12"`` and ``true``, a boolean field anything but ``true`` / ``false``;
- a key the request does not know is refused, naming it and the known ones (DRF's own would drop it silently:
  a misspelt ``succes_url`` would be lost without a word); the schema says so with ``additionalProperties: false``.

:class:`StrictSerializer` / :class:`StrictModelSerializer` are the bases of every request serializer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

# Field class → (JSON type name, isinstance check). Subclasses match their base (EmailField is a CharField).
_TYPES: list[tuple[type, str, Any]] = [
    (serializers.BooleanField, "true or false", lambda v: isinstance(v, bool)),
    (serializers.IntegerField, "a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    (serializers.CharField, "a string", lambda v: isinstance(v, str)),
    (serializers.ChoiceField, "a string", lambda v: isinstance(v, str)),
    (serializers.UUIDField, "a string (a uuid)", lambda v: isinstance(v, str)),
    (serializers.ListField, "a list", lambda v: isinstance(v, list)),
    (serializers.ListSerializer, "a list", lambda v: isinstance(v, list)),
    (serializers.Serializer, "an object", lambda v: isinstance(v, Mapping)),
]


class StrictInputMixin:
    # Refuses unknown keys and values of the wrong JSON type, before DRF converts anything. (A comment, not a
    # docstring: the schema would show it as the description of every request body.)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            errors: dict[str, list[str]] = {}
            writable = {name: f for name, f in self.fields.items() if not f.read_only}  # type: ignore[attr-defined]
            for key, value in data.items():
                field = writable.get(key)
                if field is None:
                    errors[str(key)] = [f"unknown field; known: {', '.join(writable) or 'none'}."]
                elif (problem := wrong_type(field, value)) is not None:
                    errors[str(key)] = [problem]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictSerializer(StrictInputMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictInputMixin, serializers.ModelSerializer):
    pass


def wrong_type(field: serializers.Field, value: Any) -> str | None:
    """Why ``value`` is not of ``field``'s JSON type, or None (a null is the field's own business)."""
    if value is None or value is empty or getattr(field, "checks_its_own_type", False):
        return None
    for cls, name, fits in _TYPES:
        if isinstance(field, cls):
            if not fits(value):
                return f"must be {name}."
            child = getattr(field, "child", None)
            if isinstance(field, serializers.ListField) and child is not None:
                for item in value:
                    if (problem := wrong_type(child, item)) is not None:
                        return f"each item {problem}"
            return None
    return None


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if data is True or data is False:
            return data
        self.fail("invalid")
        raise AssertionError  # unreachable: fail raises


@extend_schema_field({"$ref": "#/components/schemas/Metadata"})
class JSONObjectField(serializers.JSONField):
    """A JSON object (``{}``), e.g. ``metadata``."""

    default_error_messages = {"not_object": "must be a JSON object."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            self.fail("not_object")
        return super().to_internal_value(data)

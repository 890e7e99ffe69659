"""The OpenAPI (drf-spectacular) description of the API, exact: every status code an operation can answer, each
error with the one JSON error shape of ``errors.py``, the ``Idempotency-Key`` header with its limits on every
POST, and the scope each operation needs.

:class:`GatewaySchema` is the ``schema`` of every API view (``GatewayAPIMixin``), so this holds whatever the
host project's ``REST_FRAMEWORK`` / ``SPECTACULAR_SETTINGS`` say; :data:`SCHEMA_SETTINGS` are the schema view's
own settings (request bodies as their own components, so a required text field carries ``minLength: 1``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework.permissions import SAFE_METHODS

from .auth import required_scope
from .idempotency import HEADER, KEY_PATTERN, MAX_KEY_LENGTH

SCHEMA_SETTINGS = {
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "payments_gateway.api.schema.exact_request_bodies",
    ],
}
# Text no database stores (NUL) is refused anywhere in a body (parsers.py): every request string says so.
NO_NUL = "^[^\\u0000]*$"
# metadata: any JSON object, its keys and strings without NUL, nested to any depth.
METADATA_SCHEMA = {
    "type": "object",
    "patternProperties": {NO_NUL: {"$ref": "#/components/schemas/MetadataValue"}},
    "additionalProperties": False,
    "description": "Your own data, kept and sent back as given (a JSON object, at most 8 KiB).",
}
METADATA_VALUE_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": NO_NUL},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "array", "items": {"$ref": "#/components/schemas/MetadataValue"}},
        {"$ref": "#/components/schemas/Metadata"},
    ],
    "nullable": True,
}

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every API error: what went wrong, as one sentence, and for a 400 each bad field.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "status": {"type": "integer", "description": "The HTTP status again."},
                "code": {"type": "string", "description": "invalid_request, not_authenticated, missing_scope, ..."},
                "message": {"type": "string", "description": "What is wrong, naming the field or the fix."},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": "400: each bad field (or request header) and its messages.",
                },
            },
            "required": ["status", "code", "message"],
        }
    },
    "required": ["error"],
}
# Why each error status happens; an operation lists those its method and parameters make possible.
ERRORS = {
    400: "Invalid request: `error.fields` names each bad field (or the Idempotency-Key header).",
    401: "Missing, invalid or revoked API key.",
    403: "The API key lacks the scope this operation needs (named in `error.message`).",
    404: "No such object.",
    409: "A request with this Idempotency-Key is still being processed (retry in a moment).",
}
IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": KEY_PATTERN},
    "description": "Same key + same request → the same response (header `Idempotent-Replayed: true`); the same key "
    "with a different request → 400; while the first still runs → 409. Printable ASCII, e.g. a UUID; kept 24 h.",
}


class GatewaySchema(AutoSchema):
    """drf-spectacular's AutoSchema, with the API's errors, the Idempotency-Key header and the required scope."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if not operation:
            return operation
        error = ResolvedComponent(name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA)
        registry.register_on_missing(error)
        for name, schema in (("Metadata", METADATA_SCHEMA), ("MetadataValue", METADATA_VALUE_SCHEMA)):
            registry.register_on_missing(
                ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
            )
        scope = required_scope(self.view, method)
        operation["x-required-scope"] = scope
        operation["description"] = (operation.get("description", "") + f"\n\nScope: `{scope}`.").strip()
        parameters = operation.setdefault("parameters", [])
        unsafe = method not in SAFE_METHODS
        if method == "POST" and not any(p["name"] == HEADER for p in parameters):
            parameters.append(IDEMPOTENCY_HEADER)
        elif method == "POST":
            parameters[:] = [IDEMPOTENCY_HEADER if p["name"] == HEADER else p for p in parameters]
        statuses = {401, 403}
        if unsafe or any(p["in"] == "query" for p in parameters):
            statuses.add(400)
        if any(p["in"] == "path" for p in parameters):
            statuses.add(404)
        if method == "POST":
            statuses.add(409)
        responses: dict[str, Any] = operation.setdefault("responses", {})
        for status in sorted(statuses):
            described = responses.get(str(status), {}).get("description")
            responses[str(status)] = {
                "description": described or ERRORS[status],
                "content": {"application/json": {"schema": error.ref}},
            }
        for code, response in responses.items():
            if int(code) >= 400 and "content" not in response:
                response["content"] = {"application/json": {"schema": error.ref}}
        return operation


def exact_request_bodies(result: dict[str, Any], generator, **kwargs) -> dict[str, Any]:
    """Request bodies as strict as the API (``strict.py``): no unknown keys, no NUL in any string."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
            for prop in component.get("properties", {}).values():
                _no_nul(prop)
    return result


def _no_nul(schema: dict[str, Any]) -> None:
    if schema.get("type") == "string" and not {"pattern", "enum", "format"} & schema.keys():
        schema["pattern"] = NO_NUL
    if isinstance(schema.get("items"), dict):
        _no_nul(schema["items"])


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "payments_gateway.api.auth.APIKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from the admin or `manage.py payments_gateway_apikey create <name>`; each "
            "operation names the scope it needs (`x-required-scope`).",
        }

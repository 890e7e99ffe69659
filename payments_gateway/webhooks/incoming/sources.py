"""Webhook sources: ``PAYMENTS_GATEWAY["WEBHOOK_SOURCES"]`` built into :class:`Source` objects.

Built lazily, on the first request (or ``manage.py check``), and cached until the settings change: the settings
object itself never imports a handler.

::

    "WEBHOOK_SOURCES": {
        "upstream": {                      # POST /webhooks/upstream/
            "scheme": "standard",          # or "hmac-sha256"
            "secrets": ["whsec_..."],      # several while a secret rotates
            "handler": "myshop.webhooks.handle_upstream",
        },
    }

A handler is a registered :class:`EventHandler` name, a dotted path to a subclass, or a dotted path to a function
``handler(event, payload)``. A source named like a registered handler uses it by default: the built-in source
``transactions`` checks the notified transaction on chain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from payments_gateway.conf import gateway_settings, settings_cache
from payments_gateway.plugins import load_plugin

from .handlers import EventHandler, FunctionHandler
from .schemes import DEFAULT_TOLERANCE, SignatureScheme

SOURCES_KEY = "PAYMENTS_GATEWAY['WEBHOOK_SOURCES']"
COMMON_KEYS = {"scheme", "secrets", "handler", "tolerance", "id_header", "type_header"}
MAX_EVENT_ID = 200
MAX_EVENT_TYPE = 100

_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Source:
    """One configured sender: how its requests are signed, what handles its events."""

    name: str
    scheme: SignatureScheme
    handler: EventHandler
    # Where the event id and type come from: these headers if set, else the body's "id" and "type".
    id_header: str | None = None
    type_header: str | None = None

    def identify(self, payload: Any, headers: Mapping[str, str]) -> tuple[str, str]:
        """The event's (id, type), or ``ValueError`` saying what is missing."""
        if not isinstance(payload, dict):
            raise ValueError("The body must be a JSON object.")
        event_id = self._field(payload, headers, self.id_header, "id", MAX_EVENT_ID)
        event_type = self._field(payload, headers, self.type_header, "type", MAX_EVENT_TYPE)
        return event_id, event_type

    @staticmethod
    def _field(payload: dict, headers: Mapping[str, str], header: str | None, name: str, limit: int) -> str:
        value = headers.get(header.lower()) if header else payload.get(name)
        where = f"header {header}" if header else f"field {name!r}"
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"The event has no {name}: {where} must be a non-empty string.")
        if len(value) > limit:
            raise ValueError(f"The event {name} is longer than {limit} characters.")
        if _CONTROL.search(value) or not _encodable(value):
            raise ValueError(f"The event {name} must be printable text (no control characters).")
        return value


def get_source(name: str) -> Source | None:
    """The configured source called ``name``, or None."""
    return configured_sources().get(name)


@settings_cache
def configured_sources() -> dict[str, Source]:
    """Every source of ``WEBHOOK_SOURCES``, built once per settings (``ImproperlyConfigured`` naming the key)."""
    return parse_sources(gateway_settings.WEBHOOK_SOURCES, SOURCES_KEY)


def parse_sources(value: Any, key: str) -> dict[str, Source]:
    """Validate the whole ``WEBHOOK_SOURCES`` dict (``key`` names it in errors)."""
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{key} must be a dict {{source name: {{'scheme', 'secrets', 'handler'}}}}.")
    return {name: parse_source(name, spec, f"{key}[{name!r}]") for name, spec in value.items()}


def parse_source(name: Any, spec: Any, key: str) -> Source:
    """Validate one source; every error names the key to fix."""
    if not isinstance(name, str) or not _SOURCE_NAME.match(name):
        raise ImproperlyConfigured(
            f"{key}: a source name is used in the URL /webhooks/<name>/: lowercase letters, digits, '-' or '_'."
        )
    if not isinstance(spec, dict):
        raise ImproperlyConfigured(f"{key} must be a dict with 'scheme', 'secrets' and 'handler'.")
    scheme_class = _scheme(spec.get("scheme"), f"{key}['scheme']")
    known = COMMON_KEYS | set(scheme_class.options)
    unknown = set(spec) - known
    if unknown:
        raise ImproperlyConfigured(
            f"{key} has unknown keys {sorted(unknown)}; the {spec['scheme']!r} scheme accepts {sorted(known)}."
        )
    secrets = spec.get("secrets")
    if isinstance(secrets, str) or not isinstance(secrets, list | tuple) or not secrets:
        raise ImproperlyConfigured(f"{key}['secrets'] must be a non-empty list of secrets, e.g. ['whsec_...'].")
    for index, secret in enumerate(secrets):
        if not isinstance(secret, str) or not secret:
            raise ImproperlyConfigured(f"{key}['secrets'][{index}] must be a non-empty string.")
        try:
            scheme_class.parse_secret(secret)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{key}['secrets'][{index}] is malformed: {exc}.") from None
    tolerance = spec.get("tolerance", DEFAULT_TOLERANCE)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 1:
        raise ImproperlyConfigured(f"{key}['tolerance'] must be a whole number of seconds >= 1, not {tolerance!r}.")
    options = {option: spec.get(option, default) for option, default in scheme_class.options.items()}
    for option in ("signature_header", "timestamp_header", "id_header", "type_header"):
        header = spec.get(option) if option in COMMON_KEYS else options.get(option)
        if header is not None and (not isinstance(header, str) or not _HEADER_NAME.match(header)):
            raise ImproperlyConfigured(f"{key}[{option!r}] must be an HTTP header name like 'X-Signature'.")
    if "sign_timestamp" in options and not isinstance(options["sign_timestamp"], bool):
        raise ImproperlyConfigured(f"{key}['sign_timestamp'] must be True or False.")
    return Source(
        name=name,
        scheme=scheme_class(secrets, tolerance=tolerance, **options),
        handler=_handler(name, spec.get("handler", _builtin_handler(name)), f"{key}['handler']"),
        id_header=spec.get("id_header"),
        type_header=spec.get("type_header"),
    )


def _scheme(value: Any, key: str) -> type[SignatureScheme]:
    if not isinstance(value, str) or not value:
        raise ImproperlyConfigured(
            f"{key} must be one of {sorted(SignatureScheme.registry)} or a dotted path, not {value!r}."
        )
    try:
        return load_plugin(SignatureScheme, value, key)
    except ImproperlyConfigured:
        if "." in value:
            raise
        raise ImproperlyConfigured(
            f"{key} must be one of {sorted(SignatureScheme.registry)} or a dotted path, not {value!r}."
        ) from None


def _builtin_handler(source: str) -> str | None:
    return source if source in EventHandler.registry else None


def _handler(name: str, path: Any, key: str) -> EventHandler:
    if not path:
        raise ImproperlyConfigured(f"{key} is not set: give the dotted path of the function that handles {name}.")
    if not isinstance(path, str):
        raise ImproperlyConfigured(f"{key} must be a dotted path string, not {path!r}.")
    if path in EventHandler.registry:
        return EventHandler.registry[path]()
    try:
        target = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{key}: cannot import {path!r} ({exc}).") from None
    if isinstance(target, type) and issubclass(target, EventHandler):
        return target()
    if isinstance(target, EventHandler):
        return target
    if callable(target):
        return FunctionHandler(target)
    raise ImproperlyConfigured(f"{key}: {path!r} is neither an EventHandler subclass nor a function.")


def _encodable(text: str) -> bool:
    # JSON may carry lone surrogates ("\ud800"), which no database column can store as UTF-8.
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True

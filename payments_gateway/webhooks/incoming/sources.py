"""Webhook sources: ``PAYMENTS_GATEWAY["WEBHOOK_SOURCES"]`` validated into :class:`Source` objects.

::

    "WEBHOOK_SOURCES": {
        "upstream": {                      # POST /webhooks/upstream/
            "scheme": "standard",          # or "hmac-sha256"
            "secrets": ["whsec_..."],      # several while a secret rotates
            "handler": "myshop.webhooks.handle_upstream",
        },
    }

A handler is a dotted path to an :class:`EventHandler` subclass or to a function ``handler(event, payload)``.
The built-in source ``transactions`` has a default handler (on-chain check of the notified transaction).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .schemes import DEFAULT_TOLERANCE, SCHEMES, SignatureScheme

if TYPE_CHECKING:
    from payments_gateway.models import WebhookEvent

BUILTIN_HANDLERS = {"transactions": "payments_gateway.webhooks.incoming.handlers.TransactionNoticeHandler"}
COMMON_KEYS = {"scheme", "secrets", "handler", "tolerance", "id_header", "type_header"}
MAX_EVENT_ID = 200
MAX_EVENT_TYPE = 100

_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class EventHandler:
    """Base class for a source's handler.

    :meth:`validate` runs in the receiver after the signature check (a ``ValueError`` becomes a 400 and the
    event is not stored); :meth:`handle` runs in the processing task, one worker at a time per event.
    A handler that raises leaves the event ``failed`` with the traceback, and it is retried with backoff.

    :meth:`handle` runs **outside any transaction** (on SQLite an open transaction would hold the database-wide
    write lock while the handler waits on the network): writes that must be all-or-nothing go in the handler's
    own ``transaction.atomic()``, with network calls kept outside it. It must be **idempotent**: a worker that
    dies after the handler's writes and before the event is marked processed leaves the event to be handled
    again.
    """

    def validate(self, payload: dict[str, Any]) -> None:
        """Raise ``ValueError`` with a message for the sender if ``payload`` can never be handled."""

    def handle(self, event: WebhookEvent, payload: dict[str, Any]) -> str | None:
        """Act on the event (outside any transaction; idempotently); the returned text is kept as its result."""
        raise NotImplementedError


class FunctionHandler(EventHandler):
    """Adapts a plain function ``handler(event, payload)`` to :class:`EventHandler`."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    def handle(self, event: WebhookEvent, payload: dict[str, Any]) -> str | None:
        result = self.function(event, payload)
        return None if result is None else str(result)


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
    from payments_gateway.conf import gateway_settings

    return gateway_settings.WEBHOOK_SOURCES.get(name)


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
    scheme_name = spec.get("scheme")
    if scheme_name not in SCHEMES:
        raise ImproperlyConfigured(f"{key}['scheme'] must be one of {sorted(SCHEMES)}, not {scheme_name!r}.")
    scheme_class = SCHEMES[scheme_name]
    known = COMMON_KEYS | set(scheme_class.options)
    unknown = set(spec) - known
    if unknown:
        raise ImproperlyConfigured(
            f"{key} has unknown keys {sorted(unknown)}; the {scheme_name!r} scheme accepts {sorted(known)}."
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
        handler=_handler(name, spec.get("handler", BUILTIN_HANDLERS.get(name)), f"{key}['handler']"),
        id_header=spec.get("id_header"),
        type_header=spec.get("type_header"),
    )


def _handler(name: str, path: Any, key: str) -> EventHandler:
    if not path:
        raise ImproperlyConfigured(f"{key} is not set: give the dotted path of the function that handles {name}.")
    if not isinstance(path, str):
        raise ImproperlyConfigured(f"{key} must be a dotted path string, not {path!r}.")
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

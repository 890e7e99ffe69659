"""Event handlers of incoming webhooks: the seam (:class:`EventHandler`, a registry by name) and the built-ins.

Built-in ``transactions`` (:class:`TransactionNoticeHandler`): a notice of an on-chain transfer is only a hint to
look now.

A notice (``transaction.detected|confirmed|failed`` with ``network``, ``tx_hash`` and ``address``, at the top
level or in ``data``, as this app's own outgoing ``transaction.*`` events carry them) makes the chain layer
check that one transaction at once, instead of at the next scheduled scan. Nothing in the notice is trusted:
the amount, the recipient and the confirmations all come from the chain, so a forged or wrong notice can
never mark a session paid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from payments_gateway.conf import gateway_settings
from payments_gateway.formats import ADDRESS_RE, TX_HASH_RE
from payments_gateway.models import WebhookEvent
from payments_gateway.plugins import Plugin

TRANSACTION_TYPES = ("transaction.detected", "transaction.confirmed", "transaction.failed")


class EventHandler(Plugin):
    """Base class for a source's handler (a subclass with a ``name`` is registered under it).

    :meth:`validate` runs in the receiver after the signature check (a ``ValueError`` becomes a 400 and the
    event is not stored); :meth:`handle` runs in the processing task, one worker at a time per event.
    A handler that raises leaves the event ``failed`` with the traceback, and it is retried with backoff.

    :meth:`handle` runs **outside any transaction** (on SQLite an open transaction would hold the database-wide
    write lock while the handler waits on the network): writes that must be all-or-nothing go in the handler's
    own ``transaction.atomic()``, with network calls kept outside it. It must be **idempotent**: a worker that
    dies after the handler's writes and before the event is marked processed leaves the event to be handled
    again.
    """

    registry: ClassVar[dict[str, type[EventHandler]]] = {}

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


class TransactionNoticeHandler(EventHandler):
    """Handler of the built-in ``transactions`` source."""

    name = "transactions"

    def validate(self, payload: dict[str, Any]) -> None:
        notice(payload)

    def handle(self, event: WebhookEvent, payload: dict[str, Any]) -> str | None:
        from payments_gateway.scanning import check_transaction

        network, tx_hash, _address = notice(payload)
        result = check_transaction(network, tx_hash)
        return f"checked {tx_hash} on {network}: {result!r}"


def notice(payload: dict[str, Any]) -> tuple[str, str, str]:
    """(network, tx hash, address) of a valid notice, or ``ValueError`` naming the bad field."""
    kind = payload.get("type")
    if kind not in TRANSACTION_TYPES:
        raise ValueError(f"type must be one of {', '.join(TRANSACTION_TYPES)}, not {kind!r}.")
    data = payload.get("data", payload)
    if not isinstance(data, dict):
        raise ValueError("data must be an object with network, tx_hash and address.")
    network, tx_hash = data.get("network"), data.get("tx_hash")
    address = data.get("address", data.get("to"))
    if not isinstance(network, str) or network not in gateway_settings.NETWORKS:
        known = ", ".join(sorted(gateway_settings.NETWORKS)) or "none"
        raise ValueError(f"network {network!r} is not configured here (configured: {known}).")
    if not isinstance(tx_hash, str) or not TX_HASH_RE.match(tx_hash):
        raise ValueError("tx_hash must be a 0x-prefixed 32-byte hex transaction hash.")
    if not isinstance(address, str) or not ADDRESS_RE.match(address):
        raise ValueError("address must be a 0x-prefixed 20-byte hex address.")
    return network, tx_hash.lower(), address

"""Built-in handlers. ``transactions``: a notice of an on-chain transfer is only a hint to look now.

A notice (``transaction.detected|confirmed|failed`` with ``network``, ``tx_hash`` and ``address``, at the top
level or in ``data``, as this app's own outgoing ``transaction.*`` events carry them) makes the chain layer
check that one transaction at once, instead of at the next scheduled scan. Nothing in the notice is trusted:
the amount, the recipient and the confirmations all come from the chain, so a forged or wrong notice can
never mark a session paid.
"""

from __future__ import annotations

from typing import Any

from payments_gateway.conf import ADDRESS_RE, TX_HASH_RE, gateway_settings
from payments_gateway.models import WebhookEvent

from .sources import EventHandler

TRANSACTION_TYPES = ("transaction.detected", "transaction.confirmed", "transaction.failed")


class TransactionNoticeHandler(EventHandler):
    """Handler of the built-in ``transactions`` source."""

    def validate(self, payload: dict[str, Any]) -> None:
        notice(payload)

    def handle(self, event: WebhookEvent, payload: dict[str, Any]) -> str | None:
        from payments_gateway.chain.scanner import check_transaction

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

"""Helpers for the scanner tests: sessions on fresh deposit addresses of the dev chain."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from web3 import Web3

from payments_gateway.models import CheckoutSession, DepositAddress, Order


def new_address() -> str:
    return Web3.to_checksum_address("0x" + os.urandom(20).hex())


def open_session(
    network: str = "anvil", *, asset: str = "ETH", amount_due: int = 10**18, address: str | None = None, **fields
) -> CheckoutSession:
    """An open session on a fresh deposit address (an address nobody else pays)."""
    now = timezone.now()
    deposit = fields.pop("deposit_address", None)
    if deposit is None:
        n = DepositAddress.objects.filter(network=network).count()
        deposit = DepositAddress.objects.create(
            network=network, index=10_000 + n, address=address or new_address(), busy_until=now + timedelta(days=2)
        )
    order = Order.objects.create(amount=Decimal("10.00"), currency="USD")
    values = {
        "order": order,
        "network": network,
        "asset": asset,
        "amount_due": amount_due,
        "fiat_amount": Decimal("10.00"),
        "fiat_currency": "USD",
        "quote_rate": Decimal("3000"),
        "quote_source": "fixed",
        "quoted_at": now,
        "expires_at": now + timedelta(hours=1),
        "deposit_address": deposit,
        "created": now - timedelta(seconds=30),
    } | fields
    return CheckoutSession.objects.create(**values)

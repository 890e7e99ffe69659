"""Small builders for test rows (no chain needed)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from payments_gateway.chain.devchain import MERCHANT_XPUB
from payments_gateway.models import CheckoutSession, DepositAddress, Order, Transfer

_counter = itertools.count(1)

#: The merchant's account xpub in tests (public "abandon ×11 about" mnemonic, not anvil's: see devchain.py).
TEST_XPUB = MERCHANT_XPUB

TEST_NETWORK = {
    "chain_id": 31337,
    "rpc_urls": ["http://127.0.0.1:1"],
    "confirmations": 3,
    "block_time": 1,
    "tokens": {"USDC": {"address": "0x" + "a0" * 20, "decimals": 6}},
}


def make_session(
    *, asset: str = "USDC", amount_due: int = 10_000_000, network: str = "test", **kwargs
) -> CheckoutSession:
    n = next(_counter)
    now = timezone.now()
    order = Order.objects.create(reference=f"T-{n}", amount=Decimal("10.00"), currency="USD")
    address = DepositAddress.objects.create(
        network=network, index=n, address=f"0x{n:040x}", busy_until=now + timedelta(days=2)
    )
    fields = {
        "order": order,
        "network": network,
        "asset": asset,
        "amount_due": amount_due,
        "fiat_amount": Decimal("10.00"),
        "fiat_currency": "USD",
        "quote_rate": Decimal("1"),
        "quote_source": "fixed",
        "quoted_at": now,
        "expires_at": now + timedelta(hours=1),
        "deposit_address": address,
    } | kwargs
    return CheckoutSession.objects.create(**fields)


def make_transfer(
    session: CheckoutSession, amount: int, *, status: str = "detected", late: bool = False, **kwargs
) -> Transfer:
    n = next(_counter)
    fields = {
        "network": session.network,
        "tx_hash": f"0x{n:064x}",
        "log_index": 0,
        "kind": "erc20",
        "block_number": n,
        "block_hash": f"0x{n:064x}",
        "from_address": "0x" + "99" * 20,
        "to_address": session.deposit_address.address,
        "asset": session.asset,
        "amount": amount,
        "status": status,
        "late": late,
        "session": session,
        "deposit_address": session.deposit_address,
    } | kwargs
    return Transfer.objects.create(**fields)

"""Builders of test rows: every test makes its orders, customers, deposit addresses, sessions, transfers, webhook
endpoints, events, deliveries, incoming events and API keys here, so a change to a model is made in one place.

Each builder takes the model's fields as keyword options over defaults that make a valid row. What must be unique
(address indices and addresses, transaction hashes, block numbers, order references, event ids) comes from one
counter, never from counting rows: two builders never hand out the same value, whatever the test made before.
"""

from __future__ import annotations

import itertools
import os
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from rest_framework.test import APIClient
from web3 import Web3

from payments_gateway.chain.devchain import MERCHANT_XPUB
from payments_gateway.models import (
    APIKey,
    CheckoutSession,
    Customer,
    DepositAddress,
    Event,
    IdempotencyKey,
    Order,
    Refund,
    Subscription,
    SubscriptionPeriod,
    Sweep,
    SweptAddress,
    Transfer,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

#: The merchant's account xpub in tests (public "abandon ×11 about" mnemonic, not anvil's: see devchain.py).
TEST_XPUB = MERCHANT_XPUB

#: An offline network (nothing listens at its RPC URL) with ETH and USDC, for tests without a chain.
TEST_NETWORK = {
    "chain_id": 31337,
    "rpc_urls": ["http://127.0.0.1:1"],
    "confirmations": 3,
    "block_time": 1,
    "tokens": {"USDC": {"address": "0x" + "a0" * 20, "decimals": 6}},
}

_numbers = itertools.count(1)


def unique_number() -> int:
    """A number that no other call returns in this test run."""
    return next(_numbers)


def fresh_address() -> str:
    """A random EIP-55 address: on the dev chain, one that nobody else pays (no account, contract or precompile)."""
    return Web3.to_checksum_address("0x" + os.urandom(20).hex())


# --- checkout ---------------------------------------------------------------------------------------------------


def make_order(**fields) -> Order:
    """An order of 10.00 USD with a unique reference (``reference=""`` for none)."""
    values = {"reference": f"T-{unique_number()}", "amount": Decimal("10.00"), "currency": "USD"}
    return Order.objects.create(**values | fields)


def make_customer(**fields) -> Customer:
    """A customer with a unique e-mail address."""
    return Customer.objects.create(**{"email": f"customer-{unique_number()}@example.com"} | fields)


def make_deposit_address(*, network: str = "test", **fields) -> DepositAddress:
    """Deposit address of the next unique index, at an address made from it (not the xpub's), busy for two days."""
    n = unique_number()
    values = {
        "network": network,
        "index": n,
        "address": f"0x{n:040x}",
        "busy_until": timezone.now() + timedelta(days=2),
    }
    return DepositAddress.objects.create(**values | fields)


def make_session(
    *, network: str = "test", asset: str = "USDC", amount_due: int = 10_000_000, address: str | None = None, **fields
) -> CheckoutSession:
    """An open, unpaid session for a new 10.00 USD order, quoted at a fixed rate of 1, expiring in an hour.

    Its deposit address is ``deposit_address`` if given, else a new one (at ``address`` if given, see
    :func:`make_deposit_address`). Any other field of the session can be given: ``order``, ``customer``,
    ``status``, ``created``, ``expires_at``...
    """
    if "deposit_address" not in fields:
        fields["deposit_address"] = make_deposit_address(network=network, **({"address": address} if address else {}))
    elif address is not None:
        raise TypeError("make_session() takes address or deposit_address, not both")
    if "order" not in fields:
        fields["order"] = make_order()
    now = timezone.now()
    values = {
        "payment_methods": [{"network": network, "asset": asset}],
        "network": network,
        "asset": asset,
        "amount_due": amount_due,
        "fiat_amount": Decimal("10.00"),
        "fiat_currency": "USD",
        "quote_rate": Decimal("1"),
        "quote_source": "fixed",
        "quoted_at": now,
        "expires_at": now + timedelta(hours=1),
    }
    return CheckoutSession.objects.create(**values | fields)


def make_choosing_session(
    *, methods: tuple[tuple[str, str], ...] = (("test", "USDC"), ("test", "ETH")), **fields
) -> CheckoutSession:
    """An open session for a new 10.00 USD order offering ``methods`` ((network, asset) pairs), whose customer has not
    chosen yet: no network, asset, amount, quote or deposit address. Any other field can be given."""
    now = timezone.now()
    values = {
        "order": make_order() if "order" not in fields else fields.pop("order"),
        "payment_methods": [{"network": n, "asset": a} for n, a in methods],
        "fiat_amount": Decimal("10.00"),
        "fiat_currency": "USD",
        "expires_at": now + timedelta(hours=1),
    }
    return CheckoutSession.objects.create(**values | fields)


def make_chain_session(**options) -> CheckoutSession:
    """:func:`make_session` on the dev chain's network "anvil", at a fresh random address (unless ``deposit_address``
    is given), created 30 s ago: a payment mined a moment ago falls within its lifetime."""
    if "deposit_address" not in options:
        options.setdefault("address", fresh_address())
    return make_session(**{"network": "anvil", "created": timezone.now() - timedelta(seconds=30)} | options)


def make_forwarder_session(**options) -> CheckoutSession:
    """:func:`make_chain_session` at the next address of network "anvil"'s own deposit scheme (with
    ``forwarder_settings``: a CREATE2 deposit address of the dev factory, bound to the dev treasury)."""
    from django.db import transaction

    from payments_gateway.deposits import allocate_address

    with transaction.atomic():
        address = allocate_address(options.get("network", "anvil"), timezone.now() + timedelta(days=2))
    return make_chain_session(deposit_address=address, **options)


def make_transfer(
    session: CheckoutSession | None = None, amount: int = 1, *, status: str = "detected", late: bool = False, **fields
) -> Transfer:
    """A token transfer of ``amount`` base units in its own transaction and block: to ``session``'s address, in its
    asset and credited to it, or, with no session, to an address of no session."""
    n = unique_number()
    values = {
        "network": "test",
        "tx_hash": f"0x{n:064x}",
        "log_index": 0,
        "kind": "erc20",
        "block_number": n,
        "block_hash": f"0x{n:064x}",
        "from_address": "0x" + "99" * 20,
        "to_address": f"0x{n:040x}",
        "asset": "USDC",
        "amount": amount,
        "status": status,
        "late": late,
    }
    if session is not None:
        values |= {
            "network": session.network,
            "to_address": session.deposit_address.address,
            "asset": session.asset,
            "session": session,
            "deposit_address": session.deposit_address,
        }
    return Transfer.objects.create(**values | fields)


def make_subscription(*, session: CheckoutSession | None = None, start=None, **fields) -> Subscription:
    """An active subscription of 10.00 USD a month whose first period, paid, starts at ``start`` (default: now) and
    is collected by ``session`` (a new complete ``createSubscription`` session if not given). Any field of the
    subscription can be given: ``status``, ``customer``, ``interval``, ``amount``..."""
    from payments_gateway.services.periods import period_bounds

    start = start or timezone.now()
    if session is None:
        session = make_session(type="createSubscription", status="complete", payment_status="paid", completed_at=start)
    values = {
        "customer": session.customer,
        "description": "Coffee club, monthly",
        "amount": Decimal("10.00"),
        "currency": "USD",
        "interval": "month",
        "interval_count": 1,
        "payment_methods": [{"network": session.network, "asset": session.asset}],
        "status": "active",
    } | fields
    end = period_bounds(start, values["interval"], values["interval_count"], 1)[1]
    subscription = Subscription.objects.create(
        billing_anchor=start, current_period_start=start, current_period_end=end, **values
    )
    SubscriptionPeriod.objects.create(subscription=subscription, number=1, start=start, end=end, session=session,
                                      paid_at=start)  # fmt: skip
    return subscription


def make_payment(session: CheckoutSession, *, now=None, amount: int | None = None) -> CheckoutSession:
    """A confirmed transfer of ``amount`` (default: the amount due) to ``session``, then the session refreshed at
    ``now`` as the scanner does (so it completes, and a subscription it pays moves); returns the session."""
    from payments_gateway.services.payments import refresh_session

    make_transfer(session, session.amount_due if amount is None else amount, status="confirmed")
    return refresh_session(session.pk, now=now)


def deploy_token(chain, symbol: str = "STRAY", decimals: int = 18, mint_to: int = 0, amount: int = 10**24) -> str:
    """A new ERC-20 (the dev chain's TestToken) on ``chain`` that the gateway does not know, ``amount`` base units
    minted to dev account ``mint_to``; returns its EIP-55 address."""
    from payments_gateway.chain.contracts import load_artifact

    artifact = load_artifact("TestToken")
    factory = chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = factory.constructor(f"{symbol} token", symbol, decimals).transact({"from": chain.accounts[0]})
    address = chain.w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    token = chain.w3.eth.contract(address=address, abi=artifact["abi"])
    chain.w3.eth.wait_for_transaction_receipt(
        token.functions.mint(chain.accounts[mint_to], amount).transact({"from": chain.accounts[0]})
    )
    return Web3.to_checksum_address(address)


def make_unmatched(session: CheckoutSession | None = None, amount: int = 5_000_000, **fields) -> Transfer:
    """A confirmed transfer that settles nothing and needs attention: by default 5 USDT to ``session``'s address
    (a USDC session: ``wrong_asset``), or to an address of no session (``closed_session``)."""
    values = {"asset": "USDT", "status": "confirmed", "confirmations": 12, "resolution": "open",
              "reason": "wrong_asset" if session is not None else "closed_session"}  # fmt: skip
    return make_transfer(session, amount, **values | fields)


def make_refund(session: CheckoutSession | None = None, transfer: Transfer | None = None, **fields) -> Refund:
    """A refund of 1 USDC of ``session`` (or of ``transfer``), awaiting the customer's address."""
    target = session or transfer
    values = {
        "session": session,
        "transfer": transfer,
        "network": target.network if target else "test",
        "asset": target.asset if target else "USDC",
        "amount": 1_000_000,
    }
    return Refund.objects.create(**values | fields)


def make_sweep(*addresses: DepositAddress, **fields) -> Sweep:
    """A relayer's sweep of USDC from ``addresses`` (each holding 1 USDC), pending, in its own transaction."""
    n = unique_number()
    values = {
        "network": "anvil",
        "asset": "USDC",
        "token_address": "0x" + "a0" * 20,
        "treasury": "0x" + "7e" * 20,
        "factory": "0x" + "fa" * 20,
        "planned_amount": 1_000_000 * len(addresses),
        "tx_hash": f"0x{n:064x}",
        "sender": "0x" + "5e" * 20,
        "nonce": n,
    }
    sweep = Sweep.objects.create(**values | fields)
    SweptAddress.objects.bulk_create(SweptAddress(sweep=sweep, deposit_address=a, balance=1_000_000) for a in addresses)
    return sweep


# --- webhooks -----------------------------------------------------------------------------------------------------


def make_endpoint(url: str = "https://shop.example/hooks", **fields) -> WebhookEndpoint:
    """An active webhook endpoint that wants every event type, with a new secret."""
    return WebhookEndpoint.objects.create(url=url, **fields)


def make_event(**fields) -> Event:
    """A ``payment.created`` event with no data (``emit`` is what makes real events and their deliveries)."""
    return Event.objects.create(**{"type": "payment.created"} | fields)


def make_delivery(event: Event | None = None, endpoint: WebhookEndpoint | None = None, **fields) -> WebhookDelivery:
    """A pending delivery of ``event`` (a new one if not given) to ``endpoint`` (likewise)."""
    return WebhookDelivery.objects.create(event=event or make_event(), endpoint=endpoint or make_endpoint(), **fields)


def make_attempt(delivery: WebhookDelivery | None = None, **fields) -> WebhookAttempt:
    """One logged attempt of ``delivery`` (a new one if not given); give its ``status_code``, ``error``..."""
    return WebhookAttempt.objects.create(delivery=delivery or make_delivery(), **fields)


def make_incoming_event(**fields) -> WebhookEvent:
    """A stored incoming event from the "partner" source, with a unique id, not processed yet."""
    values = {"source": "partner", "event_id": f"evt_{unique_number()}", "type": "payment.completed", "body": b"{}"}
    return WebhookEvent.objects.create(**values | fields)


# --- API ------------------------------------------------------------------------------------------------------------


def make_api_key(name: str = "shop") -> tuple[APIKey, str]:
    """An active API key: the row and the raw key (shown once in real use)."""
    return APIKey.objects.create_key(name)


def make_idempotency_key(api_key: APIKey | None = None, **fields) -> IdempotencyKey:
    """A used Idempotency-Key of ``api_key`` (a new one if not given) whose first request answered 201."""
    values = {"key": f"idem-{unique_number()}", "fingerprint": "f" * 64, "response_status": 201}
    return IdempotencyKey.objects.create(api_key=api_key or make_api_key()[0], **values | fields)


def api_client(raw_key: str) -> APIClient:
    """A REST client that sends ``raw_key`` as its bearer token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client

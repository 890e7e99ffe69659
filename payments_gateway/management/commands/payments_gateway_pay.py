"""``manage.py payments_gateway_pay <session uuid>``: pay a checkout session from a dev-chain account (dev only)."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from ...chain.devchain import DevChainError, pay_session
from ...conf import gateway_settings
from ...models import CheckoutSession, SessionStatus
from ...money import format_units


class Command(BaseCommand):
    help = (
        "Dev chains only: send ETH or the session's token from one of anvil's default accounts to the session's "
        "deposit address, for what is still due or for --amount. Prints the transaction hash."
    )

    def add_arguments(self, parser):
        parser.add_argument("session", help="checkout session uuid")
        parser.add_argument("--amount", help="amount in asset units, e.g. 12.5 (default: what is still due)")
        parser.add_argument("--from-account", type=int, default=0, help="anvil default account index (default 0)")

    def handle(self, *args, session, amount, from_account, **options):
        try:
            session_uuid = uuid.UUID(session)
        except ValueError:
            raise CommandError(f"{session!r} is not a session uuid") from None
        try:
            checkout = CheckoutSession.objects.select_related("deposit_address").get(uuid=session_uuid)
        except CheckoutSession.DoesNotExist:
            raise CommandError(f"no checkout session {session_uuid}") from None
        if checkout.deposit_address is None:
            raise CommandError(f"session {session_uuid} has no payment method yet: choose one on its page first")
        try:
            network = gateway_settings.network(checkout.network)
            asset = network.asset(checkout.asset)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not network.dev:
            raise CommandError(
                f'network {network.name!r} is not a dev chain (no "dev": True in its settings): this command only '
                "pays on a local development chain"
            )
        units = None if amount is None else _parse_amount(amount, asset.decimals, asset.symbol)
        if checkout.status != SessionStatus.OPEN:
            self.stderr.write(f"note: session is {checkout.status}; paying anyway (a late payment)")
        try:
            tx_hash = pay_session(checkout, amount=units, account_index=from_account)
        except (DevChainError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        paid = units if units is not None else checkout.amount_remaining
        self.stderr.write(
            f"paid {format_units(paid, asset.decimals)} {asset.symbol} to {checkout.deposit_address.address} "
            f"from dev account {from_account}"
        )
        self.stdout.write(tx_hash)


def _parse_amount(text: str, decimals: int, symbol: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CommandError(f"--amount {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise CommandError(f"--amount must be a positive number, not {text!r}")
    units = value.scaleb(decimals)
    if units != units.to_integral_value():
        raise CommandError(f"--amount {text} has more than {decimals} decimals, the precision of {symbol}")
    return int(units)

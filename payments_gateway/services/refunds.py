"""Refunds: the state of each refund, derived from what the merchant, the customer and the chain did.

``awaiting_address`` → ``initiated`` when the address is known (given by the merchant, or by the customer through
the signed claim link, :func:`claim_token`) → ``completed`` when the merchant's payment is seen confirmed on chain
(:func:`complete_refund`, called by the scanner or for a pasted transaction hash, both in ``scanning/refunds.py``).
``awaiting_address`` or ``initiated`` → ``canceled`` by the merchant. The gateway never sends money itself, and
never refunds to the sender's address on its own (it may be an exchange's).

What can be refunded (:func:`refundable`): for a session, what it received (confirmed, counted) minus its refunds
that are not canceled; for an unmatched transfer (confirmed), its amount minus its refunds. By default a refund is
for all of it, except for an overpaid session: what is left of its excess (:func:`default_amount`). Creating a
refund locks the session's (or transfer's) row before it counts, so two concurrent refunds of the same money (a
double click on "Refund the excess", two API calls) cannot both be created.

Events: ``refund.initiated`` when a refund becomes initiated; ``refund.completed``; ``refund.canceled``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from eth_utils import is_checksum_address, to_checksum_address

from ..conf import gateway_settings
from ..events import emit
from ..formats import ADDRESS_RE
from ..jsonsafe import unstorable_text
from ..models import (
    CheckoutSession,
    DepositAddress,
    PaymentStatus,
    Refund,
    RefundStatus,
    Transfer,
    TransferResolution,
    TransferStatus,
)
from ..money import sum_amounts
from . import reconciliation
from .payloads import refund_payload

LIVE = [RefundStatus.AWAITING_ADDRESS, RefundStatus.INITIATED, RefundStatus.COMPLETED]
OPEN = [RefundStatus.AWAITING_ADDRESS, RefundStatus.INITIATED]
CLAIM_SALT = "payments_gateway.refund-claim"
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
MAX_REASON = 500


class ClaimLinkExpired(Exception):
    """A refund claim link that was genuine but is older than ``REFUND_LINK_TTL``."""


def refundable(*, session: CheckoutSession | None = None, transfer: Transfer | None = None) -> int:
    """Base units that may still be refunded for ``session`` or ``transfer``."""
    if session is not None:
        received = session.amount_received
        return max(received - sum_amounts(Refund.objects.filter(session=session, status__in=LIVE)), 0)
    assert transfer is not None
    if transfer.status != TransferStatus.CONFIRMED or not transfer.unmatched:
        return 0
    return max(transfer.amount - sum_amounts(Refund.objects.filter(transfer=transfer, status__in=LIVE)), 0)


def default_amount(*, session: CheckoutSession | None = None, transfer: Transfer | None = None) -> int:
    """What a refund is for when no amount is given: an overpaid session's excess (what is left of it; 0 once it
    is refunded, so a second "refund the excess" refunds nothing more), else everything that is refundable."""
    left = refundable(session=session, transfer=transfer)
    if session is not None and session.payment_status == PaymentStatus.OVERPAID:
        refunded = session.amount_received - left
        return min(max(session.amount_received - session.amount_due - refunded, 0), left)
    return left


def create_refund(
    *,
    session: CheckoutSession | None = None,
    transfer: Transfer | None = None,
    amount: Any = None,
    address: str = "",
    reason: str = "",
    user: Any = None,
    now: datetime | None = None,
) -> Refund:
    """A refund of ``amount`` base units (default: :func:`default_amount`) for ``session`` or ``transfer``, to
    ``address`` (``initiated``, ``refund.initiated`` emitted) or, without one, ``awaiting_address`` (send the
    customer the claim link). Raises ``ValidationError`` naming each bad field; nothing is written then."""
    now = now or timezone.now()
    if (session is None) == (transfer is None):
        raise ValidationError({"session": ["give a session or a transfer to refund (one of them)."]})
    units = None if amount is None else parse_units(amount, "amount")
    network = session.network if session is not None else transfer.network  # type: ignore[union-attr]
    address = merchant_address(address, network) if address else ""
    reason = _text(reason, "reason")
    with transaction.atomic():
        # The row lock makes concurrent refunds of the same money take turns: the second counts the first.
        if session is not None:
            session = CheckoutSession.objects.select_for_update().get(pk=session.pk)
            left, default = refundable(session=session), default_amount(session=session)
            field, asset, kind = "session", session.asset, f"session {session.uuid}"
        else:
            assert transfer is not None
            transfer = _refundable_transfer(transfer)
            left = default = refundable(transfer=transfer)
            field, asset, kind = "transfer", transfer.asset, f"transfer {transfer.pk}"
        if left == 0:
            raise ValidationError({field: [f"nothing is left to refund on {kind}."]})
        if units is None and default == 0:
            raise ValidationError(
                {"amount": [f"the excess of {kind} is refunded already; give an amount to refund more of it."]}
            )
        units = default if units is None else units
        if units > left:
            raise ValidationError({"amount": [f"at most {left} base units of {asset} can be refunded on {kind}."]})
        refund = Refund.objects.create(
            session=session, transfer=transfer, network=network, asset=asset, amount=units, reason=reason, created=now
        )
        if transfer is not None:
            reconciliation.mark_refunded(transfer, user=user, note=reason, now=now)
        if address:
            _initiate(refund, address, now)
    return refund


def set_refund_address(
    refund: Refund, address: str, confirm: str, *, merchant: bool = False, now: datetime | None = None
) -> Refund:
    """The address of a refund that awaits one: the customer's, typed twice on the claim page (EIP-55
    checksummed), or the merchant's (``merchant``: all lowercase is accepted too). ``refund.initiated``. Raises
    ``ValidationError`` ({"address" | "confirm": message}) for a malformed, unchecksummed or mistyped address, or
    when the refund no longer waits for one."""
    now = now or timezone.now()
    address, confirm = (address or "").strip(), (confirm or "").strip()
    checked = (merchant_address if merchant else customer_address)(address, refund.network)
    if confirm != address:
        raise ValidationError({"confirm": [_("the two addresses differ: enter the same address twice.")]})
    with transaction.atomic():
        locked = Refund.objects.select_for_update().get(pk=refund.pk)
        if locked.status != RefundStatus.AWAITING_ADDRESS:
            raise ValidationError({"address": [_("this refund already has an address.")]})
        _initiate(locked, checked, now)
    refund.refresh_from_db()
    return refund


def cancel_refund(refund: Refund, *, reason: str = "", now: datetime | None = None) -> Refund:
    """Cancel a refund that is not completed (``refund.canceled``); a transfer whose last live refund this was
    needs attention again."""
    now = now or timezone.now()
    reason = _text(reason, "reason")
    with transaction.atomic():
        locked = Refund.objects.select_for_update().get(pk=refund.pk)
        if locked.status not in OPEN:
            raise ValidationError({"status": [f"refund {locked.uuid} is {locked.status}; it cannot be canceled."]})
        locked.status, locked.canceled_at = RefundStatus.CANCELED, now
        if reason:
            locked.reason = f"{locked.reason}\nCanceled: {reason}".strip()[-MAX_REASON:]
        locked.save(update_fields=["status", "canceled_at", "reason"])
        if locked.transfer_id:
            transfer = Transfer.objects.select_for_update().get(pk=locked.transfer_id)
            live = transfer.refunds.filter(status__in=LIVE).exists()
            if not live and transfer.resolution == TransferResolution.REFUNDED:
                reconciliation.reopen(transfer)
        emit("refund.canceled", refund_payload(locked), session=locked.session)
    refund.refresh_from_db()
    return refund


def note_refund_payment(refund: Refund, tx_hash: str, block_number: int) -> None:
    """A transaction that pays ``refund`` was seen in ``block_number``; it completes once confirmed."""
    waiting = Refund.objects.filter(pk=refund.pk, status=RefundStatus.INITIATED)
    waiting.update(tx_hash=tx_hash, block_number=block_number)


def complete_refund(refund: Refund, tx_hash: str, block_number: int, *, now: datetime | None = None) -> bool:
    """The refund's payment ``tx_hash`` is confirmed on chain: ``completed``, ``refund.completed``. Returns
    False when the refund was not ``initiated`` any more (canceled meanwhile, or completed already)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Refund.objects.select_for_update(of=("self",)).select_related("session").get(pk=refund.pk)
        if locked.status != RefundStatus.INITIATED:
            return False
        locked.status, locked.completed_at = RefundStatus.COMPLETED, now
        locked.tx_hash, locked.block_number = tx_hash, block_number
        locked.save(update_fields=["status", "completed_at", "tx_hash", "block_number"])
        emit("refund.completed", refund_payload(locked), session=locked.session)
    return True


def claim_token(refund: Refund, *, now: datetime | None = None) -> str:
    """The signed token of the refund's claim page ``/refund/<token>/``, valid for ``REFUND_LINK_TTL`` from
    ``now``: the refund's uuid signed with Django's ``TimestampSigner`` (the project's ``SECRET_KEY``, a salt)."""
    return _ClaimSigner(salt=CLAIM_SALT, at=now).sign_object(str(refund.uuid), compress=True)


def refund_for_token(token: str) -> Refund | None:
    """The refund a claim token names, None for a token that is not ours; :class:`ClaimLinkExpired` when it
    is older than ``REFUND_LINK_TTL``."""
    max_age = gateway_settings.REFUND_LINK_TTL
    try:
        value = signing.TimestampSigner(salt=CLAIM_SALT).unsign_object(token, max_age=max_age)
    except signing.SignatureExpired:
        raise ClaimLinkExpired from None
    except signing.BadSignature:
        return None
    return Refund.objects.select_related("session", "transfer").filter(uuid=value).first()


def refund_uri(refund: Refund) -> str | None:
    """The EIP-681 URI the merchant's wallet scans to pay the refund; None without an address or when the
    network is no longer configured. ETH: ``ethereum:<to>@<chain>?value=<wei>``; a token:
    ``ethereum:<contract>@<chain>/transfer?address=<to>&uint256=<units>``."""
    network = gateway_settings.networks.get(refund.network)
    if network is None or not refund.address:
        return None
    asset = network.assets.get(refund.asset)
    if asset is not None and asset.is_native:
        return f"ethereum:{refund.address}@{network.chain_id}?value={refund.amount}"
    contract = asset.address if asset is not None else refund.asset
    return f"ethereum:{contract}@{network.chain_id}/transfer?address={refund.address}&uint256={refund.amount}"


def parse_units(value: Any, field: str) -> int:
    """A positive whole number of base units: a JSON integer or a string of ASCII digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        units = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        units = int(value)
    else:
        raise ValidationError({field: [f'{value!r} is not a whole number of base units: give e.g. "79000000".']})
    if units <= 0:
        raise ValidationError({field: ["must be at least 1 base unit."]})
    if units >= 2**256:
        raise ValidationError({field: ["is larger than any amount on chain."]})
    return units


def merchant_address(value: Any, network: str) -> str:
    """An address the merchant gives: EIP-55 checksummed, or all lowercase (then checksummed here)."""
    return _address(value, network, "address", require_checksum=False)


def customer_address(value: Any, network: str) -> str:
    """An address the customer types: it must carry its EIP-55 checksum, which catches a mistyped character."""
    return _address(value, network, "address", require_checksum=True)


# --- helpers ---------------------------------------------------------------------------------------------------


class _ClaimSigner(signing.TimestampSigner):
    """Django's signer, stamping the given time (a link made ``now``), or the current one."""

    def __init__(self, *, salt: str, at: datetime | None) -> None:
        super().__init__(salt=salt)
        self.at = at

    def timestamp(self) -> str:
        return signing.b62_encode(int(self.at.timestamp())) if self.at else super().timestamp()


def _initiate(refund: Refund, address: str, now: datetime) -> None:
    refund.address, refund.status, refund.initiated_at = address, RefundStatus.INITIATED, now
    refund.save(update_fields=["address", "status", "initiated_at"])
    emit("refund.initiated", refund_payload(refund), session=refund.session)


def _refundable_transfer(transfer: Transfer) -> Transfer:
    locked = Transfer.objects.select_for_update().get(pk=transfer.pk)
    if locked.status == TransferStatus.REVERTED:
        raise ValidationError({"transfer": [f"transfer {locked.pk} was reverted: nothing was received."]})
    if locked.status != TransferStatus.CONFIRMED:
        raise ValidationError({"transfer": [f"transfer {locked.pk} is not confirmed yet; refund it once it is."]})
    if not locked.unmatched:
        which = f"session {locked.session.uuid}" if locked.session_id and locked.session else "its session"
        raise ValidationError({"transfer": [f"transfer {locked.pk} pays {which}: refund the session instead."]})
    return locked


def _address(value: Any, network: str, field: str, *, require_checksum: bool) -> str:
    name = gateway_settings.networks.get(network)
    where = network
    if name:
        where = _("%(network)s (chain id %(chain)s)") % {"network": name.display_name, "chain": name.chain_id}
    if not isinstance(value, str) or not ADDRESS_RE.match(value.strip()):
        message = _("%(value)s is not an address on %(network)s: 0x followed by 40 hexadecimal characters.")
        raise ValidationError({field: [message % {"value": repr(str(value)[:60]), "network": where}]})
    value = value.strip()
    lowercase = value[2:] == value[2:].lower()
    if lowercase and require_checksum:
        raise ValidationError(
            {field: [_("this address has no checksum (it is all lowercase): copy it exactly as your wallet shows "
                       "it, with its capital letters, so a typing mistake cannot send the refund elsewhere.")]}
        )  # fmt: skip
    if not lowercase and not is_checksum_address(value):
        raise ValidationError(
            {field: [_("this address's capital letters do not match its checksum (EIP-55): a character is "
                       "probably mistyped. Copy it again from your wallet.")]}
        )  # fmt: skip
    checked = to_checksum_address(value)
    if DepositAddress.objects.filter(network=network, address__iexact=checked).exists():
        raise ValidationError(
            {field: [_("this is one of the shop's own deposit addresses: give the wallet to refund.")]}
        )
    return checked


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError({field: ["must be text."]})
    if len(value) > MAX_REASON:
        raise ValidationError({field: [f"at most {MAX_REASON} characters."]})
    if found := unstorable_text(value, field):
        raise ValidationError({field: [f"{found[0]} {found[1]}."]})
    return value.strip()

"""What the gateway knows of the chains: deposit addresses, transfers seen, and scan cursors."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..fields import Uint256Field


class DepositAddress(models.Model):
    """Deposit address number ``index`` of one network, made by the network's deposit scheme (``"xpub"``:
    m/44'/60'/0'/0/index of the merchant's xpub).

    An address is given to one session only, ever: a payment that reaches it however late can never be credited to
    someone else's checkout. The session holds it (``CheckoutSession.deposit_address``); when its customer switches
    to another network, ``made_for`` keeps the old address tied to it. Until ``busy_until`` (the session's expiry
    plus the late payment window) the scanner looks for payments to it at every block; after that at the slower
    ``OLD_ADDRESS_SCAN_INTERVAL``.
    """

    network = models.CharField(max_length=40)
    index = models.PositiveBigIntegerField()
    scheme = models.CharField(max_length=100, default="xpub", help_text="The deposit scheme that made the address.")
    address = models.CharField(max_length=42, help_text="EIP-55 checksummed.")
    created = models.DateTimeField(default=timezone.now)
    busy_until = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="Watched at every block until this time, then less often."
    )
    # The scanner's ETH balance check credits only what the address gained since this baseline (its balance at
    # baseline_block, read after its current session was created, beyond the ETH transfers stored since): ETH the
    # address already held (a funded wallet address, a payment to an old session) is never a new payment.
    baseline_balance = Uint256Field(null=True, blank=True, default=None, help_text="ETH (wei) at baseline_block.")
    baseline_block = models.PositiveBigIntegerField(null=True, blank=True, help_text="Empty: no baseline yet.")
    baseline_at = models.DateTimeField(
        null=True, blank=True, help_text="When the baseline was taken; older than the newest session: taken again."
    )
    # Forwarder scheme: the address is CREATE2(factory, index, initCode(treasury)), so it can only ever be swept by
    # that factory to that treasury, whatever the settings say today.
    treasury = models.CharField(max_length=42, blank=True, help_text="Forwarder scheme: where its funds go.")
    factory = models.CharField(max_length=42, blank=True, help_text="Forwarder scheme: the factory that sweeps it.")
    # The session keeps only its current address: after a switch of network this is what still ties the old one
    # to it, written then. Addresses made by earlier versions have it from their creation; addresses of the time
    # before addresses stopped being reused have none (their sessions are the ones that held them).
    made_for = models.ForeignKey(
        "payments_gateway.CheckoutSession",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="addresses_made",
        help_text="The session this address was made for (kept when its customer switches network).",
    )

    class Meta:
        ordering = ["network", "index"]
        verbose_name_plural = "deposit addresses"
        # The scanner looks up the addresses it watches every block by this; the others pile up, never reused.
        indexes = [models.Index(fields=["network", "busy_until"], name="pg_address_network_busy")]
        constraints = [
            models.UniqueConstraint(fields=["network", "index"], name="pg_address_network_index"),
            models.UniqueConstraint(fields=["network", "address"], name="pg_address_network_address"),
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.network} #{self.index})"


class AddressCounter(models.Model):
    """Next derivation index per network; its row is locked while an index is taken."""

    network = models.CharField(max_length=40, unique=True)
    next_index = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.network}: next {self.next_index}"


class TransferStatus(models.TextChoices):
    DETECTED = "detected", "Detected"
    CONFIRMED = "confirmed", "Confirmed"
    REVERTED = "reverted", "Reverted"


class TransferKind(models.TextChoices):
    NATIVE = "native", "Native coin (transaction value)"
    TOKEN = "erc20", "ERC-20 Transfer log"
    INTERNAL = "internal", "Native coin through a contract call (balance change)"


class TransferReason(models.TextChoices):
    """Why a transfer settles no session (blank: it pays its session)."""

    WRONG_ASSET = "wrong_asset", "Another asset than the session's"
    UNKNOWN_TOKEN = "unknown_token", "A token that is not configured"
    AFTER_LATE_WINDOW = "after_late_window", "After the late payment window"
    CLOSED_SESSION = "closed_session", "To a canceled session, or to an address of no session"
    EXCESS = "excess", "After the session was already paid"


class TransferResolution(models.TextChoices):
    """What the merchant did with an unmatched transfer (blank for a transfer that pays its session)."""

    OPEN = "open", "Needs attention"
    CREDITED = "credited", "Credited to a session"
    REFUNDED = "refunded", "Refunded"
    DISMISSED = "dismissed", "Dismissed"


class Transfer(models.Model):
    """A payment seen on chain. ``log_index`` is -1 for a plain native transfer (the transaction's value).

    ``asset`` is a configured symbol, or the token contract's address when the token is not configured. A
    transfer that settles no session has a ``reason`` and a ``resolution`` (``open`` until the merchant credits,
    refunds or dismisses it); it may keep its ``session`` link, naming the checkout it was meant for.
    """

    network = models.CharField(max_length=40)
    tx_hash = models.CharField(max_length=66)
    log_index = models.IntegerField(default=-1)
    kind = models.CharField(max_length=10, choices=TransferKind.choices)
    block_number = models.PositiveBigIntegerField(db_index=True)
    block_hash = models.CharField(max_length=66)
    from_address = models.CharField(max_length=42, blank=True)
    to_address = models.CharField(max_length=42, db_index=True)
    asset = models.CharField(max_length=42, help_text="A configured symbol, or the contract of an unknown token.")
    token_address = models.CharField(max_length=42, blank=True)
    amount = Uint256Field()
    confirmations = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=TransferStatus.choices, default=TransferStatus.DETECTED, db_index=True
    )
    deposit_address = models.ForeignKey(
        DepositAddress, null=True, blank=True, on_delete=models.PROTECT, related_name="transfers"
    )
    session = models.ForeignKey(
        "payments_gateway.CheckoutSession",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="transfers",
    )
    late = models.BooleanField(default=False, help_text="Arrived after the session expired.")
    block_time = models.DateTimeField(null=True, blank=True, help_text="Timestamp of its block.")
    reason = models.CharField(
        max_length=20, choices=TransferReason.choices, blank=True, help_text="Why it settles no session."
    )
    resolution = models.CharField(max_length=10, choices=TransferResolution.choices, blank=True, db_index=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)
    notified_status = models.CharField(
        max_length=16, blank=True, help_text="The status the last transaction.* event announced."
    )
    detected_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    reverted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-block_number", "-log_index"]
        constraints = [
            models.UniqueConstraint(fields=["network", "tx_hash", "log_index"], name="pg_transfer_unique"),
            models.CheckConstraint(condition=Q(log_index__gte=-2), name="pg_transfer_log_index"),
        ]

    def __str__(self) -> str:
        return f"{self.asset} {self.amount} → {self.to_address} ({self.tx_hash[:10]}…)"

    @property
    def unmatched(self) -> bool:
        return bool(self.reason) and self.resolution != TransferResolution.CREDITED


class UnmatchedManager(models.Manager["UnmatchedTransfer"]):
    def get_queryset(self) -> models.QuerySet[UnmatchedTransfer]:
        return super().get_queryset().exclude(reason="").exclude(status=TransferStatus.REVERTED)


class UnmatchedTransfer(Transfer):
    """The admin's "Needs attention" list: transfers (not reverted) that settle no session, resolved or not."""

    objects: ClassVar[UnmatchedManager] = UnmatchedManager()

    class Meta:
        proxy = True
        verbose_name = "unmatched transfer"
        verbose_name_plural = "needs attention"


class ChainCursor(models.Model):
    """Per network: the last block scanned (number + hash) and the lease of the one scanner allowed on it."""

    network = models.CharField(max_length=40, unique=True)
    block_number = models.BigIntegerField(default=-1, help_text="-1: nothing scanned yet.")
    block_hash = models.CharField(max_length=66, blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    old_block_number = models.BigIntegerField(
        null=True, blank=True, help_text="Token transfers to old deposit addresses are read up to this block."
    )
    last_scan_at = models.DateTimeField(null=True, blank=True)
    head_block = models.BigIntegerField(null=True, blank=True, help_text="Chain head at the last scan.")
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.network} @ {self.block_number}"

    @property
    def lag(self) -> int | None:
        """Blocks behind the chain head at the last scan."""
        if self.head_block is None:
            return None
        return max(self.head_block - self.block_number, 0)


class ScannedBlock(models.Model):
    """Hash of a recently scanned block, kept so a reorg is noticed by comparing hashes (nodes such as anvil
    never flag removed logs)."""

    network = models.CharField(max_length=40)
    number = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=66)
    parent_hash = models.CharField(max_length=66)

    class Meta:
        ordering = ["network", "-number"]
        constraints = [models.UniqueConstraint(fields=["network", "number"], name="pg_scanned_block_unique")]

    def __str__(self) -> str:
        return f"{self.network} #{self.number} {self.hash[:10]}…"


class RpcErrorCount(models.Model):
    """Failures of one RPC URL of a network, by kind, counted by every process that used it (the failover in
    ``chain/rpc.py`` records them; ``/metrics`` reports them as ``payments_gateway_rpc_errors_total``)."""

    network = models.CharField(max_length=40)
    url = models.CharField(max_length=2000)
    kind = models.CharField(max_length=20, help_text="timeout, connection, http, throttled, malformed or chain_id.")
    count = models.PositiveBigIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["network", "url", "kind"]
        verbose_name = "RPC error count"
        constraints = [models.UniqueConstraint(fields=["network", "url", "kind"], name="pg_rpc_error_unique")]

    def __str__(self) -> str:
        return f"{self.network} {self.url} {self.kind}: {self.count}"

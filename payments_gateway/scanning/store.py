"""Storing what the chain showed: transfers (once each), confirmations and reverts, matched to sessions.

Every write happens in the caller's transaction (the scan's range, together with its cursor). A transfer is unique
on (network, tx hash, log index), so storing a range twice counts nothing twice. The sessions a write touches are
collected and recomputed by :meth:`TransferStore.refresh_sessions` (the session lifecycle service writes their
events and decides which transfers pay), in the same transaction.

A transfer is tied to the session its address was made for (:func:`match_session`), however late, in whatever asset,
also after its customer switched to another network: the session decides whether it pays. A transfer to an address
that served no session when it was mined is unmatched from the start (``services/reconciliation.py``
``flag_sessionless``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from ..chain.blocks import SeenTransfer
from ..conf import NetworkConfig
from ..deposits import CLOCK_SLACK
from ..models import CheckoutSession, Transfer, TransferResolution, TransferStatus
from ..services.payments import refresh_session
from ..services.reconciliation import flag_sessionless
from .watched import Watched


def transfer_rows(
    network: NetworkConfig, seen: list[SeenTransfer], watched: dict[str, Watched]
) -> list[dict[str, Any]]:
    """``Transfer`` fields of each transfer in ``seen`` (to an address of ``watched``), with the session it pays."""
    rows = []
    for t in seen:
        deposit = watched[t.to]
        session_id, late = match_session(deposit, t.block.timestamp)
        rows.append(
            {
                "network": network.name,
                "block_number": t.block.number,
                "block_hash": t.block.hash,
                "to_address": deposit.address,
                "deposit_address_id": deposit.pk,
                "session_id": session_id,
                "late": late,
                "block_time": t.block.timestamp,
                "tx_hash": t.tx_hash,
                "log_index": t.log_index,
                "kind": t.kind,
                "from_address": t.from_address,
                "asset": t.asset,
                "token_address": t.token_address,
                "amount": t.amount,
            }
        )
    return rows


def match_session(deposit: Watched, at: datetime) -> tuple[int | None, bool]:
    """The session ``deposit`` was made for, if it existed at ``at`` (less ``CLOCK_SLACK``: block times and the
    server clock differ a little), and whether ``at`` is after its expiry (a late payment).

    That is the session holding the address, or, for an address its customer switched away from (to another
    network), the one it was made for (``DepositAddress.made_for``). An address made before addresses stopped
    being reused may have had several sessions: the newest one created by then."""
    sessions = (
        CheckoutSession.objects.filter(created__lte=at + CLOCK_SLACK).order_by("-created").only("pk", "expires_at")
    )
    session = sessions.filter(deposit_address_id=deposit.pk).first()
    if session is None:
        session = sessions.filter(addresses_made=deposit.pk).first()
    if session is None:
        return None, False
    return session.pk, at > session.expires_at


class TransferStore:
    """Writes transfers, confirmations and reverts at chain head ``head``, and remembers the sessions to refresh."""

    def __init__(self, network: NetworkConfig, head: int, now: datetime) -> None:
        self.network = network
        self.head = head
        self.now = now
        self.sessions: set[int] = set()
        self.sessionless: set[tuple[str, int]] = set()

    def save(self, rows: list[dict[str, Any]]) -> set[tuple[str, int]]:
        """Insert new transfers, bring back reverted ones found again; return the keys stored or updated."""
        if not rows:
            return set()
        by_key = {(r["tx_hash"], r["log_index"]): r for r in rows}
        known = {
            (t.tx_hash, t.log_index): t
            for t in Transfer.objects.filter(network=self.network.name, tx_hash__in={k[0] for k in by_key})
        }
        new = [Transfer(**self._confirmations(r)) for key, r in by_key.items() if key not in known]
        Transfer.objects.bulk_create(new, ignore_conflicts=True)
        touched = set()
        for key, row in by_key.items():
            t = known.get(key)
            if t is None:
                touched.add(key)
                if row["session_id"]:
                    self.sessions.add(row["session_id"])
                else:
                    self.sessionless.add(key)
                continue
            if t.status == TransferStatus.REVERTED or t.block_hash != row["block_hash"]:
                # Mined again (same tx, new block) after a reorg: it counts again, from its new block (for the
                # session the merchant credited it to, if they did).
                refound = self._confirmations(row)
                if t.resolution == TransferResolution.CREDITED:
                    refound.pop("session_id")
                for name, value in refound.items():
                    setattr(t, name, value)
                t.reverted_at = None
                t.save()
                touched.add(key)
            if t.session_id:
                self.sessions.add(t.session_id)
        return touched

    def revert(self, queryset: QuerySet[Transfer]) -> int:
        """Mark the transfers of ``queryset`` reverted (their block left the canonical chain)."""
        rows = list(queryset.exclude(status=TransferStatus.REVERTED).values_list("pk", "session_id"))
        if not rows:
            return 0
        Transfer.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            status=TransferStatus.REVERTED, reverted_at=self.now, confirmations=0
        )
        self.sessions |= {s for _, s in rows if s}
        return len(rows)

    def update_confirmations(self, queryset: QuerySet[Transfer]) -> int:
        """Recount confirmations of detected transfers; return how many became confirmed."""
        confirmed = 0
        for t in queryset.only("pk", "block_number", "confirmations", "session_id", "status"):
            count = max(self.head - t.block_number + 1, 0)
            if count == t.confirmations:
                continue
            fields: dict[str, Any] = {"confirmations": count}
            if count >= self.network.confirmations:
                fields |= {"status": TransferStatus.CONFIRMED, "confirmed_at": self.now}
                confirmed += 1
            Transfer.objects.filter(pk=t.pk).update(**fields)
            if t.session_id:
                self.sessions.add(t.session_id)
        return confirmed

    def refresh_sessions(self) -> None:
        """Recompute every session touched so far (which writes their events), and flag the new transfers of no
        session as unmatched."""
        for session_id in sorted(self.sessions):
            refresh_session(session_id, now=self.now)
        if self.sessionless:
            stored = Transfer.objects.filter(network=self.network.name, tx_hash__in={tx for tx, _ in self.sessionless})
            rows = stored.values_list("pk", "tx_hash", "log_index")
            flag_sessionless([pk for pk, tx, index in rows if (tx, index) in self.sessionless])
            self.sessionless.clear()

    def _confirmations(self, row: dict[str, Any]) -> dict[str, Any]:
        count = max(self.head - row["block_number"] + 1, 0)
        confirmed = count >= self.network.confirmations
        return row | {
            "confirmations": count,
            "status": TransferStatus.CONFIRMED if confirmed else TransferStatus.DETECTED,
            "confirmed_at": self.now if confirmed else None,
            "detected_at": self.now,
        }

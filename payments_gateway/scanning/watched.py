"""Which deposit addresses a scan looks for, and their ETH baselines.

- :func:`watched_addresses`: addresses that may still receive a payment for a session (every token log query and
  balance check is about these).
- :func:`all_addresses`: every deposit address of a network, for plain ETH (a set lookup in block bodies the scan
  reads anyway), so ETH reaching an idle address is recorded too.
- :func:`baselines`: the ETH an address held when its current session began (see :mod:`.balances`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from eth_utils import to_checksum_address

from ..conf import gateway_settings
from ..deposits import CLOCK_SLACK
from ..formats import ADDRESS_RE
from ..models import CheckoutSession, DepositAddress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Watched:
    """A deposit address the scan looks for: its row id and EIP-55 address (and, for the watched ones, whether
    its ETH baseline must be taken)."""

    pk: int
    address: str
    needs_baseline: bool = False


#: A deposit address whose ETH baseline is missing or older than its newest session.
NEEDS_BASELINE = (
    Q(baseline_at__isnull=True)
    | Q(baseline_balance__isnull=True)
    | Q(baseline_block__isnull=True)
    | Exists(CheckoutSession.objects.filter(deposit_address_id=OuterRef("pk"), created__gt=OuterRef("baseline_at")))
)


def watched_addresses(network: str, cutoff: datetime | None) -> dict[str, Watched]:
    """Deposit addresses that may still receive a payment for a session (lowercase address → row); ``cutoff``:
    the time of the block the scan starts after (addresses idle since before it need no watching).

    Two queries, each led by an index (``(network, busy_until)``; the sessions' ``expires_at``), never a scan of
    every address: old addresses pile up (none is ever reused) and this runs at every poll."""
    addresses = DepositAddress.objects.filter(network=network)
    sessions = CheckoutSession.objects.filter(network=network)
    if cutoff is None:
        busy, ended = addresses.filter(busy_until__isnull=False), sessions
    else:
        since = cutoff - CLOCK_SLACK
        busy = addresses.filter(busy_until__gte=since)
        ended = sessions.filter(expires_at__gte=since - gateway_settings.LATE_PAYMENT_WINDOW)
    found: dict[str, Watched] = {}
    # A session's address is on its network: no network filter here, so the lookup goes by primary key.
    for queryset in (busy, DepositAddress.objects.filter(pk__in=ended.values("deposit_address_id"))):
        rows = queryset.annotate(needs_baseline=NEEDS_BASELINE).values_list("pk", "address", "needs_baseline")
        found |= _valid(network, rows)
    return found


def all_addresses(network: str) -> dict[str, Watched]:
    """Every deposit address of ``network``, from a per-process cache.

    Addresses are only ever added (never reused, changed or deleted), so the cache is brought up to date by
    reading the rows of higher index than its newest one, as long as that row is still there unchanged; otherwise
    (a rolled-back insert whose index was taken again) it is read anew. Its stamp (the newest row, the lowest and
    highest address: three lookups in the unique indexes) tells whether anything changed at all."""
    addresses = DepositAddress.objects.filter(network=network)
    newest = addresses.order_by("-index").values_list("index", "pk", "address").first()
    stamp = (
        newest,
        addresses.order_by("address").values_list("address", flat=True).first(),
        addresses.order_by("-address").values_list("address", flat=True).first(),
    )
    cached = _address_cache.get(network)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    if cached is not None and _grown(addresses, cached[0][0], newest):
        found = dict(cached[1])
        added = addresses.filter(index__gt=cached[0][0][0]).values_list("pk", "address")
        found.update(_valid(network, added, log=False))
        _address_cache[network] = (stamp, found)
        return found
    _address_cache[network] = (stamp, _valid(network, addresses.values_list("pk", "address"), log=False))
    return _address_cache[network][1]


_address_cache: dict[str, tuple[tuple[Any, ...], dict[str, Watched]]] = {}


def _grown(addresses: QuerySet[DepositAddress], known: Any, newest: Any) -> bool:
    """Rows were added after ``known`` (the cache's newest row, ``(index, pk, address)``), which is still there."""
    if known is None or newest is None or known[0] >= newest[0]:
        return False
    return addresses.filter(index=known[0], pk=known[1], address=known[2]).exists()


def deposit_addresses(network: str, candidates: set[str]) -> dict[str, Watched]:
    """Those of ``candidates`` (lowercase addresses) that are deposit addresses of ``network``."""
    if not candidates:
        return {}
    checksummed = [to_checksum_address(a) for a in candidates]
    rows = DepositAddress.objects.filter(network=network, address__in=checksummed).values_list("pk", "address")
    return {address.lower(): Watched(pk, address) for pk, address in rows}


def baselines(watched: dict[str, Watched]) -> dict[int, tuple[int, int] | None]:
    """Deposit address id → its ETH baseline ``(balance, block)``, or ``None`` when it needs one: never taken,
    or taken before the address's newest session was created (the address was handed out again since)."""
    pks = sorted(w.pk for w in watched.values())
    found: dict[int, tuple[int, int] | None] = dict.fromkeys(pks)
    for start in range(0, len(pks), 1000):
        rows = (
            DepositAddress.objects.filter(pk__in=pks[start : start + 1000], baseline_block__isnull=False)
            .exclude(NEEDS_BASELINE)
            .values_list("pk", "baseline_balance", "baseline_block")
        )
        for pk, balance, number in rows:
            if balance is not None and number is not None:  # always, by NEEDS_BASELINE
                found[pk] = (balance, number)
    return found


def _valid(network: str, rows: Iterable[tuple[Any, ...]], *, log: bool = True) -> dict[str, Watched]:
    """lowercase address → :class:`Watched`, leaving out (and logging) a row whose address is malformed: one bad
    row (typed into the admin, say) must not make every query of the network fail."""
    valid = {}
    for pk, address, *needs_baseline in rows:
        if ADDRESS_RE.match(address or ""):
            valid[address.lower()] = Watched(pk, address, bool(needs_baseline and needs_baseline[0]))
        elif log:
            logger.error("network %r: DepositAddress #%s has a malformed address %r; not watched", network, pk, address)
    return valid

"""The merchant dashboard's figures: totals received, a per-day chart, session counts, money that needs attention
(unmatched transfers), scanner lag, and subscriptions (active and past-due counts, monthly recurring revenue per
currency).

Everything is exact: amounts are Python ints in base units (summed with ``sum_amounts``, never SQL SUM, which is
not exact on SQLite's text column) and bar heights are integer ratios; no float anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction

from django.db.models import Count, Q
from django.utils import timezone

from ..conf import gateway_settings
from ..models import (
    ChainCursor,
    CheckoutSession,
    PaymentStatus,
    SessionStatus,
    Subscription,
    SubscriptionStatus,
    Transfer,
    TransferResolution,
    TransferStatus,
)
from ..money import CURRENCY_EXPONENTS, format_units, sum_amounts
from .periods import monthly_amount, round_to
from .reconciliation import unmatched_transfers

CHART_DAYS = 30
CHART_HEIGHT = 120  # px of the tallest bar
BAR_WIDTH = 16  # px
BAR_GAP = 4  # px
CHART_LABELS = 16  # px under the bars for the day labels


@dataclass(frozen=True)
class AssetTotal:
    """Everything received in one asset on one network (confirmed, non-reverted transfers of sessions)."""

    network: str
    asset: str
    units: int
    display: str  # "1.5 ETH", or base units when the asset is no longer configured


@dataclass(frozen=True)
class UnmatchedTotal:
    """Unmatched transfers that need attention, in one asset on one network: how many and how much."""

    network: str
    asset: str
    count: int
    units: int
    display: str


@dataclass(frozen=True)
class Bar:
    """One day's bar of a chart; geometry in whole pixels."""

    day: date
    units: int
    display: str
    x: int
    y: int
    height: int


@dataclass
class AssetChart:
    """Received amounts per day of one asset on one network over the last ``CHART_DAYS`` days."""

    network: str
    asset: str
    total_display: str
    max_display: str
    bars: list[Bar] = field(default_factory=list)
    width: int = CHART_DAYS * (BAR_WIDTH + BAR_GAP)
    height: int = CHART_HEIGHT + CHART_LABELS
    bar_width: int = BAR_WIDTH
    first_day: date | None = None
    last_day: date | None = None
    baseline: int = CHART_HEIGHT


@dataclass(frozen=True)
class ScannerRow:
    """A configured network's scan state; ``scanned`` is False when no scan has run on it yet."""

    network: str
    scanned: bool
    lag: int | None = None
    block_number: int | None = None
    head_block: int | None = None
    last_scan_at: datetime | None = None
    last_error: str = ""


def dashboard_data(now: datetime | None = None) -> dict:
    """All the dashboard shows, as plain data: ``totals``, ``charts``, ``sessions``, ``scanners``.

    Days are calendar days in the current time zone; the chart covers the ``CHART_DAYS`` days ending with
    ``now``'s day (a transfer is dated by when it was confirmed).
    """
    now = now or timezone.now()
    return {
        "totals": received_totals(),
        "charts": received_charts(now),
        "sessions": session_counts(),
        "unmatched": unmatched_totals(),
        "scanners": scanner_rows(),
        "subscriptions": subscription_figures(),
        "chart_days": CHART_DAYS,
        "now": now,
    }


def received_totals() -> list[AssetTotal]:
    """All-time totals per (network, asset), in network then asset order."""
    received = _received()
    groups = received.order_by("network", "asset").values_list("network", "asset").distinct()
    return [
        AssetTotal(network, asset, units, _display(network, asset, units))
        for network, asset in groups
        for units in [sum_amounts(received.filter(network=network, asset=asset))]
    ]


def received_charts(now: datetime) -> list[AssetChart]:
    """One bar chart per (network, asset) received in the window; bars scaled to that series' largest day."""
    last_day = timezone.localtime(now).date()
    first_day = last_day - timedelta(days=CHART_DAYS - 1)
    window_start = timezone.make_aware(datetime.combine(first_day, datetime.min.time()))
    window_end = timezone.make_aware(datetime.combine(last_day + timedelta(days=1), datetime.min.time()))
    rows = (
        _received()
        .filter(confirmed_at__gte=window_start, confirmed_at__lt=window_end)
        .order_by()
        .values_list("network", "asset", "amount", "confirmed_at")
    )
    per_day: dict[tuple[str, str], dict[date, int]] = {}
    for network, asset, amount, confirmed_at in rows.iterator():
        days = per_day.setdefault((network, asset), {})
        day = timezone.localtime(confirmed_at).date()
        days[day] = days.get(day, 0) + amount

    charts = []
    for (network, asset), days in sorted(per_day.items()):
        peak = max(days.values())
        chart = AssetChart(
            network=network,
            asset=asset,
            total_display=_display(network, asset, sum(days.values())),
            max_display=_display(network, asset, peak),
            first_day=first_day,
            last_day=last_day,
        )
        for offset in range(CHART_DAYS):
            day = first_day + timedelta(days=offset)
            units = days.get(day, 0)
            if not units:
                continue
            # Integer ratio of exact ints: no float; a non-zero day always shows at least one pixel.
            height = max(units * CHART_HEIGHT // peak, 1)
            chart.bars.append(
                Bar(
                    day=day,
                    units=units,
                    display=_display(network, asset, units),
                    x=offset * (BAR_WIDTH + BAR_GAP),
                    y=CHART_HEIGHT - height,
                    height=height,
                )
            )
        charts.append(chart)
    return charts


def unmatched_totals() -> list[UnmatchedTotal]:
    """Open unmatched transfers (not reverted) per (network, asset), counted and summed exactly."""
    groups: dict[tuple[str, str], list[int]] = {}
    for network, asset, amount in unmatched_transfers().order_by().values_list("network", "asset", "amount"):
        groups.setdefault((network, asset), []).append(amount)
    return [
        UnmatchedTotal(network, asset, len(amounts), sum(amounts), _display(network, asset, sum(amounts)))
        for (network, asset), amounts in sorted(groups.items())
    ]


def session_counts() -> dict:
    """Sessions counted by status (rows) and payment status (columns), with row and column totals."""
    counts = {
        (row["status"], row["payment_status"]): row["n"]
        for row in CheckoutSession.objects.order_by().values("status", "payment_status").annotate(n=Count("id"))
    }
    columns = [(value, label) for value, label in PaymentStatus.choices]
    rows = []
    for status, label in SessionStatus.choices:
        cells = [counts.get((status, payment_status), 0) for payment_status, _ in columns]
        rows.append({"status": status, "label": label, "cells": cells, "total": sum(cells)})
    column_totals = [sum(row["cells"][i] for row in rows) for i in range(len(columns))]
    return {
        "columns": columns,
        "rows": rows,
        "column_totals": column_totals,
        "total": sum(column_totals),
        "by_pair": counts,
    }


def scanner_rows() -> list[ScannerRow]:
    """One row per configured network, in name order; a network without a cursor or scan is "not scanned yet"."""
    cursors = {cursor.network: cursor for cursor in ChainCursor.objects.all()}
    rows = []
    for name in sorted(gateway_settings.networks):
        cursor = cursors.get(name)
        if cursor is None or (cursor.last_scan_at is None and cursor.block_number < 0):
            rows.append(ScannerRow(network=name, scanned=False, last_error=cursor.last_error if cursor else ""))
            continue
        rows.append(
            ScannerRow(
                network=name,
                scanned=True,
                lag=cursor.lag,
                block_number=cursor.block_number,
                head_block=cursor.head_block,
                last_scan_at=cursor.last_scan_at,
                last_error=cursor.last_error,
            )
        )
    return rows


def subscription_figures() -> dict:
    """``active`` and ``past_due`` counts, and ``mrr``: monthly recurring revenue per currency, ``{currency:
    Decimal}`` in currency order.

    MRR counts the subscriptions still billed (active and past due; one canceling at period end until it ends):
    each plan's price per month — a monthly plan its price, a yearly one 1/12 of it, a weekly one 52/12, a daily one
    365/12, divided by ``interval_count`` — summed exactly as fractions, then rounded once, half to even, to the
    currency's minor unit.
    """
    billed = Subscription.objects.filter(status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE])
    counts = dict(billed.order_by().values_list("status").annotate(n=Count("id")))
    totals: dict[str, Fraction] = {}
    for amount, currency, interval, count in billed.values_list("amount", "currency", "interval", "interval_count"):
        totals[currency] = totals.get(currency, Fraction(0)) + monthly_amount(amount, interval, count)
    return {
        "active": counts.get(SubscriptionStatus.ACTIVE, 0),
        "past_due": counts.get(SubscriptionStatus.PAST_DUE, 0),
        "mrr": {currency: round_to(total, CURRENCY_EXPONENTS.get(currency, 2)) for currency, total in
                sorted(totals.items())},
    }  # fmt: skip


def _received():
    """Payments that count: confirmed (so not reverted) transfers that pay a session (matched, or credited by the
    merchant); an unmatched transfer tied to a session it was meant for is not received money of that session."""
    pays = Q(reason="") | Q(resolution=TransferResolution.CREDITED)
    return Transfer.objects.filter(pays, status=TransferStatus.CONFIRMED, session__isnull=False)


def _display(network: str, asset: str, units: int) -> str:
    try:
        decimals = gateway_settings.network(network).asset(asset).decimals
    except ValueError:
        # The network or asset was removed from the settings since: its decimals are unknown, show exact units.
        return f"{units} base units of {asset}"
    return f"{format_units(units, decimals)} {asset}"

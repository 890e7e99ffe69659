"""``GET /metrics``: a Prometheus collector that reads the database (and, for forwarder networks, the chain's
balances) at scrape time.

Nothing is counted in a process's memory, so every web process answers the same figures and a restart loses no
count: RPC failures are counted in the database by the failover itself (``chain/rpc_errors.py``), the rest is
read from the rows it describes. Amounts are in whole units of the asset (a Prometheus sample is a 64-bit float:
good for graphs and alerts; the admin shows exact figures).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ..chain.rpc import RPCError, client_for
from ..chain.rpc_errors import shown_url
from ..conf import NetworkConfig, gateway_settings
from ..models import (
    CheckoutSession,
    DeliveryState,
    PaymentStatus,
    RpcErrorCount,
    SessionStatus,
    Sweep,
    SweepOrigin,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventStatus,
)
from . import probes

PREFIX = "payments_gateway"


def registry() -> CollectorRegistry:
    """A registry holding only :class:`GatewayCollector` (built per scrape: nothing is kept between scrapes)."""
    found = CollectorRegistry(auto_describe=False)
    found.register(GatewayCollector())
    return found


class GatewayCollector(Collector):
    """Every figure of the gateway, read when Prometheus asks."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield from self._scanners(now)
        yield self._rpc_errors()
        yield self._open_sessions()
        yield from self._deliveries(now)
        yield from self._incoming()
        depth = probes.queue_depth()
        if depth is not None:
            yield GaugeMetricFamily(f"{PREFIX}_task_queue_depth", "Tasks waiting in django-q2's broker.", value=depth)
        yield from self._forwarders()

    def _scanners(self, now: Any) -> Iterator[Metric]:
        blocks = _gauge("scanner_lag_blocks", "Blocks between the scanner's cursor and the head it last saw.")
        seconds = _gauge("scanner_lag_seconds", "Blocks behind x block_time, plus the time since the last scan.")
        last = _gauge("scanner_last_scan_timestamp_seconds", "When the last scan of the network finished.")
        for lag in probes.scanner_lags(now):
            if lag.blocks is not None and lag.seconds is not None:
                blocks.add_metric([lag.network], lag.blocks)
                seconds.add_metric([lag.network], lag.seconds)
            if lag.last_scan_at is not None:
                last.add_metric([lag.network], lag.last_scan_at.timestamp())
        yield from (blocks, seconds, last)

    def _rpc_errors(self) -> Metric:
        errors = CounterMetricFamily(
            f"{PREFIX}_rpc_errors",
            "RPC requests that failed over to the next URL, by network, URL (scheme, host and port) and kind.",
            labels=["network", "url", "kind"],
        )
        for network, url, kind, count in RpcErrorCount.objects.values_list("network", "url", "kind", "count"):
            errors.add_metric([network, shown_url(url), kind], count)
        return errors

    def _open_sessions(self) -> Metric:
        sessions = _gauge("open_sessions", "Open checkout sessions by payment status.", ["payment_status"])
        counts = dict(
            CheckoutSession.objects.filter(status=SessionStatus.OPEN)
            .order_by()
            .values_list("payment_status")
            .annotate(n=Count("id"))
        )
        for status in PaymentStatus.values:
            sessions.add_metric([status], counts.get(status, 0))
        return sessions

    def _deliveries(self, now: Any) -> Iterator[Metric]:
        labels = ["endpoint", "url"]
        backlog = _gauge("webhook_backlog", "Webhook deliveries due now and not attempted yet.", labels)
        oldest = _gauge("webhook_backlog_oldest_seconds", "How long the oldest delivery due has waited.", labels)
        failed = _gauge("webhook_failed_deliveries", "Deliveries that gave up after every retry.", labels)
        attempts = CounterMetricFamily(f"{PREFIX}_webhook_failed_attempts", "Failed delivery attempts.", labels=labels)
        active = _gauge("webhook_endpoint_active", "1 while the endpoint receives deliveries, 0 once disabled.", labels)
        due = {b.endpoint: b for b in probes.delivery_backlog(now)}
        gave_up = _per_endpoint(WebhookDelivery.objects.filter(state=DeliveryState.FAILED), "endpoint__uuid")
        failures = _per_endpoint(WebhookAttempt.objects.filter(success=False), "delivery__endpoint__uuid")
        for uuid, url, is_active in WebhookEndpoint.objects.order_by("created").values_list("uuid", "url", "active"):
            key, label = str(uuid), [str(uuid), shown_url(url)]
            found = due.get(key)
            backlog.add_metric(label, found.count if found else 0)
            oldest.add_metric(label, max((now - found.oldest).total_seconds(), 0) if found else 0)
            failed.add_metric(label, gave_up.get(key, 0))
            attempts.add_metric(label, failures.get(key, 0))
            active.add_metric(label, int(is_active))
        yield from (backlog, oldest, failed, attempts, active)

    def _incoming(self) -> Iterator[Metric]:
        queued = _gauge("incoming_queue_depth", "Incoming webhook events received and not processed yet.", ["source"])
        failed = _gauge("incoming_failed", "Incoming webhook events whose handler failed.", ["source"])
        for status, metric in ((WebhookEventStatus.RECEIVED, queued), (WebhookEventStatus.FAILED, failed)):
            rows = WebhookEvent.objects.filter(status=status).order_by().values_list("source").annotate(n=Count("id"))
            for source, count in sorted(rows):
                metric.add_metric([source], count)
        yield from (queued, failed)

    def _forwarders(self) -> Iterator[Metric]:
        from ..services.balances import forwarder_overview

        unswept = _gauge("unswept_balance", "What waits at forwarder deposit addresses, in whole units.",
                         ["network", "asset"])  # fmt: skip
        gas = _gauge("relayer_gas", "The relayer's balance of the native coin, in whole units.", ["network", "address"])
        readable = _gauge("forwarder_chain_readable", "1 when the balances above could be read on chain.", ["network"])
        for name, config in sorted(gateway_settings.networks.items()):
            if config.deposit_scheme != "forwarder":
                continue
            overview = forwarder_overview(name)
            readable.add_metric([name], int(not overview.error))
            for symbol, units in overview.unswept_units.items():
                unswept.add_metric([name, symbol], _whole(units, config.asset(symbol).decimals))
            address, balance = overview.relayer, overview.relayer_units
            if balance is None:
                address, balance = _relayer_from_sweeps(config)
            if balance is not None:
                gas.add_metric([name, address], _whole(balance, config.native.decimals))
        yield from (unswept, gas, readable)


def _gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, labels=labels or ["network"])


def _per_endpoint(rows: Any, field: str) -> dict[str, int]:
    return {str(uuid): n for uuid, n in rows.order_by().values_list(field).annotate(n=Count("id"))}


def _whole(units: int, decimals: int) -> float:
    """Whole units for a sample. Prometheus samples are floats: the exact Decimal becomes one here, for graphs and
    alerts only; no amount is ever computed from it."""
    return float(Decimal(units).scaleb(-decimals))


def _relayer_from_sweeps(config: NetworkConfig) -> tuple[str, int | None]:
    """The relayer's address and balance when this process has no relayer key (a web process should not): the
    sender of the network's last relayer sweep. ``("", None)`` before the first sweep or when the chain is down."""
    sender = (
        Sweep.objects.filter(network=config.name, origin=SweepOrigin.RELAYER)
        .order_by("-created")
        .values_list("sender", flat=True)
        .first()
    )
    if not sender:
        return "", None
    try:
        return sender, int(client_for(config).call("eth_getBalance", [sender, "latest"]), 16)
    except (RPCError, TypeError, ValueError):
        return sender, None

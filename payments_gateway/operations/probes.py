"""The facts operations are judged by, read from the database and the task broker (never from this process's
memory: a health check or a scrape may reach any process).

Each probe returns plain data or a problem sentence; none raises for what it was asked to look at (a database or
broker that is down is the answer, not an exception).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Count, Min
from django.utils import timezone

from ..conf import NetworkConfig, gateway_settings
from ..models import ChainCursor, DeliveryState, WebhookDelivery

#: A schedule whose next run is this far in the past has no django-q2 scheduler looking after it (a running
#: cluster looks every few seconds).
SCHEDULE_GRACE = timedelta(minutes=5)
#: Caches that only their own process can read: cluster statistics kept there are invisible to a monitor.
LOCAL_CACHES = ("django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache")


@dataclass(frozen=True)
class ScannerLag:
    """How far behind network ``network``'s scanner is. ``blocks``: blocks between its cursor and the head
    (``None``: never scanned); ``seconds``: those blocks at ``block_time`` each, plus the time since the last scan
    finished (a scanner that stopped falls behind even while the chain is idle)."""

    network: str
    blocks: int | None
    seconds: int | None
    last_scan_at: datetime | None
    last_error: str
    limit: timedelta

    @property
    def problem(self) -> str | None:
        if self.blocks is None or self.seconds is None:
            return "never scanned: is a django-q2 cluster or `manage.py payments_gateway_scan --loop` running?"
        if self.seconds > self.limit.total_seconds():
            return (
                f"{self.blocks} blocks behind the head, about {self.seconds} s including {self._since_scan()} since "
                f"the last scan; the limit (SCANNER_LAG_LIMIT) is {int(self.limit.total_seconds())} s"
            )
        return None

    def _since_scan(self) -> str:
        if self.last_scan_at is None:
            return "no completed scan"
        return f"{int((timezone.now() - self.last_scan_at).total_seconds())} s"


def database_problem(alias: str = DEFAULT_DB_ALIAS) -> str | None:
    """``None`` when the database answers a query, else what went wrong (the exception's type and message)."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def broker() -> Any:
    """django-q2's configured broker (built lazily; a Redis broker connects on first use)."""
    from django_q.brokers import get_broker

    return get_broker()


def broker_problem(queue: Any = None) -> str | None:
    """``None`` when the task broker answers (a Redis broker's PING and queue length, the ORM broker's queue
    table), else why not."""
    try:
        queue = queue or broker()
        if queue.ping() is False:
            return f"{queue.info()} does not answer"
        queue.queue_size()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def broker_name() -> str:
    from django_q.conf import Conf

    if Conf.ORM:
        return f"ORM broker (database {Conf.ORM!r})"
    if Conf.BROKER_CLASS:
        return f"broker {Conf.BROKER_CLASS}"
    return "Redis broker"


def queue_depth(queue: Any = None) -> int | None:
    """Tasks waiting in the broker's queue, or ``None`` when it cannot be read."""
    try:
        return int((queue or broker()).queue_size())
    except Exception:
        return None


@dataclass(frozen=True)
class Clusters:
    """django-q2 clusters seen alive: ``count`` clusters with ``workers`` workers in all. ``visible`` is False
    when their statistics are kept where this process cannot read them (a per-process cache)."""

    count: int
    workers: int
    visible: bool
    where: str


def clusters(queue: Any) -> Clusters:
    """The clusters that reported in the last few seconds (django-q2's ``Stat.get_all``). A Redis broker keeps
    their statistics in Redis; the others in the cache ``Q_CLUSTER["cache"]`` (default ``"default"``)."""
    from django.conf import settings
    from django_q.brokers import Broker
    from django_q.conf import Conf
    from django_q.status import Stat

    # A broker that stores statistics itself (Redis) overrides get_stats; the base class reads the cache.
    if type(queue).get_stats is Broker.get_stats:
        backend = settings.CACHES.get(Conf.CACHE, {}).get("BACKEND", "")
        where = f"the cache {Conf.CACHE!r} ({backend.rsplit('.', 1)[-1] or 'not configured'})"
        if not backend or backend in LOCAL_CACHES:
            return Clusters(0, 0, visible=False, where=where)
    else:
        where = "Redis"
    alive = {str(Conf.IDLE), str(Conf.WORKING), str(Conf.STARTING)}
    stats = [stat for stat in Stat.get_all(broker=queue) if str(stat.status) in alive]
    return Clusters(len(stats), sum(len(stat.workers) for stat in stats), visible=True, where=where)


def schedule_problems(names: list[str], now: datetime | None = None) -> dict[str, str]:
    """Schedule name → what is wrong with it, for each of ``names`` (``payments_gateway.schedules.SCHEDULES``)
    that is missing, or whose next run is more than :data:`SCHEDULE_GRACE` overdue (no scheduler runs)."""
    from django_q.models import Schedule

    now = now or timezone.now()
    next_runs = dict(Schedule.objects.filter(name__in=names).values_list("name", "next_run"))
    problems = {}
    for name in names:
        if name not in next_runs:
            problems[name] = "missing: run `manage.py payments_gateway_schedules` (or `migrate`) to create it"
        elif next_runs[name] is not None and next_runs[name] < now - SCHEDULE_GRACE:
            late = int((now - next_runs[name]).total_seconds())
            problems[name] = f"due {late} s ago and not run: no django-q2 cluster runs the scheduler"
    return problems


def scanner_lags(now: datetime | None = None, heads: dict[str, int] | None = None) -> list[ScannerLag]:
    """:class:`ScannerLag` of every configured network, in name order. ``heads``: chain heads read now (the
    check reads them); otherwise the head each scanner saw at its last scan."""
    now = now or timezone.now()
    limit = gateway_settings.SCANNER_LAG_LIMIT
    cursors = {cursor.network: cursor for cursor in ChainCursor.objects.all()}
    lags = []
    for name, config in sorted(gateway_settings.networks.items()):
        cursor = cursors.get(name)
        head = (heads or {}).get(name, cursor.head_block if cursor else None)
        if cursor is None or cursor.block_number < 0 or head is None:
            lags.append(ScannerLag(name, None, None, None, cursor.last_error if cursor else "", limit))
            continue
        blocks = max(head - cursor.block_number, 0)
        lags.append(ScannerLag(name, blocks, _lag_seconds(config, blocks, cursor, now), cursor.last_scan_at,
                               cursor.last_error, limit))  # fmt: skip
    return lags


@dataclass(frozen=True)
class Backlog:
    """Deliveries to one endpoint that are due and not attempted: ``count`` of them, the oldest due since."""

    endpoint: str  # uuid
    url: str
    count: int
    oldest: datetime


def delivery_backlog(now: datetime | None = None, older_than: timedelta = timedelta(0)) -> list[Backlog]:
    """Per active endpoint, pending deliveries due for longer than ``older_than`` (a claimed delivery's due time
    is its lease's end, so deliveries being sent right now are not counted)."""
    now = now or timezone.now()
    rows = (
        WebhookDelivery.objects.filter(
            state=DeliveryState.PENDING, endpoint__active=True, next_attempt_at__lte=now - older_than
        )
        .order_by()
        .values("endpoint__uuid", "endpoint__url")
        .annotate(count=Count("id"), oldest=Min("next_attempt_at"))
    )
    return [
        Backlog(str(row["endpoint__uuid"]), row["endpoint__url"], row["count"], row["oldest"])
        for row in sorted(rows, key=lambda r: str(r["endpoint__uuid"]))
    ]


def _lag_seconds(config: NetworkConfig, blocks: int, cursor: ChainCursor, now: datetime) -> int:
    since = (now - cursor.last_scan_at).total_seconds() if cursor.last_scan_at else 0
    return int(blocks * config.block_time + max(int(since), 0))

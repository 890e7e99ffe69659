"""RPC failures per network, URL and kind, counted in the database (:class:`~payments_gateway.models.RpcErrorCount`).

The failover in :mod:`.rpc` calls :func:`record` each time a URL fails. Counts live in the database, not in the
process: ``/metrics`` is scraped from any web process and must show what every worker, scanner and web process
saw. A failure seen inside a database transaction is kept here until the connection is out of it (written at
the next :func:`record` or :func:`flush` outside a transaction, e.g. the next RPC call), so a rolled-back scan does
not take its RPC failures with it and a failure never writes into someone else's transaction. If the database
cannot be written (it is down, or this is an async context) the counts wait for the next chance; nothing raises.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from urllib.parse import urlsplit

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

logger = logging.getLogger(__name__)

#: Kinds of failure: ``timeout``, ``connection`` (refused, DNS, TLS), ``http`` (429 or another status than 200),
#: ``throttled`` (a JSON-RPC rate-limit error), ``malformed`` (not a JSON-RPC answer), ``chain_id`` (another chain).
KINDS = ("timeout", "connection", "http", "throttled", "malformed", "chain_id")

_pending: Counter[tuple[str, str, str]] = Counter()
_last_error: dict[tuple[str, str, str], str] = {}
_lock = threading.Lock()


def record(network: str, url: str, kind: str, reason: str) -> None:
    """Count one failure of ``url`` on ``network``; written at once unless a transaction is open."""
    with _lock:
        _pending[(network, url, kind)] += 1
        _last_error[(network, url, kind)] = reason[:1000]
    flush()


def flush() -> None:
    """Write the counts kept so far, if this thread's connection is not inside a transaction."""
    if not _pending or connection.in_atomic_block:
        return
    with _lock:
        batch, errors = dict(_pending), dict(_last_error)
        _pending.clear()
        _last_error.clear()
    try:
        for key, count in batch.items():
            _add(key, count, errors.get(key, ""))
            del errors[key]
    except Exception as exc:  # the database is down, or this is an async context: keep them for next time
        logger.debug("RPC error counts not written yet: %s", exc)
        with _lock:
            for key in errors:
                _pending[key] += batch[key]
                _last_error.setdefault(key, errors[key])


def forget() -> None:
    """Drop counts not written yet (tests, between cases)."""
    with _lock:
        _pending.clear()
        _last_error.clear()


def shown_url(url: str) -> str:
    """``url`` as it may be shown outside the settings (a metrics label, a monitoring line): scheme, host and
    port only, since providers put API keys in the path or query (``https://mainnet.example/v3/<key>``)."""
    parts = urlsplit(url)
    hidden = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{hidden}"


def _add(key: tuple[str, str, str], count: int, error: str) -> None:
    from ..models import RpcErrorCount

    network, url, kind = key
    now = timezone.now()
    rows = RpcErrorCount.objects.filter(network=network, url=url, kind=kind)
    if rows.update(count=F("count") + count, last_error=error, last_at=now):
        return
    try:
        with transaction.atomic():
            RpcErrorCount.objects.create(
                network=network, url=url, kind=kind, count=count, last_error=error, last_at=now
            )
    except IntegrityError:  # another process created it first
        rows.update(count=F("count") + count, last_error=error, last_at=now)

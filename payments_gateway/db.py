"""Database settings helper: PostgreSQL from ``DATABASE_URL``, or SQLite set up for several processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

# Several processes (web, django-q2 cluster, scanner) write to one SQLite file in the embedded default.
# WAL lets readers run beside the writer; IMMEDIATE takes the write lock when a transaction starts, so a
# read-then-write transaction waits for the lock (busy timeout) instead of failing with "database is locked".
SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
}


def database_from_url(url: str | None, *, sqlite_path: str | Path) -> dict[str, Any]:
    """A ``DATABASES["default"]`` entry for ``url`` (``postgres://user:pass@host:port/name`` or
    ``sqlite:///path``); SQLite at ``sqlite_path`` when ``url`` is empty.

    A PostgreSQL URL's query parameters are connection options (``?sslmode=require&application_name=web``), as
    libpq reads them: ``application_name`` names a group of processes in ``pg_stat_activity``."""
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(sqlite_path),
            "OPTIONS": dict(SQLITE_OPTIONS),
        }
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path[1:]) or str(sqlite_path),
                "OPTIONS": dict(SQLITE_OPTIONS)}  # fmt: skip
    if parts.scheme in {"postgres", "postgresql"}:
        entry: dict[str, Any] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "postgres",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
        if parts.query:
            entry["OPTIONS"] = dict(parse_qsl(parts.query, keep_blank_values=True))
        return entry
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {parts.scheme!r} is not supported: use postgres://user@host:5432/name or sqlite:///path."
    )

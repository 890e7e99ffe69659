import pytest
from django.db import connection


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def sync_tasks(monkeypatch):
    """django-q2 runs each queued task at once, in the caller's thread (Q_CLUSTER "sync" mode)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)

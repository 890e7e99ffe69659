"""The environment of a process a test starts (a worker, a cluster, a command): the test database, and
optionally the test's ``PAYMENTS_GATEWAY``, ``Q_CLUSTER`` and ``CACHES`` (read by tests/settings.py and the worker
modules)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.db import connection


def database_url() -> str:
    """``DATABASE_URL`` of the test database this process uses."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


def process_env(
    gateway: dict | None = None, q_cluster: dict | None = None, caches: dict | None = None
) -> dict[str, str]:
    """This environment, on the test database, with ``gateway`` as ``PAYMENTS_GATEWAY_TEST_OVERRIDE``,
    ``q_cluster`` as ``PAYMENTS_GATEWAY_TEST_Q_CLUSTER`` and ``caches`` as ``PAYMENTS_GATEWAY_TEST_CACHES`` when
    given."""
    env = os.environ | {"DATABASE_URL": database_url(), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    if gateway is not None:
        env["PAYMENTS_GATEWAY_TEST_OVERRIDE"] = json.dumps(gateway)
    if q_cluster is not None:
        env["PAYMENTS_GATEWAY_TEST_Q_CLUSTER"] = json.dumps(q_cluster)
    if caches is not None:
        env["PAYMENTS_GATEWAY_TEST_CACHES"] = json.dumps(caches)
    return env

"""Starting the project's own processes from a test (``manage.py qcluster``, ``uvicorn example_shop.asgi``) on the
test database, and stopping each with everything it started."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database this test uses (the test database), for a child process."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


def start(args: list[str], gateway: dict[str, Any], log: Path) -> subprocess.Popen:
    """``python <args>`` with tests/cluster_settings.py on the test database, in its own process group."""
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "tests.cluster_settings",
        "DATABASE_URL": database_url(),
        "PAYMENTS_GATEWAY_TEST_OVERRIDE": json.dumps(gateway),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the process (qcluster stops its workers), then SIGKILL to whatever is left of its group."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    for _ in range(50):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            break
        process.poll()
        time.sleep(0.1)

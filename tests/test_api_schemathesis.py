"""The OpenAPI schema at /api/v1/schema/ is exact: schemathesis (its CLI, as an API client would run it) with all
its checks (its default), in its fuzzing and stateful phases, finds nothing against a live server on the test
database (SQLite under ``make test``; PostgreSQL with DATABASE_URL). Any finding fails the test, and so
``make test``.

Bounded: a fixed seed, ``MAX_EXAMPLES`` cases per operation and one worker: about 80 s here. Its coverage phase
(boundary values of every constraint) finds nothing either: ``SCHEMATHESIS_PHASES=coverage,fuzzing,stateful``
(about two minutes more). The settings
and the one documented exception (``positive_data_acceptance`` on three operations whose requests name other
objects) are in tests/schemathesis.toml; tests/schemathesis_hooks.py keeps generated Idempotency-Keys unique.
"""

import ipaddress
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from payments_gateway.api.idempotency import KEY_PATTERN
from payments_gateway.models import APIKey

from .factories import make_endpoint, make_event, make_session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("test_gateway")]

SEED = 20261201
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
PHASES = os.environ.get("SCHEMATHESIS_PHASES", "fuzzing,stateful")
ST = Path(sys.executable).parent / "st"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def any_host_is_public(monkeypatch):
    """DNS is remote: every name schemathesis makes up for a webhook URL resolves to a public address (IP
    literals are left to the SSRF rules)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        try:
            ipaddress.ip_address(str(host).strip("[]"))
        except ValueError:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port or 443))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_schemathesis_finds_nothing(live_server, tmp_path, any_host_is_public):
    _, raw = APIKey.objects.create_key("schemathesis")
    # Something to read, so GETs of existing objects are exercised too (stateful links find the rest).
    make_session()
    make_endpoint()
    make_event()
    command = [
        str(ST), "--config-file", str(ROOT / "tests" / "schemathesis.toml"), "run", f"{live_server.url}/api/v1/schema/",
        "--phases", PHASES,
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "1",
        "--no-shrink",
        "--request-timeout", "20",
        "--report", "ndjson", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=170,
        cwd=tmp_path,  # schemathesis keeps a crash cache in its working directory
        env=os.environ
        | {
            "NO_COLOR": "1",
            "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
            "IDEMPOTENCY_KEY_PATTERN": KEY_PATTERN,
            "SCHEMATHESIS_API_KEY": raw,
            "PYTHONPATH": str(ROOT),
        },
    )
    output = run.stdout + run.stderr
    print(output[-4000:])  # its summary (phases, links covered, warnings), shown with pytest -rP
    assert run.returncode == 0, output
    assert "Fuzzing" in output and "Stateful" in output and "Seed: " in output, output[-5000:]

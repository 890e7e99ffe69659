"""``GET /health/`` (200 or 503 naming the failing parts) and ``GET /metrics`` (guarded by ``METRICS_TOKEN``),
scraped over HTTP and parsed with prometheus-client's own parser: the figures follow what happens."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.test import Client
from django.utils import timezone
from eth_account import Account
from prometheus_client.parser import text_string_to_metric_families

from payments_gateway.events import emit
from payments_gateway.models import ChainCursor
from payments_gateway.scanning import scan_network
from payments_gateway.webhooks.outgoing.delivery import deliver_due

from .factories import make_delivery, make_endpoint, make_forwarder_session, make_incoming_event, make_session
from .http_receiver import Receiver, Reply, closed_port, live_wsgi_server
from .ops_helpers import run_check_process, use_redis_broker

TOKEN = "scrape-token-for-the-tests-0123"


def scrape(client: Client | None = None, token: str = TOKEN) -> dict[tuple[str, tuple], float]:
    """``/metrics`` as ``{(sample name, sorted labels): value}``."""
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def metrics_token(settings):
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "METRICS_TOKEN": TOKEN}


# --- /metrics: the guard ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_without_a_configured_token_does_not_exist(client):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}


@pytest.mark.django_db
@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", "Bearer"])
def test_metrics_refuse_a_missing_or_wrong_token_with_a_clear_401(client, metrics_token, header):
    response = client.get("/metrics", **({"HTTP_AUTHORIZATION": header} if header else {}))
    assert response.status_code == 401
    assert response.json() == {
        "error": "A valid metrics token is required: send the header "
        "'Authorization: Bearer <PAYMENTS_GATEWAY[\"METRICS_TOKEN\"]>'."
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"payments_gateway_" not in response.content


# --- /metrics: the figures -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_open_sessions_by_payment_status_follow_new_sessions(test_gateway, settings):
    settings.PAYMENTS_GATEWAY = {**test_gateway, "METRICS_TOKEN": TOKEN}
    before = scrape()
    assert before[("payments_gateway_open_sessions", (("payment_status", "unpaid"),))] == 0
    make_session()
    make_session()
    make_session(payment_status="partially_paid")
    make_session(status="expired")
    after = scrape()
    assert after[("payments_gateway_open_sessions", (("payment_status", "unpaid"),))] == 2
    assert after[("payments_gateway_open_sessions", (("payment_status", "partially_paid"),))] == 1
    assert after[("payments_gateway_open_sessions", (("payment_status", "paid"),))] == 0


@pytest.mark.django_db
def test_a_delivery_failure_and_the_backlog_show_up_per_endpoint(metrics_token, private_webhook_urls):
    with Receiver(Reply(500, b"down")) as receiver:
        endpoint = make_endpoint(receiver.url())
        labels = (("endpoint", str(endpoint.uuid)), ("url", f"http://127.0.0.1:{receiver.port}/…"))
        assert scrape()[("payments_gateway_webhook_failed_attempts_total", labels)] == 0
        emit("payment.completed", {})
        assert scrape()[("payments_gateway_webhook_backlog", labels)] == 1  # due, not attempted yet
        deliver_due()
    after = scrape()
    assert after[("payments_gateway_webhook_failed_attempts_total", labels)] == 1
    assert after[("payments_gateway_webhook_backlog", labels)] == 0  # retried later, not due now
    assert after[("payments_gateway_webhook_endpoint_active", labels)] == 1

    make_delivery(endpoint=endpoint, next_attempt_at=timezone.now() - timedelta(minutes=10))
    late = scrape()
    assert late[("payments_gateway_webhook_backlog", labels)] == 1
    assert late[("payments_gateway_webhook_backlog_oldest_seconds", labels)] >= 600


@pytest.mark.django_db
def test_incoming_events_waiting_for_their_handler_are_the_queue_depth(metrics_token):
    make_incoming_event(source="partner")
    make_incoming_event(source="partner")
    make_incoming_event(source="partner", status="processed")
    make_incoming_event(source="github", status="failed")
    found = scrape()
    assert found[("payments_gateway_incoming_queue_depth", (("source", "partner"),))] == 2
    assert found[("payments_gateway_incoming_failed", (("source", "github"),))] == 1
    assert found[("payments_gateway_task_queue_depth", ())] == 0  # the ORM broker's queue


@pytest.mark.django_db(transaction=True)
@pytest.mark.anvil
def test_rpc_errors_counted_by_another_process_are_scraped_over_http(chain, settings):
    """The scanner runs in a process of its own; its failover from a dead URL is counted in the database, so the
    web process (a live server here) reports it. Scanner lag comes from the same scan."""
    dead = f"http://127.0.0.1:{closed_port()}"
    gateway = {
        **settings.PAYMENTS_GATEWAY,
        "METRICS_TOKEN": TOKEN,
        "NETWORKS": {"anvil": chain.network_settings(rpc_urls=[dead, chain.rpc_url])},
    }
    settings.PAYMENTS_GATEWAY = gateway
    done = run_check_process("scan", gateway=gateway)
    assert done.returncode == 0, done.stderr
    with live_wsgi_server() as base:
        response = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    found = samples(response.text)
    errors = ("payments_gateway_rpc_errors_total", (("kind", "connection"), ("network", "anvil"), ("url", dead)))
    assert found[errors] == 1
    assert found[("payments_gateway_scanner_lag_blocks", (("network", "anvil"),))] == 0
    assert found[("payments_gateway_scanner_last_scan_timestamp_seconds", (("network", "anvil"),))] > 0


@pytest.mark.django_db
@pytest.mark.anvil
def test_unswept_balance_and_relayer_gas_on_a_forwarder_network(chain, forwarder_settings, settings, monkeypatch):
    settings.PAYMENTS_GATEWAY = {**forwarder_settings, "METRICS_TOKEN": TOKEN}
    session = make_forwarder_session(asset="ETH", amount_due=10**18)
    chain.send_eth(session.deposit_address.address, 3 * 10**17)
    relayer = Account.from_key(chain.relayer_key).address
    found = scrape()
    assert found[("payments_gateway_unswept_balance", (("asset", "ETH"), ("network", "anvil")))] == 0.3
    assert found[("payments_gateway_unswept_balance", (("asset", "USDC"), ("network", "anvil")))] == 0
    gas = chain.w3.eth.get_balance(relayer)
    assert found[("payments_gateway_relayer_gas", (("address", relayer), ("network", "anvil")))] == gas / 10**18
    assert found[("payments_gateway_forwarder_chain_readable", (("network", "anvil"),))] == 1

    # A web process holds no relayer key: the relayer is the sender of the network's last sweep.
    monkeypatch.delenv("PAYMENTS_GATEWAY_RELAYER_KEY")
    assert not [key for key in scrape() if key[0] == "payments_gateway_relayer_gas"]  # no sweep yet
    from .factories import make_sweep

    make_sweep(session.deposit_address, sender=relayer)
    assert scrape()[("payments_gateway_relayer_gas", (("address", relayer), ("network", "anvil")))] == gas / 10**18


# --- /health/ ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.anvil
def test_health_is_200_when_the_database_the_broker_and_the_scanners_are_fine(anvil_settings, client):
    scan_network("anvil")
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    lag = body["checks"]["scanner:anvil"].pop("lag_seconds")
    assert body == {
        "status": "ok",
        "checks": {
            "database": {"status": "ok"},
            "broker": {"status": "ok"},
            "scanner:anvil": {"status": "ok", "lag_blocks": 0},
        },
    }
    assert 0 <= lag < 300


@pytest.mark.django_db
@pytest.mark.anvil
def test_health_is_503_naming_a_scanner_that_stopped(anvil_settings, settings, client):
    settings.PAYMENTS_GATEWAY = {**anvil_settings, "SCANNER_LAG_LIMIT": 60}
    scan_network("anvil")
    ChainCursor.objects.filter(network="anvil").update(last_scan_at=timezone.now() - timedelta(minutes=10))
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {"status": "ok"}
    scanner = body["checks"]["scanner:anvil"]
    assert scanner["status"] == "fail" and scanner["lag_blocks"] == 0 and scanner["lag_seconds"] >= 600
    assert scanner["error"].startswith("0 blocks behind the head, about 6")
    assert scanner["error"].endswith("the limit (SCANNER_LAG_LIMIT) is 60 s")


@pytest.mark.django_db
def test_health_is_503_naming_a_network_never_scanned(test_gateway, client):
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["scanner:test"]["status"] == "fail"
    assert response.json()["checks"]["scanner:test"]["error"].startswith("never scanned")


@pytest.mark.django_db
def test_health_is_503_naming_a_redis_broker_that_is_not_there(settings, client, monkeypatch):
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "NETWORKS": {}}
    use_redis_broker(monkeypatch, f"redis://127.0.0.1:{closed_port()}/9")
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {
            "database": {"status": "ok"},
            "broker": {"status": "fail", "error": "Redis broker unreachable (ConnectionError)"},
        },
    }


@pytest.mark.django_db
def test_health_answers_head_for_load_balancers_and_refuses_post(test_gateway, client):
    assert client.head("/health/").status_code == 503  # the test network was never scanned
    assert client.post("/health/").status_code == 405


def test_health_is_503_naming_a_database_that_is_not_there():
    """A web process whose database is down (a closed port) still answers: 503, the database (and the ORM broker,
    which lives in it) failing, no traceback and no connection details."""
    env = os.environ | {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/nowhere",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    server = subprocess.Popen([sys.executable, "-m", "tests.ops_runner", "serve"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        base = server.stdout.readline().strip()
        response = requests.get(f"{base}/health/", timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {
            "database": {"status": "fail", "error": "unreachable (OperationalError)"},
            "broker": {"status": "fail", "error": "ORM broker (database 'default') unreachable (OperationalError)"},
            "scanners": {"status": "fail", "error": "unknown: the database is unreachable"},
        },
    }

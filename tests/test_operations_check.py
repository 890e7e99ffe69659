"""``manage.py payments_gateway_check`` on the dev chain: one line per problem, an OK summary when nothing is wrong,
exit status 2 on errors (1 on warnings only). Real RPC URLs (right and wrong chain id, a closed port), a real
forwarder factory (missing and deployed), a relayer with and without gas, django-q2 on the Redis broker with and
without a running cluster, and a Redis that is not there."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule
from eth_account import Account

from payments_gateway.scanning import scan_network
from payments_gateway.schedules import SCHEDULES, ensure_schedules

from .factories import make_delivery, make_endpoint
from .http_receiver import closed_port
from .ops_helpers import SHARED_CACHE_URL, flush_redis, run_check_process, running_cluster, use_redis_broker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anvil]


NO_CLUSTER = "ERROR cluster django-q2: no cluster is running (none reported to Redis): start `manage.py qcluster`"


def check(*, cluster_line: bool = True) -> tuple[int, list[str]]:
    """Run the command; its exit status and output lines (without the line saying no cluster runs unless
    ``cluster_line``: most tests start none)."""
    out = io.StringIO()
    try:
        call_command("payments_gateway_check", stdout=out)
        code = 0
    except SystemExit as exit:
        code = exit.code
    lines = out.getvalue().splitlines()
    return code, lines if cluster_line else [line for line in lines if line != NO_CLUSTER]


@pytest.fixture
def redis_broker(monkeypatch):
    """django-q2 on the Redis broker (database 8, emptied before and after): the cluster statistics are shared."""
    flush_redis()
    yield use_redis_broker(monkeypatch)
    flush_redis()


@pytest.fixture
def scanned(anvil_settings):
    ensure_schedules()
    scan_network("anvil")
    return anvil_settings


def test_all_well_with_a_running_cluster_prints_one_ok_line_and_exits_0(scanned, redis_broker):
    with running_cluster(redis_broker):
        from payments_gateway.operations import probes

        wait_for(lambda: probes.clusters(probes.broker()).workers, "the cluster to report its worker")
        code, lines = check()
    assert code == 0, lines
    assert len(lines) == 1 and lines[0].startswith("OK: 1 networks (1 RPC URLs), 1 django-q2 cluster(s) with 1 workers")
    assert f"{len(SCHEDULES)} schedules" in lines[0]


def test_on_the_orm_broker_clusters_are_seen_through_a_shared_cache(scanned, settings, monkeypatch):
    """The ORM broker keeps cluster statistics in Q_CLUSTER["cache"]: a cache every process reads (Redis here)
    lets the check see the cluster; none running is then an error, not a warning."""
    from django_q.conf import Conf

    from payments_gateway.operations import probes

    flush_redis(SHARED_CACHE_URL)
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "clusters": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": SHARED_CACHE_URL},
    }
    settings.CACHES = caches
    monkeypatch.setattr(Conf, "CACHE", "clusters")
    q_cluster = {"name": Conf.CLUSTER_NAME, "workers": 1, "timeout": 30, "retry": 60, "orm": "default",
                 "cache": "clusters"}  # fmt: skip
    try:
        code, lines = check()
        assert (code, lines) == (2, [NO_CLUSTER.replace("Redis", "the cache 'clusters' (RedisCache)")])
        with running_cluster(q_cluster, caches=caches):
            wait_for(lambda: probes.clusters(probes.broker()).workers, "the cluster to report its worker")
            code, lines = check()
        assert code == 0, lines
        assert lines[0].startswith("OK: 1 networks (1 RPC URLs), 1 django-q2 cluster(s) with 1 workers")
    finally:
        flush_redis(SHARED_CACHE_URL)


def test_no_cluster_running_is_an_error(scanned, redis_broker):
    code, lines = check()
    assert code == 2
    assert lines == [NO_CLUSTER]


def test_wrong_chain_id_and_an_unreachable_url_each_get_their_line(chain, settings, redis_broker):
    port = closed_port()
    dead = f"http://127.0.0.1:{port}/v3/secret-api-key"  # a provider's key in the path is never printed
    settings.PAYMENTS_GATEWAY = {
        **settings.PAYMENTS_GATEWAY,
        "NETWORKS": {
            "base": chain.network_settings(chain_id=8453, dev=False),
            "anvil": chain.network_settings(rpc_urls=[dead, chain.rpc_url]),
        },
    }
    ensure_schedules()
    scan_network("anvil")
    code, lines = check(cluster_line=False)
    assert code == 2
    anvil_port = chain.rpc_url.rsplit(":", 1)[1].strip("/")
    assert f"ERROR rpc base http://127.0.0.1:{anvil_port}: chain id 31337, expected 8453" in lines
    assert "ERROR scheme base: not checked: no RPC URL of the network answers with its chain id" in lines
    unreachable = [line for line in lines if line.startswith(f"ERROR rpc anvil http://127.0.0.1:{port}/…: unreachable")]
    assert len(unreachable) == 1, lines
    assert "connection error" in unreachable[0]
    assert "secret-api-key" not in "\n".join(lines)
    # anvil's second URL answers: its scheme and scanner were checked and are fine.
    assert not [line for line in lines if line.startswith(("ERROR scheme anvil", "ERROR scanner anvil"))]


def test_a_forwarder_factory_missing_and_deployed(chain, forwarder_settings, settings, redis_broker):
    ensure_schedules()
    scan_network("anvil")
    code, lines = check(cluster_line=False)
    assert lines == [], lines  # the dev factory, a funded relayer

    nowhere = Account.create().address
    settings.PAYMENTS_GATEWAY = {
        **forwarder_settings,
        "NETWORKS": {"anvil": chain.network_settings(forwarder=True, forwarder_factory=nowhere)},
    }
    code, lines = check(cluster_line=False)
    assert code == 2
    assert [line for line in lines if line.startswith("ERROR scheme anvil:")] == [
        f"ERROR scheme anvil: PAYMENTS_GATEWAY['NETWORKS']['anvil']['forwarder_factory']: no contract at the "
        f"forwarder factory address {nowhere} on chain id 31337: deploy one with `manage.py payments_gateway_sweep "
        f"--deploy-factory --network anvil` and set PAYMENTS_GATEWAY['NETWORKS']['anvil']['forwarder_factory']"
    ]


def test_an_unfunded_relayer_is_reported_low_on_gas(chain, forwarder_settings, monkeypatch, redis_broker):
    ensure_schedules()
    scan_network("anvil")
    empty = Account.create()
    monkeypatch.setenv("PAYMENTS_GATEWAY_RELAYER_KEY", empty.key.hex())
    code, lines = check(cluster_line=False)
    assert code == 2
    assert lines == [
        f"ERROR scheme anvil: network 'anvil': the relayer {empty.address} is low on gas: it holds 0 ETH, below 0.01 "
        "ETH. Send it ETH; sweeps wait until then and no deposit is lost (the funds stay at their deposit addresses, "
        "which only the treasury can receive from)."
    ]


def test_scanner_lag_schedules_and_delivery_backlog(chain, scanned, settings, redis_broker):
    settings.PAYMENTS_GATEWAY = {**scanned, "SCANNER_LAG_LIMIT": 30}
    chain.mine(40)  # block_time 1 s: 40 s behind
    Schedule.objects.filter(name="payments_gateway.expire_sessions").delete()
    Schedule.objects.filter(name="payments_gateway.deliver_webhooks").update(
        next_run=timezone.now() - timedelta(hours=1)
    )
    endpoint = make_endpoint("https://shop.example/hooks")
    for _ in range(3):
        make_delivery(endpoint=endpoint, next_attempt_at=timezone.now() - timedelta(minutes=20))
    make_delivery(endpoint=endpoint, next_attempt_at=timezone.now() - timedelta(minutes=2))  # within the limit

    code, lines = check(cluster_line=False)
    assert code == 2
    assert any(line.startswith("ERROR scanner anvil: 40 blocks behind the head, about 4") for line in lines), lines
    assert "the limit (SCANNER_LAG_LIMIT) is 30 s" in next(line for line in lines if "scanner anvil" in line)
    assert ("ERROR schedule payments_gateway.expire_sessions: missing: run `manage.py payments_gateway_schedules` "
            "(or `migrate`) to create it") in lines  # fmt: skip
    assert any(line.startswith("ERROR schedule payments_gateway.deliver_webhooks: due 36") for line in lines), lines
    backlog = [line for line in lines if line.startswith("ERROR deliveries")]
    assert len(backlog) == 1
    assert backlog[0].startswith(f"ERROR deliveries {endpoint.uuid} https://shop.example/…: 3 webhook deliveries due")


def test_a_network_never_scanned_is_an_error(anvil_settings, redis_broker):
    ensure_schedules()
    code, lines = check(cluster_line=False)
    assert lines == [
        "ERROR scanner anvil: never scanned: is a django-q2 cluster or `manage.py payments_gateway_scan --loop` "
        "running?"
    ]
    assert code == 2


def test_with_a_per_process_cache_the_cluster_cannot_be_seen_a_warning_exit_1(scanned):
    # tests/settings.py: the ORM broker, and Django's default LocMemCache for django-q2's statistics.
    code, lines = check()
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith(
        "WARNING cluster django-q2: cannot tell whether a cluster runs: with this broker django-q2 keeps its "
        "statistics in the cache 'default' (LocMemCache)"
    )


def test_a_redis_broker_on_a_closed_port_is_a_finding_not_a_traceback(anvil_settings):
    ensure_schedules()
    url = f"redis://127.0.0.1:{closed_port()}/8"
    done = run_check_process(gateway=anvil_settings, q_cluster={"name": "payments_gateway", "orm": None, "redis": url})
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith(("ERROR broker", "ERROR cluster"))] == [
        next(line for line in lines if line.startswith("ERROR broker Redis broker: unreachable: ConnectionError:")),
        "ERROR cluster django-q2: not checked: the broker is unreachable",
    ]


def test_a_settings_mistake_is_a_finding_line(settings):
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "METRICS_TOKEN": "short"}
    code, lines = check()
    assert code == 2
    assert lines == [
        "ERROR settings payments_gateway.E029: PAYMENTS_GATEWAY['METRICS_TOKEN'] is 5 characters long; use at least "
        "16: generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
    ]


def test_an_xpub_network_without_an_xpub_is_a_finding(scanned, settings, redis_broker):
    settings.PAYMENTS_GATEWAY = {**scanned, "XPUB": None}
    code, lines = check(cluster_line=False)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(
        "ERROR scheme anvil: xpub: ImproperlyConfigured: PAYMENTS_GATEWAY['XPUB'] is not set"
    ), lines


def test_a_factory_with_other_code_than_this_version_is_a_finding(chain, forwarder_settings, redis_broker):
    # The dev factory's code with bytes appended after its end: it still computes the same addresses, but it is not
    # the contract this version ships.
    ensure_schedules()
    scan_network("anvil")
    code = chain.rpc("eth_getCode", [chain.forwarder_factory, "latest"])
    chain.rpc("anvil_setCode", [chain.forwarder_factory, code + "fe" * 32])
    status, lines = check(cluster_line=False)
    assert status == 2
    assert len(lines) == 1 and lines[0].startswith(
        f"ERROR scheme anvil: PAYMENTS_GATEWAY['NETWORKS']['anvil']['forwarder_factory']: the contract at "
        f"{chain.forwarder_factory} computes the right deposit addresses, but its code ("
    ), lines
    assert "is not this version's ForwarderFactory" in lines[0]


def test_a_database_never_migrated_is_one_finding_not_a_traceback(tmp_path):
    env = os.environ | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    done = subprocess.run([sys.executable, "-m", "tests.ops_runner", "check"], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    assert (
        "ERROR database default: OperationalError: no such table: django_q_schedule: has `manage.py migrate` run?"
        in (done.stdout.splitlines())
    )


def test_fewer_cluster_workers_than_networks_plus_one_is_a_warning_line(settings):
    # One worker for one network: its follower would hold it, and deliveries, expiry and renewals would wait.
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 1}
    code, lines = check()
    warnings = [line for line in lines if line.startswith("WARNING settings payments_gateway.W003")]
    assert len(warnings) == 1 and "workers" in warnings[0], lines
    assert code >= 1

"""Two groups of real processes — each a web server (gunicorn), a django-q2 cluster (``qcluster``) and a scanner
(``payments_gateway_scan --loop``) — share one PostgreSQL test database, one Redis database (the broker) and one
anvil chain, while a stream of checkouts is created through their APIs and paid on chain, and faults are injected:

- ``kill -9`` of a cluster worker while the merchant's endpoint holds its webhook request (mid-delivery);
- ``kill -9`` of the scanner holding the network's lease (mid-range), restarted as a supervisor would;
- the PostgreSQL connections of one group terminated (``pg_terminate_backend``) while it is in a transaction;
- the first RPC URL (a proxy in front of anvil) going off and on again, twice;
- ``kill -9`` of every process of a whole group, which stays dead: the other group does the rest.

Afterwards: every payment credited exactly once; every event delivered at least once, with its own id as
``webhook-id`` on every attempt; duplicates only where an attempt was cut off before its outcome was recorded
(and no more than the faults had in flight); the scan cursor never behind a credited block. The counts are
printed at the end of the pytest run.

PostgreSQL only: on SQLite (one writer at a time, no connections to terminate) it is not applicable.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass

import pytest
import requests
from django.db import connection
from django.db.models import Max
from django_q.tasks import async_task

from payments_gateway.models import ChainCursor, CheckoutSession, DeliveryState, Event, Transfer, WebhookDelivery
from payments_gateway.scanning import scan_network
from tests.factories import TEST_XPUB, make_api_key, make_chain_session, make_endpoint
from tests.http_receiver import Receiver, closed_port
from tests.processes import (
    Broker,
    Service,
    child_env,
    django_command,
    gunicorn,
    pid_of_client,
    redis_broker,
    wait_for,
    wait_http,
)

from . import REPORT
from .proxy import FlappingProxy

if connection.vendor != "postgresql":  # one skip for the whole suite, in the SQLite leg only
    pytest.skip("not applicable on SQLite: fault injection needs PostgreSQL (runs in the PostgreSQL leg)",
                allow_module_level=True)  # fmt: skip

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

PAYMENTS = 24  # one a second
REDIS_DB = 3
RECOVERY_TIMEOUT = 300  # seconds: a dead scanner's lease (2 min) plus catching up and redelivering


@dataclass
class Group:
    """One group of processes, with its own name on its PostgreSQL connections."""

    name: str
    application_name: str
    url: str
    services: dict[str, Service]

    def kill(self) -> int:
        return sum(service.kill() for service in self.services.values())


def start_group(name: str, gateway: dict, broker: Broker) -> Group:
    application_name = f"faults-{name}-{os.getpid()}"
    env = child_env(gateway, broker, application_name)
    port = closed_port()
    services = {
        "web": Service(f"web-{name}", gunicorn(port), env),
        "cluster": Service(f"qcluster-{name}", django_command("qcluster"), env),
        "scanner": Service(f"scanner-{name}", django_command("payments_gateway_scan", "--loop"), env),
    }
    for service in services.values():
        service.start()
    return Group(name, application_name, f"http://127.0.0.1:{port}", services)


def terminate_connections(application_name: str) -> tuple[int, int]:
    """Terminate the PostgreSQL connections named ``application_name`` to this test database (no one else's), once
    one of them is inside a statement or a transaction (waiting at most 5 s for that); returns how many were
    terminated, and how many of them were busy."""
    mine = "datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()"
    with connection.cursor() as cursor:
        for _ in range(500):
            cursor.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {mine} AND state <> 'idle'",
                           [application_name])  # fmt: skip
            if busy := cursor.fetchone()[0]:
                break
            time.sleep(0.01)
        terminate = "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
        cursor.execute(terminate + mine, [application_name])
        return cursor.fetchone()[0], busy


class Run:
    """The shop, the chain and the faults, driven from this one thread on a one-second clock."""

    def __init__(self, chain, groups: list[Group], receiver: Receiver, proxy: FlappingProxy, api_key: str) -> None:
        self.chain, self.groups, self.receiver, self.proxy = chain, groups, receiver, proxy
        self.alive = list(groups)
        self.api_key = api_key
        self.sessions: list[dict] = []
        self.kills: Counter[str] = Counter()
        self.terminated = 0
        self.in_transaction = 0  # of the terminated connections, those inside a statement or a transaction
        self.in_flight = 0  # deliveries claimed by whatever a fault cut off: duplicates they may explain
        self.cursor_samples = 0
        self._last_block = 0.0

    # --- the shop and the customers --------------------------------------------------------------------

    def checkout(self, n: int) -> None:
        """Create a session through the API of a live group (another on failure, same Idempotency-Key), and
        pay it from a customer's account."""
        body = {"amount": "10.00", "currency": "USD", "asset": "ETH", "network": "anvil", "reference": f"F-{n}",
                "success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/cart"}  # fmt: skip
        headers = {"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": f"faults-{n}"}
        for attempt in range(60):
            group = self.alive[(n + attempt) % len(self.alive)]
            try:
                response = requests.post(f"{group.url}/api/v1/sessions/", json=body, headers=headers, timeout=10)
            except requests.RequestException:
                continue
            if response.status_code in (200, 201):
                session = response.json()
                self.chain.send_eth(session["deposit_address"], int(session["amount_due"]), account_index=n % 4)
                self.sessions.append(session)
                return
            time.sleep(0.2)  # 409 (a retry while the first try still runs) or 5xx (its connection was cut)
        pytest.fail(f"no group created checkout {n}")

    def tick(self) -> None:
        """A block a second; check that the cursor is not behind any credited block."""
        if time.monotonic() - self._last_block >= 1:
            self.chain.mine(1)
            self._last_block = time.monotonic()
        cursor = ChainCursor.objects.filter(network="anvil").values_list("block_number", flat=True).first()
        credited = Transfer.objects.filter(network="anvil").aggregate(top=Max("block_number"))["top"]
        if credited is not None:
            assert cursor is not None and cursor >= credited, f"cursor {cursor} behind credited block {credited}"
        self.cursor_samples += 1

    # --- faults ------------------------------------------------------------------------------------------

    def kill_worker_mid_delivery(self) -> None:
        self.receiver.hold(1)
        wait_for(lambda: self.receiver.held, 60, "a webhook request to hold")
        held = self.receiver.held[0]
        pid = pid_of_client(held.peer_port, self.receiver.port)
        workers = {p: g for g in self.alive for p in g.services["cluster"].pids()}
        assert pid in workers, f"the held request came from pid {pid}, not a cluster worker"
        token = WebhookDelivery.objects.get(event_id=held.headers["webhook-id"]).claim_token
        self.in_flight += WebhookDelivery.objects.filter(claim_token=token, state=DeliveryState.PENDING).count() or 1
        os.kill(pid, signal.SIGKILL)
        self.kills["worker"] += 1
        self.receiver.release_held()

    def kill_scanner_mid_range(self) -> None:
        """``kill -9`` of whichever process scans: a ``--loop`` scanner, or the cluster worker running the network's
        follower (the cluster scans continuously too; its sentinel replaces the worker)."""
        head = self.chain.w3.eth.block_number  # no block is mined while this runs
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            scanners = {g.services["scanner"].pid: g for g in self.alive}
            followers = {pid for g in self.alive for pid in g.services["cluster"].pids()[1:]}
            owner, number = ChainCursor.objects.filter(network="anvil").values_list("lease_owner", "block_number")[0]
            pid = int(owner.split(":")[1]) if owner.count(":") >= 2 else None
            if pid in scanners and number < head:  # scanning, with blocks still to read: mid-range
                group = scanners[pid]
                self.kills["scanner"] += group.services["scanner"].kill()
                group.services["scanner"].start()  # a supervisor restarts it; the dead one's lease must run out
                return
            if pid in followers and number < head:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    self.kills["scanner"] += 1
                return
            time.sleep(0.01)
        pytest.fail("no scanner was seen holding the lease")

    def terminate_connections(self, group: Group) -> None:
        self.in_flight += WebhookDelivery.objects.filter(state=DeliveryState.PENDING).exclude(claim_token="").count()
        terminated, busy = terminate_connections(group.application_name)
        self.terminated += terminated
        self.in_transaction += busy

    def kill_group(self, group: Group) -> None:
        self.in_flight += WebhookDelivery.objects.filter(state=DeliveryState.PENDING).exclude(claim_token="").count()
        self.kills["group"] += group.kill()
        self.alive.remove(group)


@pytest.mark.parametrize("scanner", ["loop", "follower"])
def test_a_scanner_whose_database_connection_is_terminated_reconnects_and_scans_on(chain, settings, scanner):
    """``payments_gateway_scan --loop``, or the follower task a cluster runs per network (holding the lease), whose
    connections are cut replaces them and goes on, instead of failing until its lease runs out (2 minutes)."""
    settings.PAYMENTS_GATEWAY = gateway = {**settings.PAYMENTS_GATEWAY, "XPUB": TEST_XPUB,
                                           "NETWORKS": {"anvil": chain.network_settings(confirmations=2)}}  # fmt: skip
    scan_network("anvil")
    application_name = f"faults-{scanner}-{os.getpid()}"
    command = django_command("payments_gateway_scan", "--loop") if scanner == "loop" else django_command("qcluster")
    service = Service(scanner, command, child_env(gateway, Broker("orm"), application_name)).start()
    try:
        if scanner == "follower":
            async_task("payments_gateway.tasks.follow_networks")  # what the schedule does every minute
        for n in range(2):
            session = make_chain_session(asset="ETH", amount_due=10**15)
            chain.send_eth(session.address, 10**15)
            # Well within the lease's 2 minutes: only a scanner that recovered can have stored the second one.
            wait_for(lambda s=session: Transfer.objects.filter(session=s).exists(), 45, f"payment {n}", (service,))
            if n == 0:
                terminated, _ = terminate_connections(application_name)
                assert terminated >= 1
    finally:
        service.stop()
    if scanner == "loop":
        assert service.log().count("scan failed") <= 1  # the scan the termination cut off, then it went on


def test_two_groups_lose_and_double_nothing_when_processes_connections_and_rpc_fail(chain, settings):
    broker = redis_broker(REDIS_DB)
    proxy = FlappingProxy(int(chain.rpc_url.rsplit(":", 1)[1]), latency=0.05)
    proxy.on()
    network = chain.network_settings(confirmations=2) | {"rpc_urls": [proxy.url, chain.rpc_url], "rpc_timeout": 2}
    settings.PAYMENTS_GATEWAY = gateway = {
        **settings.PAYMENTS_GATEWAY,
        "XPUB": TEST_XPUB,
        "NETWORKS": {"anvil": network},
        "ALLOW_PRIVATE_WEBHOOK_URLS": True,
        "WEBHOOK_TIMEOUT": 5,
    }
    scan_network("anvil")  # the cursor starts at the head
    _, api_key = make_api_key()
    groups: list[Group] = []
    with Receiver() as receiver:
        make_endpoint(receiver.url())
        try:
            groups = [start_group(name, gateway, broker) for name in ("a", "b")]
            for group in groups:
                wait_http(group.url, group.services["web"], timeout=120)
            run = Run(chain, groups, receiver, proxy, api_key)
            a, b = groups
            faults = {
                2: proxy.off,
                4: run.kill_worker_mid_delivery,
                5: proxy.on,
                7: run.kill_scanner_mid_range,
                10: lambda: run.terminate_connections(b),
                13: proxy.off,
                16: proxy.on,
                18: lambda: run.kill_group(a),
            }
            started = time.monotonic()
            for n in range(PAYMENTS):
                run.checkout(n)
                if n in faults:
                    faults[n]()
                run.tick()
                time.sleep(max(0.0, started + n + 1 - time.monotonic()))

            services = tuple(s for g in run.alive for s in g.services.values())

            def settled() -> bool:
                run.tick()
                paid = CheckoutSession.objects.filter(status="complete").count() == PAYMENTS
                return paid and not WebhookDelivery.objects.exclude(state=DeliveryState.SUCCEEDED).exists()

            wait_for(settled, RECOVERY_TIMEOUT, "every payment credited and every event delivered", services)
        finally:
            for group in groups:
                for service in group.services.values():
                    service.stop()
            proxy.close()
            broker.lose_queued_tasks()
        received = list(receiver.requests)
        # The processes' own account of the flapping URL: each time it failed, they went on with the next URL.
        failovers = sum(s.log(tail=10**7).count("trying the next URL") for g in groups for s in g.services.values())

    # Every payment credited exactly once.
    sessions = CheckoutSession.objects.filter(uuid__in=[s["uuid"] for s in run.sessions])
    assert sessions.count() == PAYMENTS == len(run.sessions)
    for session in sessions:
        assert (session.payment_status, session.amount_received) == ("paid", session.amount_due), session.uuid
        assert session.transfers.count() == 1
        assert Event.objects.filter(session=session, type="payment.completed").count() == 1

    # Every event delivered at least once, every attempt with the event's id.
    events = set(Event.objects.filter(deliveries__isnull=False).values_list("id", flat=True))
    receipts = Counter(r.headers["webhook-id"] for r in received)
    for r in received:
        assert json.loads(r.body)["id"] == r.headers["webhook-id"]
    lost = events - set(receipts)
    assert not lost, f"never delivered: {sorted(lost)}"
    # A duplicate only where an attempt was cut off before its outcome was recorded.
    doubled = {event_id: count for event_id, count in receipts.items() if count > 1}
    unrecorded = 0
    for delivery in WebhookDelivery.objects.prefetch_related("attempt_log"):
        attempts = list(delivery.attempt_log.all())
        assert sum(a.success for a in attempts) == 1, f"{delivery.event_id}: not exactly one recorded success"
        unrecorded += max(0, receipts[delivery.event_id] - len(attempts))
    assert unrecorded <= run.in_flight, f"{unrecorded} unrecorded deliveries; the faults had {run.in_flight} in flight"

    # The cursor never behind a credited block (checked all along, and now); the flapping URL was failed over.
    run.tick()
    assert failovers >= 1
    REPORT.append(
        f"payments {PAYMENTS} (each credited once), events {len(events)}, webhook requests {len(received)}, "
        f"kills {sum(run.kills.values())} processes ({dict(run.kills)}), PostgreSQL connections terminated "
        f"{run.terminated} ({run.in_transaction} mid-statement or transaction), RPC flaps {proxy.flaps} "
        f"(failovers {failovers}), lost {len(lost)}, doubled {len(doubled)} "
        f"(unrecorded attempts {unrecorded}, in flight at the faults {run.in_flight}), "
        f"cursor checked {run.cursor_samples} times"
    )

"""End to end with the documented processes only: ``manage.py qcluster`` (real django-q2 workers, no scanner
process) on a dev chain that mines a block every second. The schedule starts a follower per network, the
follower holds the network's lease and scans at each new head (by WebSocket from anvil), so the payment is stored
and its confirmations advance with the blocks. Assertions are on stored state and the order of events, never on
timings (the latency is measured by bench/live.py)."""

from __future__ import annotations

import os

import pytest
from django.test import override_settings
from django_q.models import Task

from payments_gateway.chain.devchain import start_devchain
from payments_gateway.models import ChainCursor, Event, Transfer
from payments_gateway.schedules import ensure_schedules
from tests.factories import TEST_XPUB, make_chain_session
from tests.processes import start, stop
from tests.test_follower import refreshed, wait_for


@pytest.fixture(scope="module")
def timed_chain():
    """A dev chain of its own that mines a block every second, like a real network."""
    chain = start_devchain(block_time=1)
    try:
        yield chain
    finally:
        chain.stop()


@pytest.mark.django_db(transaction=True)
def test_with_only_qcluster_a_payment_is_stored_and_confirmed_as_blocks_arrive(timed_chain, settings, tmp_path):
    chain = timed_chain
    ws_url = chain.rpc_url.replace("http://", "ws://")
    gateway = settings.PAYMENTS_GATEWAY | {
        "XPUB": TEST_XPUB,
        "NETWORKS": {
            "anvil": chain.network_settings(confirmations=2, ws_url=ws_url),
            # A network whose node is down has its own follower, failing on its own: it delays nothing else.
            "dead": chain.network_settings(rpc_urls=["http://127.0.0.1:1"], ws_url="ws://127.0.0.1:1"),
        },
    }
    with override_settings(PAYMENTS_GATEWAY=gateway):
        ensure_schedules()  # as `migrate` does (the test database is emptied between tests)
        session = make_chain_session(asset="USDC", amount_due=7_000_000)
        cluster = start(["manage.py", "qcluster"], gateway, tmp_path / "qcluster.log")
        try:
            # The schedule starts the follower: a worker holds the lease and the cursor follows the head.
            wait_for(lambda: ChainCursor.objects.filter(network="anvil", block_number__gte=0).exclude(lease_owner="")
                     .exists(), timeout=120)  # fmt: skip
            chain.send_token("USDC", session.address, 7_000_000)
            wait_for(lambda: refreshed(session).payment_status in ("pending", "paid"))
            wait_for(lambda: refreshed(session).payment_status == "paid")
            first_owner = ChainCursor.objects.get(network="anvil").lease_owner
            # A follower runs for its budget, then its successor (queued before it ends) holds the lease.
            wait_for(lambda: Task.objects.filter(name="follow anvil", success=True).exists())
            wait_for(lambda: ChainCursor.objects.get(network="anvil").lease_owner not in ("", first_owner))
        finally:
            stop(cluster)
            log = (tmp_path / "qcluster.log").read_text(errors="replace")
    cursor = ChainCursor.objects.get(network="anvil")
    owner_pid = int(cursor.lease_owner.split(":")[1]) if cursor.lease_owner else None
    assert owner_pid != os.getpid(), "the scanning was done by a qcluster worker, not by this test"
    transfer = Transfer.objects.get(session=session)
    assert (transfer.status, transfer.amount) == ("confirmed", 7_000_000)
    # Stored at its block, then confirmed by a later one: detected before confirmed, pending before completed.
    types = list(Event.objects.order_by("created", "pk").values_list("type", flat=True))
    assert types.index("transaction.detected") < types.index("transaction.confirmed")
    assert types.index("payment.pending") < types.index("payment.completed")
    assert "Traceback" not in log, log[-3000:]
    finished = [task.result for task in Task.objects.filter(name="follow anvil", success=True)]
    assert finished and all(r["status"] == "followed" and r["heads"] == "ws" for r in finished), finished
    assert "RPCUnavailable" in ChainCursor.objects.get(network="dead").last_error

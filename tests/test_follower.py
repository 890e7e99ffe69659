"""Continuous scanning (scanning/follow.py, chain/heads.py): a follower per network scans at every new head,
from a WebSocket subscription where the network has a ``ws_url`` (anvil serves one on its HTTP port), by polling
otherwise or when the WebSocket refuses, drops or sends garbage (each logged); one follower per network (the
lease). The end-to-end test with real ``qcluster`` processes is tests/test_follower_cluster.py."""

from __future__ import annotations

import logging
import threading

import pytest
from django.core.management import call_command

from payments_gateway.chain.heads import Heads
from payments_gateway.chain.rpc import client_for
from payments_gateway.conf import gateway_settings
from payments_gateway.models import ChainCursor, Event
from payments_gateway.scanning import lease as leases
from payments_gateway.scanning.follow import follow_network, unfollowed_networks
from tests.factories import make_chain_session
from tests.ws_servers import BadWebSocket

pytestmark = pytest.mark.django_db(transaction=True)


def ws_of(chain) -> str:
    return chain.rpc_url.replace("http://", "ws://")


def heads_for(chain, use_networks, **extra) -> Heads:
    use_networks(anvil=chain.network_settings(**extra))
    network = gateway_settings.network("anvil")
    return Heads(network, client_for(network))


def mine_soon(chain, blocks: int = 1, after: float = 0.5) -> threading.Timer:
    timer = threading.Timer(after, chain.mine, args=[blocks])
    timer.start()
    return timer


def test_new_heads_arrive_by_websocket_subscription_on_anvil(chain, use_networks):
    heads = heads_for(chain, use_networks, ws_url=ws_of(chain))
    head = int(chain.rpc("eth_blockNumber"), 16)
    try:
        assert heads.wait(head, timeout=1) is None  # nothing new yet; the subscription is open
        assert heads.mode == "ws"
        mine_soon(chain)
        assert heads.wait(head, timeout=30) == head + 1
        assert heads.mode == "ws"
    finally:
        heads.close()


@pytest.mark.parametrize("mode", ["refuse", "drop", "garbage", "error"])
def test_a_broken_websocket_falls_back_to_polling_with_a_log_line(chain, use_networks, caplog, mode):
    server = None if mode == "refuse" else BadWebSocket(mode)
    url = server.url if server else "ws://127.0.0.1:1/v3/SECRET-KEY"
    heads = heads_for(chain, use_networks, ws_url=url)
    head = int(chain.rpc("eth_blockNumber"), 16)
    try:
        with caplog.at_level(logging.WARNING, logger="payments_gateway.chain.heads"):
            mine_soon(chain)
            assert heads.wait(head, timeout=30) == head + 1  # found by polling the HTTP RPC
        assert heads.mode == "poll-fallback"
        (line,) = [r.getMessage() for r in caplog.records if "polling for new heads" in r.getMessage()]
        assert "network 'anvil': WebSocket ws://127.0.0.1:" in line
        assert "SECRET-KEY" not in line  # a provider's path holds its API key
    finally:
        heads.close()
        if server:
            server.close()


def test_without_ws_url_heads_are_polled(chain, use_networks):
    heads = heads_for(chain, use_networks)
    head = int(chain.rpc("eth_blockNumber"), 16)
    mine_soon(chain, 2)
    assert heads.wait(head, timeout=30) in (head + 1, head + 2)
    assert heads.mode == "poll"


@pytest.mark.parametrize("ws", [True, False], ids=["websocket", "polling"])
def test_a_follower_stores_the_payment_and_counts_confirmations_as_blocks_arrive(anvil_settings, chain,
                                                                                 use_networks, ws):  # fmt: skip
    use_networks(anvil=chain.network_settings(confirmations=2, **({"ws_url": ws_of(chain)} if ws else {})))
    session = make_chain_session(asset="USDC", amount_due=5_000_000)
    outcome = {}
    follower = threading.Thread(target=lambda: outcome.update(result=follow_network("anvil", seconds=6)))
    follower.start()
    try:
        wait_for(lambda: ChainCursor.objects.filter(network="anvil", block_number__gte=0).exists())
        assert unfollowed_networks() == []  # the follower holds the lease
        assert follow_network("anvil", seconds=5).status == "busy"  # a second follower leaves at once
        chain.send_token("USDC", session.address, 5_000_000)
        wait_for(lambda: refreshed(session).payment_status == "pending")
        chain.mine()  # the second confirmation arrives with the next block, no scan asked for
        wait_for(lambda: refreshed(session).payment_status == "paid")
    finally:
        follower.join()
    assert outcome["result"].status == "followed"
    assert outcome["result"].heads_by == ("ws" if ws else "poll")
    types = list(Event.objects.order_by("created", "pk").values_list("type", flat=True))
    assert types.index("payment.pending") < types.index("payment.completed")
    assert unfollowed_networks() == ["anvil"]  # the lease was given back


def test_a_follower_whose_lease_was_taken_over_stops(anvil_settings, chain, use_networks):
    use_networks(anvil=chain.network_settings())
    call_command("payments_gateway_scan", "--once")
    outcome = {}
    follower = threading.Thread(target=lambda: outcome.update(result=follow_network("anvil", seconds=30)))
    follower.start()
    wait_for(lambda: not leases.is_free("anvil"))
    ChainCursor.objects.filter(network="anvil").update(lease_owner="another-host:1:abc")  # taken over
    chain.mine()
    follower.join(timeout=60)
    assert outcome["result"].status == "lost"
    assert ChainCursor.objects.get(network="anvil").lease_owner == "another-host:1:abc"


def refreshed(session):
    session.refresh_from_db()
    return session


def wait_for(condition, timeout: float = 60) -> None:
    """Poll ``condition`` (the state a user would see) until it holds; fail after ``timeout`` s (not a timing
    assertion: a generous bound against a hang)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {timeout} s: {condition}")
        time.sleep(0.1)


def test_fewer_workers_than_networks_plus_one_is_warning_w003(settings, use_networks, chain):
    from django.core.checks import run_checks

    use_networks(anvil=chain.network_settings(), other=chain.network_settings())
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 2}
    (warning,) = [m for m in run_checks(tags=["payments_gateway"]) if m.id == "payments_gateway.W003"]
    assert "Q_CLUSTER['workers'] is 2, fewer than the 2 networks + 1" in warning.msg
    assert "at least 3" in warning.hint
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 3}
    assert not [m for m in run_checks(tags=["payments_gateway"]) if m.id == "payments_gateway.W003"]

"""RPC failover, backoff and the chain-id check, with real local HTTP servers in front of anvil."""

from __future__ import annotations

import pytest

from payments_gateway.chain.rpc import ChainIdMismatch, RPCUnavailable, client_for
from payments_gateway.conf import gateway_settings
from payments_gateway.models import ChainCursor, Transfer
from payments_gateway.scanning import ScanError, scan_network
from payments_gateway.schedules import ensure_schedules
from payments_gateway.tasks import scan_all_networks
from tests.factories import make_chain_session
from tests.http_receiver import closed_port

pytestmark = pytest.mark.django_db


def dead_url() -> str:
    return f"http://127.0.0.1:{closed_port()}"  # nothing listens there


def test_throttled_failing_and_garbage_urls_fail_over_to_a_good_one(chain, fake_rpc, use_networks):
    throttled, failing, garbage = fake_rpc("429"), fake_rpc("500"), fake_rpc("garbage")
    urls = [throttled.url, failing.url, garbage.url, chain.rpc_url]
    use_networks(anvil=chain.network_settings(rpc_urls=urls))
    session = make_chain_session(asset="USDC", amount_due=1_000_000)
    chain.send_token("USDC", session.address, 1_000_000)
    chain.mine(1)
    result = scan_network("anvil")
    assert result.status == "scanned"
    assert Transfer.objects.get().amount == 1_000_000
    assert (throttled.hits, failing.hits, garbage.hits) == (1, 1, 1)
    # They are backing off now: the next scans go straight to the good URL.
    chain.mine(1)
    scan_network("anvil")
    assert (throttled.hits, failing.hits, garbage.hits) == (1, 1, 1)
    session.refresh_from_db()
    assert session.payment_status == "paid"


def test_a_url_that_times_out_is_skipped(chain, fake_rpc, use_networks):
    slow = fake_rpc("sleep")
    use_networks(anvil=chain.network_settings(rpc_urls=[slow.url, chain.rpc_url], rpc_timeout="0.3"))
    client = client_for(gateway_settings.network("anvil"))
    assert int(client.call("eth_blockNumber"), 16) == chain.w3.eth.block_number
    assert slow.hits == 1


def test_a_wrong_chain_id_is_refused_naming_url_and_ids(anvil_settings, chain, use_networks):
    use_networks(anvil=chain.network_settings(chain_id=1, dev=False))
    with pytest.raises(ChainIdMismatch) as exc:
        scan_network("anvil")
    message = str(exc.value)
    assert chain.rpc_url in message
    assert "31337" in message and "chain id 1" in message
    cursor = ChainCursor.objects.get(network="anvil")
    assert cursor.block_number == -1  # nothing scanned from the wrong chain
    assert "ChainIdMismatch" in cursor.last_error and chain.rpc_url in cursor.last_error
    assert cursor.lease_owner == ""


def test_a_url_of_another_chain_is_skipped_for_the_right_one(chain, fake_rpc, caplog, use_networks):
    other = fake_rpc("chain", chain_id=1)
    use_networks(anvil=chain.network_settings(rpc_urls=[other.url, chain.rpc_url]))
    assert scan_network("anvil").status == "scanned"
    assert f"RPC URL {other.url} serves chain id 1, but the network expects chain id 31337" in caplog.text


def test_every_url_down_is_a_clear_error_and_keeps_the_cursor(anvil_settings, chain, fake_rpc, use_networks):
    scan_network("anvil")
    cursor = ChainCursor.objects.get(network="anvil")
    down, garbage = dead_url(), fake_rpc("garbage")
    use_networks(anvil=chain.network_settings(rpc_urls=[down, garbage.url]))
    with pytest.raises(RPCUnavailable) as exc:
        scan_network("anvil")
    assert down in str(exc.value) and "connection error" in str(exc.value)
    assert garbage.url in str(exc.value) and "not JSON" in str(exc.value)
    with pytest.raises(RPCUnavailable, match="every RPC URL is backing off"):
        scan_network("anvil")
    after = ChainCursor.objects.get(network="anvil")
    assert (after.block_number, after.block_hash) == (cursor.block_number, cursor.block_hash)
    assert "RPCUnavailable" in after.last_error


def test_a_dead_network_never_stalls_the_others(chain, use_networks):
    dead = chain.network_settings(rpc_urls=[dead_url()])
    use_networks(anvil=chain.network_settings(), dead=dead)
    session = make_chain_session(asset="ETH", amount_due=10**18)
    chain.send_eth(session.address, 10**18)
    first = scan_all_networks()
    chain.mine(1)
    second = scan_all_networks()
    assert first["dead"].startswith("error: ") and second["dead"].startswith("error: ")
    assert second["anvil"]["status"] == "scanned"
    session.refresh_from_db()
    assert (session.status, session.payment_status) == ("complete", "paid")
    assert "RPCUnavailable" in ChainCursor.objects.get(network="dead").last_error
    assert ChainCursor.objects.get(network="anvil").last_error == ""


def test_schedules_are_created_once_and_the_minute_scan_is_retired():
    from django_q.models import Schedule

    # A database of an earlier version scanned once a minute; followers (scanning/follow.py) replace it.
    Schedule.objects.create(name="payments_gateway.scan_all_networks", func="payments_gateway.tasks.scan_all_networks",
                            schedule_type="I", minutes=1, repeats=-1)  # fmt: skip
    ensure_schedules()  # already run by post_migrate; running again changes nothing
    ensure_schedules()
    schedule = Schedule.objects.get(name="payments_gateway.follow_networks")
    assert schedule.func == "payments_gateway.tasks.follow_networks"
    assert schedule.repeats == -1
    assert not Schedule.objects.filter(func="payments_gateway.tasks.scan_all_networks").exists()


def test_a_node_answering_nonsense_is_a_clear_error_and_keeps_the_cursor(anvil_settings, chain, fake_rpc, use_networks):
    scan_network("anvil")
    before = ChainCursor.objects.values_list("block_number", "block_hash").get(network="anvil")
    nonsense = fake_rpc("chain")  # right chain id, but every method answers that same number
    bad = chain.network_settings(rpc_urls=[nonsense.url])
    use_networks(anvil=bad)
    with pytest.raises(ScanError, match="the RPC answered something malformed"):
        scan_network("anvil")
    cursor = ChainCursor.objects.get(network="anvil")
    assert (cursor.block_number, cursor.block_hash) == before
    assert "malformed" in cursor.last_error
    assert Transfer.objects.count() == 0


def test_log_queries_grow_with_address_chunks_only_and_split_refused_ranges(chain, fake_rpc, use_networks):
    proxy = fake_rpc("proxy", upstream=chain.rpc_url, max_log_range=3)
    settings_ = chain.network_settings(rpc_urls=[proxy.url], address_chunk=2, max_block_range=8)
    use_networks(anvil=settings_)
    sessions = [make_chain_session(asset="DAI", amount_due=10**18) for _ in range(5)]
    scan_network("anvil")
    for s in sessions:
        chain.send_token("DAI", s.address, 10**18)
    chain.mine(3)  # 8 new blocks: one range
    proxy.methods.clear()
    scan_network("anvil")
    # 5 addresses in chunks of 2 → 3 queries per block range; the node refused 8 blocks, so the range was
    # split in halves of 4 and then 2: 3 + 2×3 + 4×3 queries, never one per address per block.
    assert proxy.methods.count("eth_getLogs") == 3 + 6 + 12
    assert Transfer.objects.filter(asset="DAI").count() == 5

    proxy.methods.clear()
    chain.send_token("DAI", sessions[0].address, 1)
    scan_network("anvil")  # one new block: 3 queries for 5 addresses
    assert proxy.methods.count("eth_getLogs") == 3


def test_web3_for_skips_a_dead_url(chain, use_networks):
    from payments_gateway.chain.rpc import web3_for

    use_networks(anvil=chain.network_settings(rpc_urls=[dead_url(), chain.rpc_url]))
    w3 = web3_for(gateway_settings.network("anvil"))
    assert w3.eth.chain_id == 31337
    assert w3.provider.endpoint_uri == chain.rpc_url

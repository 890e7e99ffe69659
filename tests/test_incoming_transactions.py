"""The built-in ``transactions`` source on the anvil dev chain: a notice is a hint to check the chain now.

The chain stays the source of truth: an unsigned notice, a signed notice for a transaction that does not exist,
and a signed notice that overstates a payment change nothing the chain does not justify, while a true notice
makes the session advance at once, before any scan.
"""

import json

import pytest
from django.conf import settings as django_settings
from django.test import override_settings

from payments_gateway.chain import rpc
from payments_gateway.models import ChainCursor, Transfer, WebhookEvent, WebhookEventStatus, WebhookRequest
from payments_gateway.scanning import scan_network
from tests.factories import fresh_address, make_chain_session

from . import incoming_helpers as h

pytestmark = pytest.mark.django_db
SECRET = h.PARTNER_SECRET
USDC = 2_000_000


@pytest.fixture(autouse=True)
def transactions_source(anvil_settings, chain):
    config = {**django_settings.PAYMENTS_GATEWAY, "WEBHOOK_SOURCES": {"transactions": {"scheme": "standard",
              "secrets": [SECRET]}}}  # fmt: skip
    with override_settings(PAYMENTS_GATEWAY=config):
        scan_network("anvil")  # the scanner is up to date before the test's payments
        yield


@pytest.fixture
def notify(client, sync_tasks, django_capture_on_commit_callbacks):
    """POST a transaction notice to /webhooks/transactions/ (signed unless told otherwise); the response."""
    counter = iter(range(1, 1000))

    def notify(tx_hash, address, *, kind="transaction.confirmed", signed=True, network="anvil", **data):
        body = json.dumps({
            "id": f"evt_notice_{next(counter)}",
            "type": kind,
            "data": {"network": network, "tx_hash": tx_hash, "address": address, **data},
        }).encode()  # fmt: skip
        headers = h.standard_headers(body, SECRET) if signed else {}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/webhooks/transactions/", data=body, content_type="application/json", headers=headers)

    return notify


def refreshed(session):
    session.refresh_from_db()
    return session


def scanner_position():
    return ChainCursor.objects.get(network="anvil").block_number


def test_a_true_notice_advances_the_session_before_the_next_scan(chain, notify):
    session = make_chain_session(asset="USDC", amount_due=USDC)
    cursor = scanner_position()
    tx_hash = chain.send_token("USDC", session.address, USDC)
    chain.mine(1)  # 2 confirmations
    assert refreshed(session).payment_status == "unpaid"  # nothing has looked at the chain yet

    response = notify(tx_hash, session.address)

    assert response.status_code == 202
    session = refreshed(session)
    assert (session.status, session.payment_status, session.amount_received) == ("complete", "paid", USDC)
    (transfer,) = Transfer.objects.filter(session=session)
    assert (transfer.tx_hash, transfer.amount, transfer.status) == (tx_hash, USDC, "confirmed")
    assert scanner_position() == cursor  # no scan ran: the hint did it
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEventStatus.PROCESSED and tx_hash in event.result

    # The next scan finds the same payment and counts it once.
    scan_network("anvil")
    assert Transfer.objects.count() == 1 and refreshed(session).amount_received == USDC


def test_a_detected_notice_shows_the_payment_pending_at_once(chain, notify):
    session = make_chain_session(asset="ETH", amount_due=10**17)
    tx_hash = chain.send_eth(session.address, 10**17)  # 1 confirmation of 2
    assert notify(tx_hash, session.address, kind="transaction.detected").status_code == 202
    session = refreshed(session)
    assert (session.payment_status, session.amount_pending) == ("pending", 10**17)
    # Confirmations of a transfer already known are counted by the scan.
    chain.mine(1)
    scan_network("anvil")
    assert refreshed(session).payment_status == "paid"


def test_an_unsigned_or_badly_signed_notice_changes_nothing(chain, notify, client):
    session = make_chain_session(asset="USDC", amount_due=USDC)
    tx_hash = chain.send_token("USDC", session.address, USDC)
    chain.mine(1)

    assert notify(tx_hash, session.address, signed=False).status_code == 400
    data = {"network": "anvil", "tx_hash": tx_hash, "address": session.address}
    body = json.dumps({"id": "evt_forged", "type": "transaction.confirmed", "data": data}).encode()
    forged = h.standard_headers(body, "whsec_" + "Zm9yZ2VkLXNlY3JldC1mb3JnZWQtc2VjcmV0LTEyMzQ=")
    response = client.post("/webhooks/transactions/", data=body, content_type="application/json", headers=forged)
    assert response.status_code == 401

    assert refreshed(session).payment_status == "unpaid"
    assert not Transfer.objects.exists() and not WebhookEvent.objects.exists()
    assert WebhookRequest.objects.filter(valid=False).count() == 2


def test_a_signed_notice_for_a_transaction_that_does_not_exist_changes_nothing(chain, notify):
    session = make_chain_session(asset="USDC", amount_due=USDC)

    response = notify("0x" + "ab" * 32, session.address, amount=str(USDC), asset="USDC")

    assert response.status_code == 202  # stored (it is signed), then checked against the chain
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEventStatus.PROCESSED and event.result.endswith("[]")
    assert refreshed(session).payment_status == "unpaid" and not Transfer.objects.exists()


def test_a_signed_notice_with_a_wrong_amount_counts_only_what_the_chain_says(chain, notify):
    session = make_chain_session(asset="USDC", amount_due=USDC)
    tx_hash = chain.send_token("USDC", session.address, USDC // 4)  # a quarter of the price
    chain.mine(1)

    assert notify(tx_hash, session.address, amount=str(USDC), asset="USDC").status_code == 202

    session = refreshed(session)
    assert session.payment_status == "partially_paid" and session.status == "open"
    assert session.amount_received == USDC // 4
    assert Transfer.objects.get().amount == USDC // 4


def test_a_signed_notice_naming_our_address_for_someone_elses_payment_changes_nothing(chain, notify):
    session = make_chain_session(asset="USDC", amount_due=USDC)
    tx_hash = chain.send_token("USDC", fresh_address(), USDC)  # a real payment, to an address that is not ours
    chain.mine(1)

    assert notify(tx_hash, session.address, amount=str(USDC)).status_code == 202

    assert refreshed(session).payment_status == "unpaid" and not Transfer.objects.exists()


def test_a_reverted_transaction_changes_nothing(chain, notify):
    session = make_chain_session(asset="USDC", amount_due=USDC)
    usdc = chain.token("USDC")
    failed = usdc.functions.transfer(session.address, 10**30).transact({"from": chain.accounts[1], "gas": 200_000})
    assert chain.w3.eth.wait_for_transaction_receipt(failed)["status"] == 0

    assert notify(failed.to_0x_hex(), session.address, kind="transaction.failed").status_code == 202

    assert refreshed(session).payment_status == "unpaid" and not Transfer.objects.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"network": "mainnet"}, "network 'mainnet' is not configured here (configured: anvil)"),
        ({"tx_hash": "0x1234"}, "tx_hash must be a 0x-prefixed 32-byte hex transaction hash"),
        ({"address": "nobody"}, "address must be a 0x-prefixed 20-byte hex address"),
        ({"kind": "payment.completed"}, "type must be one of transaction.detected"),
    ],
)
def test_a_malformed_notice_is_400_and_not_stored(notify, change, message):
    arguments = {"tx_hash": "0x" + "cd" * 32, "address": fresh_address()} | change
    response = notify(arguments.pop("tx_hash"), arguments.pop("address"), **arguments)
    assert response.status_code == 400 and message in response.json()["error"]
    assert not WebhookEvent.objects.exists()


def test_an_unreachable_chain_leaves_the_notice_failed_for_a_retry(chain, notify, settings):
    session = make_chain_session(asset="USDC", amount_due=USDC)
    tx_hash = chain.send_token("USDC", session.address, USDC)
    chain.mine(1)
    down = {**settings.PAYMENTS_GATEWAY}
    down["NETWORKS"] = {"anvil": {**chain.network_settings(), "rpc_urls": ["http://127.0.0.1:9"], "rpc_timeout": 1}}
    with override_settings(PAYMENTS_GATEWAY=down):
        assert notify(tx_hash, session.address).status_code == 202
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEventStatus.FAILED and event.next_attempt_at is not None
    assert refreshed(session).payment_status == "unpaid"

    # The chain is back: the retry does what the notice asked for.
    from payments_gateway.webhooks.incoming.processing import retry_due_events

    rpc.reset_backoff()
    assert retry_due_events(now=event.next_attempt_at) == 1
    assert refreshed(session).payment_status == "paid"

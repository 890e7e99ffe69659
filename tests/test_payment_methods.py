"""The customer chooses how to pay: sessions offering several payment methods, the choice (quote locked, address
allocated, in one transaction), switching until a payment is seen, and what the API and the events say."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from payments_gateway.deposits import allocate_address
from payments_gateway.models import CheckoutSession, DepositAddress, Event
from payments_gateway.scanning.store import match_session
from payments_gateway.scanning.watched import Watched
from payments_gateway.services.methods import choose_payment_method, offers
from payments_gateway.services.payloads import describe_session, session_payload
from payments_gateway.services.payments import refresh_session
from payments_gateway.services.sessions import create_session

from .factories import TEST_NETWORK, make_choosing_session, make_session, make_transfer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]
OTHER = TEST_NETWORK | {"chain_id": 8453, "display_name": "Other chain"}


@pytest.fixture
def two_networks(use_networks):
    use_networks(test=TEST_NETWORK, other=OTHER)


def new(**kwargs):
    return create_session(**{"amount": "30.00", "currency": "USD"} | kwargs)


def methods(session):
    return [(m["network"], m["asset"]) for m in session.payment_methods]


def snapshot(session):
    """What a refused choice must leave as it was."""
    session.refresh_from_db()
    return (session.network, session.asset, session.amount_due, session.quote_rate, session.deposit_address_id,
            DepositAddress.objects.count(), Event.objects.count())  # fmt: skip


# --- creating ---------------------------------------------------------------------------------------------------


def test_without_network_and_asset_the_customer_chooses_among_everything_configured(two_networks):
    session = new()
    assert methods(session) == [("test", "ETH"), ("test", "USDC"), ("other", "ETH"), ("other", "USDC")]
    assert (session.network, session.asset, session.amount_due, session.deposit_address) == ("", "", None, None)
    assert not session.method_chosen and not DepositAddress.objects.exists()
    created = Event.objects.get(type="payment.created", session=session).data
    assert (created["network"], created["deposit_address"], created["amount_due"]) == (None, None, None)
    assert [m["network"] for m in created["payment_methods"]] == ["test", "test", "other", "other"]


def test_only_a_network_or_only_an_asset_offers_what_matches(two_networks):
    assert methods(new(network="other")) == [("other", "ETH"), ("other", "USDC")]
    assert methods(new(asset="USDC")) == [("test", "USDC"), ("other", "USDC")]


def test_listed_payment_methods_are_offered_in_their_order(two_networks):
    session = new(payment_methods=[{"network": "other", "asset": "USDC"}, {"network": "test", "asset": "ETH"}])
    assert methods(session) == [("other", "USDC"), ("test", "ETH")] and session.deposit_address is None


def test_a_single_method_is_chosen_at_creation_as_before():
    session = new(payment_methods=[{"network": "test", "asset": "USDC"}])
    assert (session.network, session.asset, session.amount_due) == ("test", "USDC", 30_000_000)
    assert session.deposit_address is not None and methods(session) == [("test", "USDC")]
    fixed = new(network="test", asset="ETH")
    assert methods(fixed) == [("test", "ETH")] and fixed.amount_due == 10**16
    assert session.deposit_address_id != fixed.deposit_address_id  # each its own new address


def test_pairs_without_a_rate_are_left_out_unless_the_merchant_named_them(settings):
    settings.PAYMENTS_GATEWAY = settings.PAYMENTS_GATEWAY | {
        "RATE_PROVIDER_OPTIONS": {"rates": {"ETH": {"EUR": "2800"}}}
    }
    # USDC has no EUR rate: of "everything", only ETH remains, so it is chosen at once.
    only_eth = new(currency="EUR")
    assert methods(only_eth) == [("test", "ETH")] and only_eth.asset == "ETH"
    with pytest.raises(ValidationError) as excinfo:
        new(currency="EUR", payment_methods=[{"network": "test", "asset": "ETH"}, {"network": "test", "asset": "USDC"}])
    assert "USDC on test: no USDC/EUR rate" in excinfo.value.message_dict["payment_methods"][0]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"network": "test", "asset": "USDC", "payment_methods": [{"network": "test", "asset": "ETH"}]},
         "payment_methods", "not both"),
        ({"payment_methods": []}, "payment_methods", "must be a list like"),
        ({"payment_methods": "test:USDC"}, "payment_methods", "must be a list like"),
        ({"payment_methods": [{"network": "test"}]}, "payment_methods", "item 1 must be an object with exactly"),
        ({"payment_methods": [{"network": "test", "asset": "USDC"}, {"network": "mars", "asset": "ETH"}]},
         "payment_methods", "item 2: unknown network 'mars'"),
        ({"payment_methods": [{"network": "test", "asset": "DOGE"}]}, "payment_methods",
         "item 1: unknown asset 'DOGE' on network 'test'"),
        ({"payment_methods": [{"network": "test", "asset": "ETH"}] * 2}, "payment_methods",
         "item 2 repeats ETH on test"),
        ({"asset": "DOGE"}, "asset", "'DOGE' is not configured on any configured network"),
        ({"network": "mars"}, "network", "unknown network 'mars'"),
    ],
)  # fmt: skip
def test_bad_payment_methods_are_named_and_nothing_is_written(fields, field, message):
    with pytest.raises(ValidationError) as excinfo:
        new(**fields)
    assert message in " ".join(excinfo.value.message_dict[field])
    assert not CheckoutSession.objects.exists() and not Event.objects.exists()


# --- choosing ----------------------------------------------------------------------------------------------------


def test_choosing_locks_the_quote_the_chooser_showed_and_allocates_the_address():
    session = new()
    shown = {o.method.key: o.quote.amount for o in offers(session)}
    assert shown == {"test:ETH": 10**16, "test:USDC": 30_000_000}
    events = Event.objects.count()
    choose_payment_method(session, "test", "ETH", expected_amount=10**16)
    assert (session.network, session.asset, session.amount_due) == ("test", "ETH", 10**16)
    assert (session.quote_rate, session.quote_source) == (Decimal(3000), "fixed")
    assert session.deposit_address.address == "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"  # index 0 of the xpub
    assert session.deposit_address.busy_until == session.expires_at + timedelta(hours=24)
    assert Event.objects.count() == events  # no event for a choice; the next payment event carries it
    assert describe_session(session)["payment_uri"].startswith("ethereum:0x9858EfFD232B4033E47d90003D41EC34EcaEda94@")


def test_switching_asset_on_the_same_network_keeps_the_address():
    session = new()
    choose_payment_method(session, "test", "ETH")
    address = session.deposit_address_id
    choose_payment_method(session, "test", "USDC")
    assert (session.asset, session.amount_due, session.deposit_address_id) == ("USDC", 30_000_000, address)
    assert DepositAddress.objects.count() == 1


def test_switching_network_takes_a_new_address_and_never_frees_the_old_one(two_networks):
    session = new()
    choose_payment_method(session, "test", "USDC")
    old = session.deposit_address
    choose_payment_method(session, "other", "USDC")
    assert session.deposit_address.network == "other" and session.deposit_address_id != old.pk
    old.refresh_from_db()
    assert old.busy_until == session.expires_at + timedelta(hours=24)  # still watched every block for this customer
    assert old.made_for_id == session.pk  # and still tied to this session, which now holds the new one
    # Another session on "test", even an hour after this one expired, gets a new address, not the old one.
    with transaction.atomic():
        later = session.expires_at + timedelta(hours=1)
        assert allocate_address("test", later + timedelta(hours=48), now=later).pk != old.pk


def test_no_switching_once_a_payment_was_seen_and_nothing_changes():
    session = new()
    choose_payment_method(session, "test", "USDC")
    make_transfer(session, 1_000_000)
    refresh_session(session.pk)
    before = snapshot(session)
    with pytest.raises(ValidationError) as excinfo:
        choose_payment_method(session, "test", "ETH")
    assert "already sent to this checkout" in excinfo.value.messages[0]
    assert excinfo.value.error_dict["payment_method"][0].code == "payment_seen"
    assert snapshot(session) == before


@pytest.mark.parametrize(
    ("network", "asset", "expected", "message"),
    [
        ("test", "DAI", None, "DAI on test is not a payment method of this checkout."),
        ("mars", "ETH", None, "ETH on mars is not a payment method of this checkout."),
        ("test", "ETH", 10**16 - 1, "The price in ETH changed to 0.01 ETH. Please check it and choose again."),
    ],
)
def test_a_method_not_offered_or_a_price_not_shown_changes_nothing(network, asset, expected, message):
    session = new()
    before = snapshot(session)
    with pytest.raises(ValidationError) as excinfo:
        choose_payment_method(session, network, asset, expected_amount=expected)
    assert excinfo.value.messages == [message]
    assert snapshot(session) == before


def test_a_closed_session_cannot_choose():
    session = make_choosing_session(status="expired")
    with pytest.raises(ValidationError, match="no longer open"):
        choose_payment_method(session, "test", "USDC")
    assert snapshot(session)[:5] == ("", "", None, None, None)


def test_a_session_still_choosing_holds_no_address_and_an_expired_session_s_address_is_never_handed_out_again():
    # Addresses are never reused (DESIGN: "never given to a second session"): a session still choosing has none,
    # and the next allocation takes a new index even when an old address has long been idle.
    choosing = make_choosing_session()
    expired = make_session(expires_at=timezone.now() - timedelta(days=3), status="expired")
    DepositAddress.objects.filter(pk=expired.deposit_address_id).update(busy_until=timezone.now() - timedelta(days=1))
    with transaction.atomic():
        fresh = allocate_address("test", timezone.now() + timedelta(hours=48))
    assert choosing.deposit_address_id is None
    assert fresh.pk != expired.deposit_address_id and fresh.index > expired.deposit_address.index


def test_a_payment_to_the_address_switched_away_from_is_this_session_s_unmatched_wrong_asset(two_networks, client):
    session = new()
    choose_payment_method(session, "test", "USDC")
    old = session.deposit_address
    choose_payment_method(session, "other", "USDC")
    # The scanner ties a payment to the old address to the session it was made for, though the session now holds
    # another address (and no other session ever gets this one).
    assert match_session(Watched(old.pk, old.address), timezone.now()) == (session.pk, False)
    stray = make_transfer(session, 30_000_000, status="confirmed", network="test", to_address=old.address,
                          deposit_address=old)  # fmt: skip
    session = refresh_session(session.pk)
    stray.refresh_from_db()
    assert (session.status, session.payment_status) == ("open", "unpaid")
    assert (stray.reason, stray.resolution) == ("wrong_asset", "open")
    unmatched = Event.objects.get(type="transaction.unmatched", session=session).data
    assert (unmatched["id"], unmatched["reason"], unmatched["network"]) == (stray.pk, "wrong_asset", "test")
    state = client.get(f"/pay/{session.uuid}/status").json()
    assert state["wrong_asset_message"] == (
        "A payment in USDC on test was received; this checkout expects USDC on Other chain. "
        "Contact the merchant for a refund."
    )
    assert state["confirmations"] is None and not state["can_switch"]  # it pays nothing, but something was sent


def test_only_the_chosen_network_pays(two_networks):
    session = new()
    choose_payment_method(session, "test", "USDC")
    # Matched to the session just before the customer switched network: it is on the old network.
    make_transfer(session, 30_000_000, status="confirmed")
    session.refresh_from_db()
    CheckoutSession.objects.filter(pk=session.pk).update(network="other")
    refreshed = refresh_session(session.pk)
    assert (refreshed.status, refreshed.payment_status) == ("open", "unpaid")


# --- what the API and the events say ------------------------------------------------------------------------------


def test_tx_hashes_are_the_session_s_transactions_oldest_first_without_reverted_ones():
    session = make_session()
    first = make_transfer(session, 1, block_number=10)
    make_transfer(session, 1, block_number=11, status="reverted")
    second = make_transfer(session, 1, block_number=12, asset="USDT")  # any asset sent to the session
    make_transfer(session, 1, block_number=12, log_index=3, tx_hash=second.tx_hash)  # one tx, two logs: once
    assert describe_session(session)["tx_hashes"] == [first.tx_hash, second.tx_hash]
    assert session_payload(session)["tx_hashes"] == [first.tx_hash, second.tx_hash]


def post(api, body):
    return api.post("/api/v1/sessions/", json.dumps(body), content_type="application/json")


def test_the_api_creates_a_session_to_choose_and_shows_its_methods(api, two_networks):
    listed = [{"network": "test", "asset": "USDC"}, {"network": "other", "asset": "ETH"}]
    body = {"amount": "30.00", "currency": "USD", "payment_methods": listed}
    created = post(api, body)
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["payment_methods"] == [
        {"network": "test", "asset": "USDC", "chain_id": 31337, "decimals": 6},
        {"network": "other", "asset": "ETH", "chain_id": 8453, "decimals": 18},
    ]
    nulls = ("network", "asset", "deposit_address", "amount_due", "amount_remaining", "payment_uri", "qr_code")
    assert {name: data[name] for name in nulls} == dict.fromkeys(nulls)
    assert data["quote"]["rate"] is None and data["quote"]["fiat_amount"] == "30.00000000"
    assert data["tx_hashes"] == []

    session = CheckoutSession.objects.get(uuid=data["uuid"])
    choose_payment_method(session, "other", "ETH")
    shown = api.get(f"/api/v1/sessions/{session.uuid}/").json()
    assert (shown["network"], shown["asset"], shown["amount_due"]) == ("other", "ETH", str(10**16))
    assert shown["deposit_address"] == session.deposit_address.address
    status = api.get(f"/api/v1/transactions/{session.uuid}/status/").json()
    assert (status["network"], status["amount_due"]) == ("other", str(10**16))


def test_the_api_refuses_bad_payment_methods_by_field(api):
    response = post(api, {"amount": "1", "currency": "USD", "payment_methods": [{"network": "test"}]})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["payment_methods"] == ["0: asset: This field is required."]
    both = post(api, {"amount": "1", "currency": "USD", "network": "test", "asset": "ETH",
                      "payment_methods": [{"network": "test", "asset": "ETH"}]})  # fmt: skip
    assert "not both" in both.json()["error"]["fields"]["payment_methods"][0]
    assert not CheckoutSession.objects.exists()


def test_the_schema_documents_payment_methods():
    from rest_framework.test import APIClient

    schema = APIClient().get("/api/v1/schema/", {"format": "json"}).json()["components"]["schemas"]
    assert {"payment_methods", "network", "asset"} <= set(schema["SessionCreateRequest"]["properties"])
    assert not {"network", "asset"} & set(schema["SessionCreateRequest"].get("required", []))
    session = schema["Session"]["properties"]
    assert session["payment_methods"]["type"] == "array" and session["tx_hashes"]["type"] == "array"
    assert session["network"]["nullable"] and session["deposit_address"]["nullable"]


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_existing_sessions_their_one_method():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    app = "payments_gateway"
    executor = MigrationExecutor(connection)
    executor.migrate([(app, "0010_webhookrequest_body_size")])
    old = executor.loader.project_state([(app, "0010_webhookrequest_body_size")]).apps
    now = timezone.now()
    order = old.get_model(app, "Order").objects.create(amount=Decimal("5"), currency="USD")
    address = old.get_model(app, "DepositAddress").objects.create(network="test", index=7, address="0x" + "07" * 20)
    old.get_model(app, "CheckoutSession").objects.create(
        order=order, network="test", asset="USDC", amount_due=5_000_000, fiat_amount=Decimal("5"), fiat_currency="USD",
        quote_rate=Decimal(1), quote_source="fixed", quoted_at=now, expires_at=now, deposit_address=address,
    )  # fmt: skip
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes(app))
    session = CheckoutSession.objects.get()
    assert session.payment_methods == [{"network": "test", "asset": "USDC"}] and session.method_chosen


@pytest.mark.anvil
def test_the_scanner_pays_chosen_sessions_and_leaves_those_still_choosing_alone(anvil_settings, chain):
    from payments_gateway.scanning import scan_network

    choosing = new(amount="12.00")
    paying = new(amount="12.00")
    assert choosing.deposit_address is None and paying.deposit_address is None
    scan_network("anvil")  # nothing to watch yet: the scan still runs
    choose_payment_method(paying, "anvil", "USDC")
    chain.send_token("USDC", paying.address, 12_000_000)
    chain.mine(1)
    scan_network("anvil")
    paying.refresh_from_db()
    choosing.refresh_from_db()
    assert (paying.status, paying.payment_status, paying.amount_received) == ("complete", "paid", 12_000_000)
    assert (choosing.status, choosing.payment_status, choosing.deposit_address) == ("open", "unpaid", None)
    assert session_payload(paying)["tx_hashes"] == [paying.transfers.get().tx_hash]


def test_the_admin_shows_a_session_still_choosing(admin_client):
    session = make_choosing_session()
    page = admin_client.get(f"/admin/payments_gateway/checkoutsession/{session.pk}/change/")
    assert page.status_code == 200 and "&quot;asset&quot;: &quot;USDC&quot;" in page.content.decode()
    assert admin_client.get("/admin/payments_gateway/checkoutsession/").status_code == 200

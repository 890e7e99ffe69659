"""The merchant dashboard: every model has a working changelist, search and filters; logs cannot be edited;
API keys are shown once and stored hashed."""

import hashlib
import re
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils import timezone

from payments_gateway.models import (
    AddressCounter,
    APIKey,
    ChainCursor,
    CheckoutSession,
    Customer,
    DepositAddress,
    Event,
    Order,
    RpcErrorCount,
    ScannedBlock,
    Transfer,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookRequest,
)

from .factories import (
    make_api_key,
    make_attempt,
    make_customer,
    make_delivery,
    make_deposit_address,
    make_endpoint,
    make_event,
    make_idempotency_key,
    make_incoming_event,
    make_order,
    make_refund,
    make_session,
    make_subscription,
    make_sweep,
    make_transfer,
    make_unmatched,
)

pytestmark = pytest.mark.django_db

ADDRESS = "0x" + "4a" * 20
TX_HASH = "0x" + "7e" * 32
LOG_MODELS = [Transfer, WebhookDelivery, WebhookAttempt, WebhookEvent, WebhookRequest, Event]


@pytest.fixture
def world():
    """One row of every model, linked as in real use."""
    customer = make_customer(email="customer@example.com", name="Sample Customer")
    order = make_order(reference="SHOP-000042", description="2 × Mug", amount=Decimal("24.00"), customer=customer)
    address = make_deposit_address(network="anvil", index=0, address=ADDRESS, busy_until=timezone.now())
    AddressCounter.objects.create(network="anvil", next_index=1)
    session = make_session(
        order=order, customer=customer, network="anvil", amount_due=24_000_000, fiat_amount=Decimal("24.00"),
        deposit_address=address,
    )  # fmt: skip
    make_transfer(session, 24_000_000, tx_hash=TX_HASH, log_index=3, block_number=7, block_hash="0x" + "01" * 32)
    make_refund(session, address=ADDRESS, status="initiated")
    make_unmatched(network="anvil")  # to an address of no session
    ChainCursor.objects.create(network="anvil", block_number=7, head_block=9)
    make_sweep(address, status="confirmed", amount=24_000_000, block_number=8, gas_used=50_000)
    ScannedBlock.objects.create(network="anvil", number=7, hash="0x" + "01" * 32, parent_hash="0x" + "00" * 32)
    RpcErrorCount.objects.create(network="anvil", url="http://127.0.0.1:1", kind="connection", count=2)
    event = make_event(data={"uuid": str(session.uuid)}, session=session)
    delivery = make_delivery(event, make_endpoint("https://merchant.example/hooks"), attempts=1, last_status_code=500)
    make_attempt(delivery, status_code=500, response_excerpt="oops")
    incoming = make_incoming_event(source="transactions", event_id="msg_1", type="transaction.detected",
                                   body=b'{"a": 1}')  # fmt: skip
    WebhookRequest.objects.create(source="transactions", body=b'{"a": 1}', valid=True, status_code=200, event=incoming)
    make_idempotency_key(make_api_key("shop backend")[0], key="idem-1")
    make_subscription(customer=customer)
    return {"session": session, "order": order, "event": event}


def changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def test_every_domain_model_is_in_the_admin():
    from django.apps import apps

    models = set(apps.get_app_config("payments_gateway").get_models())
    assert models - set(admin.site._registry) == set()


@pytest.mark.parametrize(
    "model", [m for m in admin.site._registry if m._meta.app_label == "payments_gateway"], ids=lambda m: m.__name__
)
def test_changelist_loads_with_search_and_every_filter(admin_client, world, model):
    url = changelist(model)
    response = admin_client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == model.objects.count() >= 1
    if admin.site._registry[model].search_fields:
        assert admin_client.get(url, {"q": "no-such-thing-7f3a"}).context["cl"].result_count == 0
    for spec in response.context["cl"].filter_specs:
        for choice in spec.choices(response.context["cl"]):
            filtered = admin_client.get(url + choice["query_string"])
            # An invalid lookup makes the admin redirect to ?e=1 instead of answering 200.
            assert filtered.status_code == 200, (spec.title, choice["query_string"])


@pytest.mark.parametrize(
    ("model", "query", "expected"),
    [
        (CheckoutSession, "uuid", 1),
        (CheckoutSession, "SHOP-000042", 1),
        (CheckoutSession, ADDRESS, 1),
        (CheckoutSession, TX_HASH, 1),
        (Order, "SHOP-000042", 1),
        (Order, "uuid", 1),
        (Transfer, TX_HASH, 1),
        (Transfer, ADDRESS.lower(), 1),
        (DepositAddress, ADDRESS, 1),
        (Event, "evt_", 1),
        (Customer, "customer@", 1),
        (Order, "SHOP-000043", 0),
    ],
)
def test_search_finds_by_uuid_reference_address_and_tx_hash(admin_client, world, model, query, expected):
    if query == "uuid":
        query = str(world["session"].uuid if model is CheckoutSession else world["order"].uuid)
    response = admin_client.get(changelist(model), {"q": query})
    assert response.context["cl"].result_count == expected


@pytest.mark.parametrize("model", LOG_MODELS, ids=lambda m: m.__name__)
def test_logs_cannot_be_added_changed_or_deleted(admin_client, world, model):
    name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    obj = model.objects.first()
    before = model.objects.count()
    assert admin_client.get(reverse(f"{name}_add")).status_code == 403
    assert admin_client.post(reverse(f"{name}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    change_url = reverse(f"{name}_change", args=[quote(obj.pk)])
    page = admin_client.get(change_url)
    assert page.status_code == 200  # viewable ...
    assert b'name="_save"' not in page.content  # ... but without a save button
    assert admin_client.post(change_url, {}).status_code == 403
    listing = admin_client.get(changelist(model))
    assert reverse(f"{name}_add").encode() not in listing.content
    assert b'value="delete_selected"' not in listing.content
    assert model.objects.count() == before


def test_api_key_created_in_the_admin_is_shown_once_and_stored_hashed(admin_client):
    response = admin_client.post(
        reverse("admin:payments_gateway_apikey_add"), {"name": "storefront", "scopes": ["read"]}, follow=True
    )
    assert response.status_code == 200
    shown = re.findall(r"pgk_[A-Za-z0-9_-]{20,}", response.content.decode())
    assert len(set(shown)) == 1
    raw = shown[0]
    key = APIKey.objects.get(name="storefront")
    assert key.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    assert APIKey.objects.get_active(raw) == key
    assert raw.startswith(key.prefix)
    # Never stored, never shown again.
    stored = [str(v) for v in APIKey.objects.values_list(*[f.attname for f in APIKey._meta.fields]).get()]
    assert not any(raw in value for value in stored)
    assert (
        raw
        not in admin_client.get(reverse("admin:payments_gateway_apikey_change", args=[quote(key.pk)])).content.decode()
    )
    assert raw not in admin_client.get(reverse("admin:payments_gateway_apikey_changelist")).content.decode()


def test_revoke_action_disables_the_key(admin_client):
    key, raw = make_api_key("old backend")
    other, other_raw = make_api_key("new backend")
    response = admin_client.post(
        reverse("admin:payments_gateway_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
        follow=True,
    )
    assert "Revoked 1 key(s)." in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None and not key.is_active
    assert APIKey.objects.get_active(raw) is None
    assert APIKey.objects.get_active(other_raw) == other


def test_order_can_be_edited_and_its_constraints_are_checked(admin_client, world):
    order = world["order"]
    url = reverse("admin:payments_gateway_order_change", args=[quote(order.pk)])
    form = {"reference": "SHOP-000042", "description": "2 × Mug, gift wrapped", "amount": "24.00", "currency": "USD"}
    response = admin_client.post(url, {**form, "status": "pending", "metadata": "{}"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.description == "2 × Mug, gift wrapped"
    assert order.amount == Decimal("24.00")
    # The check constraint (amount > 0) is enforced by the form too, with a message instead of a 500.
    response = admin_client.post(url, {**form, "amount": "0", "status": "pending", "metadata": "{}"})
    assert response.status_code == 200
    assert "The amount of an order must be greater than zero." in response.content.decode()
    order.refresh_from_db()
    assert order.amount == Decimal("24.00")

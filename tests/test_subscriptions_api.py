"""The subscriptions API: created by ``POST /sessions/`` with ``"type": "createSubscription"``; listed with filters,
retrieved and canceled under ``/subscriptions/``; bad input is a 400 naming the field, with nothing written."""

import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from payments_gateway.models import CheckoutSession, Customer, Event, Order, Subscription

from .factories import make_customer, make_payment, make_subscription

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("subscription_gateway")]

BODY = {"type": "createSubscription", "interval": "month", "amount": "15.00", "currency": "USD", "asset": "USDC",
        "network": "test", "description": "Coffee club, monthly", "customer_email": "club@example.com",
        "success_url": "https://shop.example/thanks/{{TRANSACTION_TYPE}}"}  # fmt: skip


def post(client, path, body=None, **headers):
    return client.post(path, json.dumps(body or {}), content_type="application/json", headers=headers)


def nothing_written():
    return not (Subscription.objects.exists() or CheckoutSession.objects.exists() or Order.objects.exists()
                or Event.objects.exists() or Customer.objects.exists())  # fmt: skip


def test_a_createsubscription_session_creates_the_subscription(api):
    response = post(api, "/api/v1/sessions/", BODY | {"interval_count": 3})
    assert response.status_code == 201, response.content
    data = response.json()
    subscription = Subscription.objects.get()
    assert data["type"] == "createSubscription" and data["subscription"] == str(subscription.uuid)
    assert data["link"] == f"http://testserver/pay/{data['uuid']}/" and data["amount_due"] == "15000000"
    got = api.get(f"/api/v1/subscriptions/{subscription.uuid}/").json()
    assert got["status"] == "incomplete" and got["latest_session"] == data["uuid"]
    assert (got["interval"], got["interval_count"], got["amount"], got["currency"]) == ("month", 3, "15.00", "USD")
    assert got["customer"] == str(Customer.objects.get(email="club@example.com").uuid)


def test_idempotency_key_replays_and_never_creates_two_subscriptions(api):
    first = post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": "sub-1"})
    again = post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": "sub-1"})
    assert first.status_code == again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and Subscription.objects.count() == 1
    changed = post(api, "/api/v1/sessions/", BODY | {"interval": "year"}, **{"Idempotency-Key": "sub-1"})
    assert changed.status_code == 400 and Subscription.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "field", "text"),
    [
        ({"interval": "fortnight"}, "interval", "fortnight"),
        ({"interval": None}, "interval", "required for a createSubscription session"),
        ({"interval_count": 0}, "interval_count", "from 1 to 12"),
        ({"interval_count": 10**30}, "interval_count", "from 1 to 12"),
        ({"customer_email": None}, "customer_email", "give the customer's customer_email"),
        ({"customer_email": "nope"}, "customer_email", "valid email address"),
        ({"type": "payment"}, "interval", 'only for "type": "createSubscription" sessions'),
        ({"type": "renewSubscription", "interval": None, "customer_email": None}, "type", "opened by the gateway"),
    ],
)
def test_bad_subscription_input_is_a_400_naming_the_field(api, change, field, text):
    body = {k: v for k, v in (BODY | change).items() if v is not None}
    response = post(api, "/api/v1/sessions/", body)
    assert response.status_code == 400, response.content
    assert text in " ".join(response.json()["error"]["fields"][field])
    assert nothing_written()


def test_a_customer_without_email_is_a_400_naming_customer(api):
    customer = make_customer(email="")
    body = {k: v for k, v in BODY.items() if k != "customer_email"} | {"customer": str(customer.uuid)}
    response = post(api, "/api/v1/sessions/", body)
    assert response.status_code == 400
    assert "has no e-mail address" in response.json()["error"]["fields"]["customer"][0]
    assert not Subscription.objects.exists()


def test_list_filters_by_status_and_customer(api):
    first, second = make_customer(), make_customer()
    active = make_subscription(customer=first)
    make_subscription(customer=second, status="past_due")
    listed = api.get("/api/v1/subscriptions/").json()
    assert listed["count"] == 2
    by_status = api.get("/api/v1/subscriptions/", {"status": "active"}).json()["results"]
    assert [s["uuid"] for s in by_status] == [str(active.uuid)]
    by_customer = api.get("/api/v1/subscriptions/", {"customer": str(second.uuid)}).json()["results"]
    assert [s["customer"] for s in by_customer] == [str(second.uuid)]
    bad_status = api.get("/api/v1/subscriptions/", {"status": "paused"})
    assert (
        bad_status.status_code == 400 and "unknown status 'paused'" in bad_status.json()["error"]["fields"]["status"][0]
    )
    bad_customer = api.get("/api/v1/subscriptions/", {"customer": "not-a-uuid"})
    assert bad_customer.status_code == 400 and "customer" in bad_customer.json()["error"]["fields"]


def test_cancel_at_period_end_then_now_then_twice_is_a_400(api):
    subscription = make_subscription()
    url = f"/api/v1/subscriptions/{subscription.uuid}/cancel/"
    later = post(api, url, {"at_period_end": True})
    assert later.status_code == 200 and later.json()["cancel_at_period_end"] is True
    assert later.json()["status"] == "active"
    twice = post(api, url, {"at_period_end": True})
    assert twice.status_code == 400 and "already set to cancel" in twice.json()["error"]["fields"]["at_period_end"][0]
    now = post(api, url, {"at_period_end": False})
    assert now.status_code == 200 and now.json()["status"] == "canceled"
    again = post(api, url, {})
    assert again.status_code == 400 and "already canceled" in again.json()["error"]["fields"]["status"][0]
    assert Event.objects.filter(type="subscription.canceled").count() == 1


def test_cancel_of_an_unknown_subscription_is_404_and_needs_a_key(api):
    assert post(api, "/api/v1/subscriptions/6f1c0b8e-0000-0000-0000-000000000000/cancel/").status_code == 404
    assert APIClient().get("/api/v1/subscriptions/").status_code == 401


def test_renewal_sessions_name_their_subscription_in_the_api(api):
    session = CheckoutSession.objects.get(uuid=post(api, "/api/v1/sessions/", BODY).json()["uuid"])
    make_payment(session, now=timezone.now())
    subscription = api.get("/api/v1/subscriptions/").json()["results"][0]
    assert subscription["status"] == "active" and subscription["current_period_end"]


def test_schema_documents_the_subscription_endpoints_and_fields():
    schema = json.loads(APIClient().get("/api/v1/schema/", {"format": "json"}).content)
    paths = schema["paths"]
    assert set(paths["/api/v1/subscriptions/"]["get"]["responses"]) == {"200", "400", "401", "403"}
    assert {p["name"] for p in paths["/api/v1/subscriptions/"]["get"]["parameters"]} >= {"status", "customer"}
    assert set(paths["/api/v1/subscriptions/{uuid}/"]["get"]["responses"]) == {"200", "401", "403", "404"}
    cancel = paths["/api/v1/subscriptions/{uuid}/cancel/"]["post"]
    assert set(cancel["responses"]) == {"200", "400", "401", "403", "404", "409"}
    assert "Idempotency-Key" in {p["name"] for p in cancel["parameters"]}
    create = schema["components"]["schemas"]["SessionCreateRequest"]["properties"]
    assert {"interval", "interval_count", "customer_email"} <= set(create)
    assert schema["components"]["schemas"]["Session"]["properties"]["subscription"]["nullable"] is True

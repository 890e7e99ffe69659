"""REST API for webhook endpoints and events: auth, secret shown once, bad input, test events, redelivery."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from payments_gateway.events import emit
from payments_gateway.models import APIKey, DeliveryState, Event, WebhookDelivery, WebhookEndpoint
from payments_gateway.webhooks.outgoing.delivery import deliver_due

from .factories import make_endpoint
from .http_receiver import Receiver, Reply

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/webhook-endpoints/"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Bearer <API key>"),
        ("Bearer", "Bearer <API key>"),
        ("Token abc", "Bearer <API key>"),
        ("Bearer pgk_wrong", "Invalid or revoked API key."),
    ],
)
def test_requests_without_a_valid_key_get_401_json(header, message):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    for url in (ENDPOINTS, "/api/v1/events/"):
        response = client.get(url)
        assert response.status_code == 401
        assert message in response.json()["error"]["message"]  # names what to send
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_key_is_refused_and_a_used_key_records_last_used(api, api_key):
    key, _ = api_key
    assert api.get(ENDPOINTS).status_code == 200
    key.refresh_from_db()
    assert key.last_used is not None
    APIKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    response = api.get(ENDPOINTS)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid or revoked API key."


def test_create_returns_the_secret_once(api, public_dns):
    response = api.post(
        ENDPOINTS,
        {"url": "https://shop.example/hooks", "enabled_events": ["payment.completed", "payment.failed"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    endpoint = WebhookEndpoint.objects.get(uuid=body["uuid"])
    assert body["secret"] == endpoint.secret and body["secret"].startswith("whsec_")
    assert endpoint.enabled_events == ["payment.completed", "payment.failed"]

    listed = api.get(ENDPOINTS).json()
    retrieved = api.get(f"{ENDPOINTS}{endpoint.uuid}/").json()
    assert "secret" not in listed[0] and "secret" not in retrieved
    assert endpoint.secret not in str(listed) + str(retrieved)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"url": "not a url"}, "url", "is not a valid http(s) URL."),
        ({"url": "https://10.0.0.5/hooks"}, "url", "resolves to 10.0.0.5, a private address"),
        ({"url": "https://169.254.169.254/latest"}, "url", "a link-local address"),
        ({"url": "http://shop.example/hooks"}, "url", "must use https"),
        (
            {"url": "https://shop.example/hooks", "enabled_events": ["payment.completed", "payment.teleported"]},
            "enabled_events",
            "Unknown event type(s) payment.teleported.",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_problem_and_saves_nothing(api, public_dns, data, field, message):
    response = api.post(ENDPOINTS, data, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()["error"]["fields"][field])
    assert message in response.json()["error"]["message"]
    assert not WebhookEndpoint.objects.exists()


def test_update_refuses_a_private_url_and_keeps_the_old_one(api, public_dns):
    endpoint = make_endpoint("https://shop.example/hooks")
    response = api.patch(f"{ENDPOINTS}{endpoint.uuid}/", {"url": "https://127.0.0.1/"}, format="json")
    assert response.status_code == 400
    endpoint.refresh_from_db()
    assert endpoint.url == "https://shop.example/hooks"


def test_reenabling_a_disabled_endpoint_clears_the_reason(api, public_dns):
    endpoint = make_endpoint(
        "https://shop.example/hooks", active=False, disabled_reason="The endpoint answered 410 Gone."
    )
    response = api.patch(f"{ENDPOINTS}{endpoint.uuid}/", {"active": True}, format="json")
    assert response.status_code == 200 and response.json()["disabled_reason"] == ""
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.disabled_reason == ""


def test_rotate_secret_returns_the_new_secret_and_keeps_the_old_valid(api):
    endpoint = make_endpoint("https://shop.example/hooks")
    old = endpoint.secret
    response = api.post(f"{ENDPOINTS}{endpoint.uuid}/rotate-secret/", {"overlap_seconds": 600}, format="json")
    assert response.status_code == 200
    endpoint.refresh_from_db()
    assert response.json()["secret"] == endpoint.secret != old
    assert endpoint.previous_secret == old
    assert 590 <= (endpoint.previous_secret_expires - timezone.now()).total_seconds() <= 600
    bad = api.post(f"{ENDPOINTS}{endpoint.uuid}/rotate-secret/", {"overlap_seconds": -1}, format="json")
    assert bad.status_code == 400 and "overlap_seconds" in bad.json()["error"]["fields"]


def test_send_test_event_of_any_type_is_delivered_signed(api, private_webhook_urls):
    with Receiver(Reply(200)) as receiver:
        endpoint = make_endpoint(receiver.url())
        response = api.post(f"{ENDPOINTS}{endpoint.uuid}/test/", {"type": "subscription.renewed"}, format="json")
        assert response.status_code == 201
        body = response.json()
        assert body["type"] == "subscription.renewed" and body["livemode"] is False
        assert deliver_due() == 1

    (request,) = receiver.requests
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert payload["id"] == body["id"] == request.headers["webhook-id"]
    assert payload["type"] == "subscription.renewed"

    bad = api.post(f"{ENDPOINTS}{endpoint.uuid}/test/", {"type": "payment.teleported"}, format="json")
    assert bad.status_code == 400 and "type" in bad.json()["error"]["fields"]
    assert Event.objects.count() == 1


def test_events_list_retrieve_and_redeliver_with_the_same_webhook_id(api, private_webhook_urls):
    with Receiver(Reply(200)) as receiver:
        endpoint = make_endpoint(receiver.url())
        event = emit("payment.completed", {"uuid": "s1"})
        emit("customer.created", {"uuid": "c1"})
        deliver_due()

        listed = api.get("/api/v1/events/").json()
        assert listed["count"] == 2
        only = api.get("/api/v1/events/?type=payment.completed").json()["results"]
        assert [e["id"] for e in only] == [event.id]

        detail = api.get(f"/api/v1/events/{event.id}/").json()
        assert detail["data"] == {"uuid": "s1"}
        (delivery,) = detail["deliveries"]
        assert delivery["endpoint"] == str(endpoint.uuid) and delivery["state"] == "succeeded"
        assert delivery["attempt_log"][0]["status_code"] == 200

        response = api.post(f"/api/v1/events/{event.id}/redeliver/", {}, format="json")
        assert response.status_code == 202
        assert response.json()["deliveries"][0]["state"] == "pending"
        deliver_due()

    ids = [r.headers["webhook-id"] for r in receiver.requests if b"payment.completed" in r.body]
    assert ids == [event.id, event.id]
    assert WebhookDelivery.objects.get(event=event).state == DeliveryState.SUCCEEDED


def test_redeliver_to_a_named_endpoint_and_unknown_ids(api):
    event = emit("payment.completed", {})  # no endpoint existed: no delivery
    response = api.post(f"/api/v1/events/{event.id}/redeliver/", {}, format="json")
    assert response.status_code == 400
    assert "name an endpoint" in response.json()["error"]["fields"]["endpoint"][0]

    endpoint = make_endpoint("https://shop.example/hooks")
    response = api.post(f"/api/v1/events/{event.id}/redeliver/", {"endpoint": str(endpoint.uuid)}, format="json")
    assert response.status_code == 202
    assert WebhookDelivery.objects.get(event=event).endpoint == endpoint

    assert api.post("/api/v1/events/evt_missing/redeliver/", {}, format="json").status_code == 404
    missing = "00000000-0000-0000-0000-000000000000"
    assert api.post(f"/api/v1/events/{event.id}/redeliver/", {"endpoint": missing}, format="json").status_code == 404

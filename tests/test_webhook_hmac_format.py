"""Endpoints with ``signature_format: "hmac-sha256"`` receive ``X-Webhook-Signature-256: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>">``, verified by a receiver written the way gateways' docs show it; Standard Webhooks endpoints
beside them are still verified by the official library. While a secret rotates, hmac-sha256 requests carry one
signature, with the current secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from payments_gateway.events import emit
from payments_gateway.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from payments_gateway.webhooks.incoming.schemes import HmacSha256Scheme
from payments_gateway.webhooks.outgoing import signing
from payments_gateway.webhooks.outgoing.delivery import deliver_due

from .factories import make_endpoint
from .http_receiver import Receiver, Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_webhook_urls")]

TOLERANCE = 300  # five minutes, as the gateways' docs say


def verify_like_the_docs(secrets: list[str], headers: dict[str, str], body: bytes, now: float | None = None) -> bool:
    """A merchant's receiver as gateways document it: read the timestamp and the ``sha256=`` header, refuse a
    timestamp more than five minutes off, recompute the hex HMAC-SHA256 of ``timestamp.body`` with the shared
    secret and compare in constant time."""
    timestamp = headers.get("x-webhook-timestamp", "")
    signature = headers.get("x-webhook-signature-256", "")
    if not timestamp.isdigit() or not signature.startswith("sha256="):
        return False
    if abs((now if now is not None else time.time()) - int(timestamp)) > TOLERANCE:
        return False
    for secret in secrets:
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, signature.removeprefix("sha256=")):
            return True
    return False


def test_hmac_and_standard_endpoints_each_get_deliveries_their_receiver_verifies():
    with Receiver(Reply(200)) as hmac_receiver, Receiver(Reply(200)) as standard_receiver:
        hmac_endpoint = make_endpoint(hmac_receiver.url(), signature_format="hmac-sha256")
        standard_endpoint = make_endpoint(standard_receiver.url())
        event = emit("payment.completed", {"amount_due": "1000"})
        assert deliver_due() == 2

    (got,) = hmac_receiver.requests
    assert verify_like_the_docs([hmac_endpoint.secret], got.headers, got.body)
    assert got.headers["x-webhook-id"] == event.id
    assert json.loads(got.body)["id"] == event.id
    assert "webhook-signature" not in got.headers  # one format per endpoint
    # Two deployments chain: the incoming hmac-sha256 scheme of another gateway verifies it too.
    HmacSha256Scheme(
        [hmac_endpoint.secret], signature_header="X-Webhook-Signature-256", timestamp_header="X-Webhook-Timestamp"
    ).verify(got.body, got.headers)

    (standard,) = standard_receiver.requests
    assert Webhook(standard_endpoint.secret).verify(standard.body, standard.headers)["id"] == event.id
    assert "x-webhook-signature-256" not in standard.headers
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {DeliveryState.SUCCEEDED}


def test_the_docs_receiver_refuses_a_tampered_body_a_wrong_secret_and_a_replay_after_five_minutes():
    with Receiver(Reply(200)) as receiver:
        endpoint = make_endpoint(receiver.url(), signature_format="hmac-sha256")
        emit("payment.completed", {"amount_due": "1000"})
        deliver_due()
    (got,) = receiver.requests
    sent_at = int(got.headers["x-webhook-timestamp"])
    assert verify_like_the_docs([endpoint.secret], got.headers, got.body, now=sent_at + TOLERANCE)
    assert not verify_like_the_docs([endpoint.secret], got.headers, got.body.replace(b"1000", b"9000"))
    assert not verify_like_the_docs([signing.new_secret()], got.headers, got.body)
    assert not verify_like_the_docs([endpoint.secret], got.headers, got.body, now=sent_at + TOLERANCE + 1)


def test_a_receiver_that_failed_to_verify_gets_the_event_again_with_the_same_id():
    # The receiver answers 400 to a signature it cannot verify: the delivery is retried, never lost.
    with Receiver(Reply(400, b"bad signature"), Reply(200)) as receiver:
        make_endpoint(receiver.url(), signature_format="hmac-sha256")
        event = emit("payment.completed", {})
        deliver_due()
        delivery = WebhookDelivery.objects.get()
        assert delivery.state == DeliveryState.PENDING and delivery.last_status_code == 400
        deliver_due(now=timezone.now() + timedelta(minutes=1))
    assert [r.headers["x-webhook-id"] for r in receiver.requests] == [event.id, event.id]
    assert WebhookDelivery.objects.get().state == DeliveryState.SUCCEEDED


def test_during_rotation_hmac_requests_carry_one_signature_with_the_current_secret():
    with Receiver(Reply(200)) as receiver:
        endpoint = make_endpoint(receiver.url(), signature_format="hmac-sha256")
        old = endpoint.secret
        now = timezone.now()
        new = signing.rotate_secret(endpoint, now=now)
        emit("payment.completed", {"n": 1})
        deliver_due(now=now + timedelta(hours=1))  # inside the overlap
    (got,) = receiver.requests
    assert got.headers["x-webhook-signature-256"].count("sha256=") == 1
    assert verify_like_the_docs([new], got.headers, got.body)
    assert not verify_like_the_docs([old], got.headers, got.body)  # a receiver still on the old secret must switch
    assert verify_like_the_docs([old, new], got.headers, got.body)  # ... or accept both while it rotates


def test_the_api_sets_and_shows_the_format_and_refuses_an_unknown_one(api, public_dns):
    url = "/api/v1/webhook-endpoints/"
    created = api.post(url, {"url": "https://shop.example/hooks", "signature_format": "hmac-sha256"}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["signature_format"] == "hmac-sha256"
    default = api.post(url, {"url": "https://shop.example/other"}, format="json").json()
    assert default["signature_format"] == "standard-webhooks"
    assert api.get(f"{url}{default['uuid']}/").json()["signature_format"] == "standard-webhooks"

    refused = api.post(url, {"url": "https://shop.example/x", "signature_format": "sha1"}, format="json")
    assert refused.status_code == 400
    assert "sha1" in json.dumps(refused.json()) and "is not a valid choice" in json.dumps(refused.json())
    assert WebhookEndpoint.objects.count() == 2

    changed = api.patch(f"{url}{default['uuid']}/", {"signature_format": "hmac-sha256"}, format="json")
    assert changed.status_code == 200 and changed.json()["signature_format"] == "hmac-sha256"


def test_the_admin_form_offers_the_format_and_keeps_the_default(admin_client, public_dns):
    add = reverse("admin:payments_gateway_webhookendpoint_add")
    form = admin_client.get(add).content.decode()
    assert 'value="hmac-sha256"' in form and 'value="standard-webhooks" selected' in form
    admin_client.post(add, {"url": "https://shop.example/a", "signature_format": "hmac-sha256", "active": "on"})
    admin_client.post(add, {"url": "https://shop.example/b", "active": "on"})
    assert dict(WebhookEndpoint.objects.values_list("url", "signature_format")) == {
        "https://shop.example/a": "hmac-sha256",
        "https://shop.example/b": "standard-webhooks",
    }

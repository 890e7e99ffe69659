"""Standard Webhooks signatures, checked with the official ``standardwebhooks`` library; secret rotation."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from payments_gateway.events import emit
from payments_gateway.webhooks.outgoing import signing
from payments_gateway.webhooks.outgoing.delivery import deliver_due

from .factories import make_endpoint
from .http_receiver import Receiver, Reply

pytestmark = pytest.mark.django_db


def test_signature_matches_the_official_library():
    secret = signing.new_secret()
    body = '{"id":"evt_1","type":"payment.completed","data":{"note":"caf\u00e9"}}'
    ours = signing.sign(secret, "evt_1", 1_700_000_000, body.encode())
    theirs = Webhook(secret).sign("evt_1", datetime.fromtimestamp(1_700_000_000, tz=UTC), body)
    assert ours == theirs


def test_new_endpoints_get_a_32_byte_whsec_secret_each():
    a = make_endpoint("https://a.example/")
    b = make_endpoint("https://b.example/")
    for endpoint in (a, b):
        assert endpoint.secret.startswith("whsec_")
        assert len(base64.b64decode(endpoint.secret.removeprefix("whsec_"))) == 32
    assert a.secret != b.secret


def test_headers_verify_and_a_tampered_body_does_not():
    endpoint = make_endpoint("https://a.example/")
    headers = signing.signed_headers(endpoint, "evt_abc", b'{"a":1}')
    assert headers["webhook-id"] == "evt_abc"
    assert Webhook(endpoint.secret).verify(b'{"a":1}', headers) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(b'{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(b'{"a":1}', headers)


def test_rotation_sends_both_signatures_during_the_overlap_then_only_the_new_one(private_webhook_urls):
    with Receiver(Reply(200)) as receiver:
        endpoint = make_endpoint(receiver.url())
        old = endpoint.secret
        now = timezone.now()
        new = signing.rotate_secret(endpoint, now=now)
        assert new != old and new.startswith("whsec_")
        endpoint.refresh_from_db()
        assert endpoint.previous_secret == old
        assert endpoint.previous_secret_expires == now + timedelta(hours=24)  # the default overlap

        emit("payment.completed", {"n": 1})
        deliver_due(now=now + timedelta(hours=23))
        emit("payment.completed", {"n": 2})
        deliver_due(now=now + timedelta(hours=25))

    during, after = receiver.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)

    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


def test_rotation_overlap_is_configurable(settings):
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "WEBHOOK_SECRET_ROTATION_OVERLAP": 3600}
    endpoint = make_endpoint("https://a.example/")
    now = timezone.now()
    signing.rotate_secret(endpoint, now=now)
    assert endpoint.previous_secret_expires == now + timedelta(hours=1)
    assert signing.valid_secrets(endpoint, now=now + timedelta(minutes=59))[1] == endpoint.previous_secret
    assert signing.valid_secrets(endpoint, now=now + timedelta(minutes=61)) == [endpoint.secret]

"""The REST API: API keys, sessions, transaction status, customers, idempotency, JSON errors, OpenAPI schema."""

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from payments_gateway.models import APIKey, CheckoutSession, Customer, Event, IdempotencyKey, Order
from payments_gateway.services.payments import refresh_session

from .factories import api_client, make_api_key, make_transfer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]

BODY = {"amount": "19.99", "currency": "USD", "asset": "USDC", "network": "test", "reference": "API-1",
        "success_url": "https://shop.example/ok/{{UUID}}", "cancel_url": "https://shop.example/cart",
        "metadata": {"cart": 42}}  # fmt: skip


def post(client, path, body=None, **headers):
    return client.post(path, json.dumps(body or {}), content_type="application/json", headers=headers)


def test_create_and_retrieve_a_session(api):
    response = post(api, "/api/v1/sessions/", BODY)
    assert response.status_code == 201, response.content
    data = response.json()
    session = CheckoutSession.objects.get()
    assert data["uuid"] == str(session.uuid)
    assert data["link"] == f"http://testserver/pay/{session.uuid}/"
    assert (data["status"], data["payment_status"]) == ("open", "unpaid")
    assert data["amount_due"] == "19990000" and data["amount_due_display"] == "19.99"
    assert data["amount_received"] == "0" and data["amount_received_display"] == "0"
    assert data["deposit_address"] == session.deposit_address.address
    assert data["quote"] == {"rate": "1.000000000000000000", "source": "fixed",
                             "quoted_at": data["quote"]["quoted_at"], "fiat_amount": "19.99000000",
                             "fiat_currency": "USD"}  # fmt: skip
    assert data["order"]["reference"] == "API-1" and data["metadata"] == {"cart": 42}
    assert data["success_url"] == BODY["success_url"] and data["late"] is False
    assert data["payment_uri"].endswith(f"/transfer?address={session.deposit_address.address}&uint256=19990000")
    assert api.get(f"/api/v1/sessions/{session.uuid}/").json() == data


def test_big_amounts_are_exact_strings(api):
    response = post(api, "/api/v1/sessions/", BODY | {"asset": "ETH", "amount": "100000000.00"})
    data = response.json()
    # 10**8 USD / 3000 = 33333.33… ETH, beyond 2**64 wei, rounded up to the last wei.
    assert data["amount_due"] == "33333" + "333333333333333334"
    assert data["amount_due_display"] == "33333.333333333333333334"


@pytest.mark.parametrize(
    ("change", "field", "text"),
    [
        ({"network": "mars"}, "network", "unknown network 'mars'"),
        ({"asset": "DOGE"}, "asset", "unknown asset 'DOGE'"),
        ({"amount": "-1"}, "amount", "no sign"),
        ({"amount": "0"}, "amount", "greater than zero"),
        ({"amount": "1.999"}, "amount", "USD has 2 decimal places"),
        ({"success_url": "ftp://x"}, "success_url", "not a valid http(s) URL"),
        ({"type": "subscription"}, "type", "not a valid choice"),
        ({"customer": "nope"}, "customer", "valid UUID"),
    ],
)
def test_bad_input_is_a_field_level_400_and_writes_nothing(api, change, field, text):
    response = post(api, "/api/v1/sessions/", BODY | change)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert text in " ".join(error["fields"][field]) and text in error["message"]
    assert not (CheckoutSession.objects.exists() or Order.objects.exists() or Event.objects.exists())


@pytest.mark.parametrize("number", ["19.999999999999999", "19.99", "2e1", "true"])
def test_a_json_number_with_a_fraction_is_refused_as_an_amount(api, number):
    # json.loads reads 19.999999999999999 as the float 20.0: it must not become a $20.00 order.
    body = json.dumps(BODY).replace('"amount": "19.99"', f'"amount": {number}')
    response = api.post("/api/v1/sessions/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["amount"] == [
        'give the amount as a string, e.g. "19.99" (a JSON number with a fraction is not exact).'
    ]
    assert not (CheckoutSession.objects.exists() or Order.objects.exists())


def test_an_integer_amount_is_exact_and_accepted(api):
    body = json.dumps(BODY).replace('"amount": "19.99"', '"amount": 20')
    response = api.post("/api/v1/sessions/", body, content_type="application/json")
    assert response.status_code == 201 and response.json()["amount_due"] == "20000000"
    assert Order.objects.get().amount == Decimal("20")


def test_a_rate_with_more_than_18_decimals_creates_the_session(api, settings):
    # It used to reach the quote_rate column, raise a field-less ValidationError and answer an HTML 500.
    settings.PAYMENTS_GATEWAY = settings.PAYMENTS_GATEWAY | {
        "RATE_PROVIDER": "tests.test_pricing.ManyDecimalsProvider",
        "RATE_PROVIDER_OPTIONS": {"rate": "1.0000000000000000001"},
    }
    response = post(api, "/api/v1/sessions/", BODY)
    assert response.status_code == 201
    assert Decimal(response.json()["quote"]["rate"]) == 1
    assert response.json()["amount_due"] == "19990000"


def test_a_second_session_for_an_order_with_a_payment_in_progress_is_400(api):
    first = post(api, "/api/v1/sessions/", BODY).json()
    again = {"order": "API-1", "asset": "USDC", "network": "test"}
    second = post(api, "/api/v1/sessions/", again)
    assert second.status_code == 201
    assert api.get(f"/api/v1/sessions/{first['uuid']}/").json()["status"] == "canceled"  # superseded, unpaid

    make_transfer(CheckoutSession.objects.get(uuid=second.json()["uuid"]), 1_000_000)
    third = post(api, "/api/v1/sessions/", again)
    assert third.status_code == 400
    assert third.json()["error"]["fields"] == {
        "order": [f"order API-1 already has a session with a payment in progress: {second.json()['uuid']}"]
    }
    assert CheckoutSession.objects.filter(status="open").count() == 1


def test_missing_fields_are_named(api):
    # Network and asset may be left out (the customer chooses); a price may not.
    response = post(api, "/api/v1/sessions/", {"currency": "USD"})
    fields = response.json()["error"]["fields"]
    assert response.status_code == 400 and set(fields) == {"amount"}


def test_malformed_json_is_a_json_400(api):
    response = api.post("/api/v1/sessions/", "{nope", content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["error"]["message"]


def test_unknown_foreign_and_revoked_keys_are_401(api_key):
    client = APIClient()
    response = client.get("/api/v1/customers/")
    assert response.status_code == 401 and "Authorization: Bearer" in response.json()["error"]["message"]
    client.credentials(HTTP_AUTHORIZATION="Bearer pgk_someone-elses-key")
    assert client.post("/api/v1/sessions/", BODY, format="json").json()["error"]["message"] == (
        "Invalid or revoked API key."
    )
    key, raw = api_key
    APIKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/customers/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert client.get("/api/v1/customers/").status_code == 401
    assert not CheckoutSession.objects.exists()


def test_key_use_is_recorded(api, api_key):
    api.get("/api/v1/customers/")
    assert APIKey.objects.get(pk=api_key[0].pk).last_used is not None


def test_unknown_session_and_endpoint_are_json_404(api):
    response = api.get(f"/api/v1/sessions/{uuid.uuid4()}/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/sessions/not-a-uuid/").status_code == 404
    assert api.get("/api/v1/nothing/").json()["error"]["message"] == "No API endpoint /api/v1/nothing/."
    assert api.get(f"/api/v1/transactions/{uuid.uuid4()}/status/").status_code == 404


def test_expire_an_open_session_then_expire_again_is_400(api):
    created = post(api, "/api/v1/sessions/", BODY).json()
    response = post(api, f"/api/v1/sessions/{created['uuid']}/expire/")
    assert response.status_code == 200 and response.json()["status"] == "expired"
    assert Event.objects.filter(type="payment.expired").count() == 1
    again = post(api, f"/api/v1/sessions/{created['uuid']}/expire/")
    assert again.status_code == 400 and "only an open session can be expired" in again.json()["error"]["message"]


def test_a_read_expires_a_session_past_its_time(api):
    created = post(api, "/api/v1/sessions/", BODY).json()
    CheckoutSession.objects.filter(uuid=created["uuid"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api.get(f"/api/v1/sessions/{created['uuid']}/").json()["status"] == "expired"


def test_transaction_status_lists_transfers_with_confirmations(api):
    created = post(api, "/api/v1/sessions/", BODY).json()
    session = CheckoutSession.objects.get(uuid=created["uuid"])
    make_transfer(session, 5_000_000, confirmations=1)
    refresh_session(session.pk)
    data = api.get(f"/api/v1/transactions/{session.uuid}/status/").json()
    assert (data["status"], data["payment_status"]) == ("open", "partially_paid")
    assert data["amount_pending"] == "5000000" and data["amount_remaining"] == "14990000"
    assert data["confirmations_required"] == 3
    assert [(t["amount"], t["confirmations"], t["status"]) for t in data["transfers"]] == [("5000000", 1, "detected")]


# --- Idempotency-Key ------------------------------------------------------------------------------------


def test_same_key_same_body_replays_the_first_response(api):
    first = post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": "k1"})
    second = post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": "k1"})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and second["Idempotent-Replayed"] == "true"
    assert CheckoutSession.objects.count() == 1 and Event.objects.filter(type="payment.created").count() == 1


def test_same_key_different_body_is_400(api):
    post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": "k2"})
    response = post(api, "/api/v1/sessions/", BODY | {"amount": "20.00"}, **{"Idempotency-Key": "k2"})
    assert response.status_code == 400 and "different request" in response.json()["error"]["message"]
    assert CheckoutSession.objects.count() == 1


def test_same_key_while_in_progress_is_409(api, api_key):
    # What a concurrent request sees: the key is claimed, no response stored yet.
    first = post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": "k3"})
    IdempotencyKey.objects.filter(key="k3").update(response_status=None, response_body=None)
    response = post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": "k3"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "idempotency_conflict"
    assert first.status_code == 201 and CheckoutSession.objects.count() == 1


def test_keys_are_kept_for_the_ttl_then_reusable(api):
    post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": "k4"})
    IdempotencyKey.objects.filter(key="k4").update(created=timezone.now() - timedelta(hours=23))
    assert post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": "k4"})["Idempotent-Replayed"] == "true"
    IdempotencyKey.objects.filter(key="k4").update(created=timezone.now() - timedelta(hours=25))
    fresh = post(api, "/api/v1/sessions/", BODY | {"reference": "API-2"}, **{"Idempotency-Key": "k4"})
    assert fresh.status_code == 201 and CheckoutSession.objects.count() == 2


def test_a_failed_request_releases_its_key(api):
    bad = post(api, "/api/v1/sessions/", BODY | {"amount": "0"}, **{"Idempotency-Key": "k5"})
    assert bad.status_code == 400 and not IdempotencyKey.objects.exists()
    assert post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": "k5"}).status_code == 201


def test_idempotency_keys_are_per_api_key(api):
    post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": "shared"})
    other = api_client(make_api_key("other")[1])
    response = post(other, "/api/v1/sessions/", BODY | {"reference": "API-3"}, **{"Idempotency-Key": "shared"})
    assert response.status_code == 201 and CheckoutSession.objects.count() == 2


# --- customers --------------------------------------------------------------------------------------------


def test_customers_create_list_retrieve_update(api):
    created = post(api, "/api/v1/customers/", {"email": "bo@example.com", "name": "Bo"})
    assert created.status_code == 201
    uid = created.json()["uuid"]
    assert api.get("/api/v1/customers/").json()["results"][0]["uuid"] == uid
    assert api.get(f"/api/v1/customers/{uid}/").json()["email"] == "bo@example.com"
    updated = api.patch(f"/api/v1/customers/{uid}/", {"name": "Bo B."}, format="json")
    assert updated.json()["name"] == "Bo B." and Customer.objects.get().name == "Bo B."
    types = sorted(Event.objects.values_list("type", flat=True))
    assert types == ["customer.created", "customer.updated"]
    bad = post(api, "/api/v1/customers/", {"email": "nope"})
    assert bad.status_code == 400 and "email" in bad.json()["error"]["fields"]


def test_session_for_a_customer(api):
    uid = post(api, "/api/v1/customers/", {"email": "cy@example.com"}).json()["uuid"]
    data = post(api, "/api/v1/sessions/", BODY | {"customer": uid}).json()
    assert data["customer"] == uid


# --- schema ---------------------------------------------------------------------------------------------


def test_openapi_schema_matches_the_api():
    response = APIClient().get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    paths = schema["paths"]
    for path, methods in {
        "/api/v1/sessions/": {"post"},
        "/api/v1/sessions/{uuid}/": {"get"},
        "/api/v1/sessions/{uuid}/expire/": {"post"},
        "/api/v1/transactions/{uuid}/status/": {"get"},
        "/api/v1/customers/": {"get", "post"},
        "/api/v1/customers/{uuid}/": {"get", "put", "patch"},
    }.items():
        assert methods <= set(paths[path]), path
    session = schema["components"]["schemas"]["Session"]["properties"]
    for name in ["uuid", "link", "status", "payment_status", "expires_at", "deposit_address", "network", "asset",
                 "amount_due", "amount_due_display", "amount_received", "quote", "success_url", "cancel_url", "late",
                 "metadata"]:  # fmt: skip
        assert name in session, name
    params = {p["name"] for p in paths["/api/v1/sessions/"]["post"]["parameters"]}
    assert "Idempotency-Key" in params
    assert "apiKey" in schema["components"]["securitySchemes"]


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_request_with_the_same_key_gets_409(api, monkeypatch):
    """Two threads, one key, the first still running: the second gets 409 at once (on PostgreSQL the first holds
    the key's advisory lock, on SQLite its in-flight mark); the work is done once, and a retry replays it."""
    import threading

    from django.db import connection

    from payments_gateway.api import checkout as api_views

    entered, release = threading.Event(), threading.Event()
    real = api_views.create_session

    def held(**fields):
        entered.set()
        release.wait(30)  # ordering only: the second request must arrive while the first is running
        return real(**fields)

    monkeypatch.setattr(api_views, "create_session", held)
    first = []

    def run_first():
        try:
            first.append(post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": "race"}))
        finally:
            connection.close()

    thread = threading.Thread(target=run_first)
    thread.start()
    assert entered.wait(30)
    second = post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": "race"})
    release.set()
    thread.join(30)
    assert first[0].status_code == 201 and CheckoutSession.objects.count() == 1
    assert second.status_code == 409 and "still being processed" in second.json()["error"]["message"]
    third = post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": "race"})
    assert third.json()["uuid"] == first[0].json()["uuid"]


def test_deeply_nested_json_is_a_clear_400_not_a_crashed_worker(api):
    # web3's dependencies raise the recursion limit to 100 000, so the C JSON decoder would overflow the stack
    # (a segfault that kills this very test process) on such a body if the depth were not checked first.
    depth = 150_000
    response = api.post(
        "/api/v1/sessions/",
        "[" * depth + "]" * depth,
        content_type="application/json",
        headers={"Idempotency-Key": "deep"},
    )
    assert response.status_code == 400
    assert "nested deeper than 100 levels" in response.json()["error"]["message"]
    assert CheckoutSession.objects.count() == 0
    response = api.post("/api/v1/webhook-endpoints/", '{"a":' * 200 + "1" + "}" * 200, content_type="application/json")
    assert response.status_code == 400


def test_the_session_carries_its_qr_code_for_a_merchants_own_screen(api):
    import base64
    import subprocess

    assert post(api, "/api/v1/sessions/", BODY | {"reference": "no-qr"}).json()["qr_code"] is None  # not asked for
    data = post(api, "/api/v1/sessions/?include=qr_code", BODY).json()
    prefix = "data:image/png;base64,"
    assert data["qr_code"].startswith(prefix)
    png = base64.b64decode(data["qr_code"][len(prefix) :])
    decoded = subprocess.run(["zbarimg", "--raw", "-q", "-"], input=png, capture_output=True, check=True)
    assert decoded.stdout.decode().strip() == data["payment_uri"]
    assert data["payment_uri"].endswith(f"/transfer?address={data['deposit_address']}&uint256=19990000")

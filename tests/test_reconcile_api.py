"""The API of money that arrived wrong: ``transfers/`` (``?unmatched=1``, resolve) and ``refunds/`` (create, list,
retrieve, cancel, a pasted payment): JSON errors naming the field, Idempotency-Key, the OpenAPI schema."""

import json

import pytest
from rest_framework.test import APIClient

from payments_gateway.models import Event, Refund, Transfer
from payments_gateway.services.payments import refresh_session

from .factories import make_session, make_transfer, make_unmatched

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]

CUSTOMER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def post(client, path, body=None, **headers):
    return client.post(path, json.dumps(body or {}), content_type="application/json", headers=headers)


def overpaid():
    session = make_session(amount_due=10_000_000)
    make_transfer(session, 12_500_000, status="confirmed")
    return refresh_session(session.pk)


def assert_refused(response, field, fragment=""):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["fields"], error
    assert fragment in " ".join(error["fields"][field]), error


def test_list_transfers_and_only_the_unmatched_ones(api):
    session = overpaid()
    stray = make_unmatched(session)
    make_unmatched(None, dismissed := 3, resolution="dismissed")
    everything = api.get("/api/v1/transfers/").json()
    assert everything["count"] == 3
    unmatched = api.get("/api/v1/transfers/", {"unmatched": "1"}).json()["results"]
    assert [t["id"] for t in unmatched] == [stray.pk]
    (item,) = unmatched
    assert (item["asset"], item["amount"], item["reason"], item["resolution"]) == ("USDT", "5000000", "wrong_asset",
                                                                                    "open")  # fmt: skip
    assert item["session"] == str(session.uuid) and item["refunds"] == [] and item["from"]
    by_reason = api.get("/api/v1/transfers/", {"reason": "closed_session", "resolution": "dismissed"}).json()
    assert [t["amount"] for t in by_reason["results"]] == [str(dismissed)]
    assert api.get("/api/v1/transfers/", {"session": str(session.uuid)}).json()["count"] == 2
    assert_refused(api.get("/api/v1/transfers/", {"reason": "lost"}), "reason", "'lost' is not one of wrong_asset")
    assert_refused(api.get("/api/v1/transfers/", {"session": "nope"}), "session", "not a session uuid")
    assert api.get(f"/api/v1/transfers/{stray.pk}/").json()["id"] == stray.pk
    assert APIClient().get("/api/v1/transfers/").status_code == 401


def test_resolve_credit_dismiss_and_refund(api):
    old = make_session(amount_due=5_000_000, status="expired", asset="USDT")
    stray = make_unmatched(old, reason="after_late_window")
    new = make_session(order=old.order, amount_due=5_000_000, asset="USDT")
    url = f"/api/v1/transfers/{stray.pk}/resolve/"
    assert_refused(post(api, url, {"action": "credit"}), "session", "give the uuid")
    assert_refused(post(api, url, {"action": "steal"}), "action")
    credited = post(api, url, {"action": "credit", "session": str(new.uuid), "note": "same order"}, **{
        "Idempotency-Key": "credit-1"})  # fmt: skip
    assert credited.status_code == 200, credited.content
    assert (credited.json()["resolution"], credited.json()["session"]) == ("credited", str(new.uuid))
    new.refresh_from_db()
    assert new.status == "complete"
    replay = post(api, url, {"action": "credit", "session": str(new.uuid), "note": "same order"},
                  **{"Idempotency-Key": "credit-1"})  # fmt: skip
    assert replay.json() == credited.json() and replay["Idempotent-Replayed"] == "true"
    assert_refused(post(api, url, {"action": "dismiss", "note": "x"}), "transfer", "it is credited")

    other = make_unmatched()
    assert_refused(post(api, f"/api/v1/transfers/{other.pk}/resolve/", {"action": "dismiss"}), "note", "say why")
    dismissed = post(api, f"/api/v1/transfers/{other.pk}/resolve/", {"action": "dismiss", "note": "test transfer"})
    assert dismissed.json()["resolution"] == "dismissed" and dismissed.json()["resolution_note"] == "test transfer"

    third = make_unmatched()
    refunded = post(api, f"/api/v1/transfers/{third.pk}/resolve/", {"action": "refund", "address": CUSTOMER})
    assert refunded.json()["resolution"] == "refunded"
    (refund,) = refunded.json()["refunds"]
    assert (refund["status"], refund["amount"], refund["address"]) == ("initiated", "5000000", CUSTOMER)


def test_create_retrieve_list_and_cancel_a_refund(api):
    session = overpaid()
    response = post(api, "/api/v1/refunds/", {"session": str(session.uuid)}, **{"Idempotency-Key": "r-1"})
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["status"], data["amount"], data["amount_display"], data["asset"]) == (
        "awaiting_address", "2500000", "2.5", "USDC",
    )  # fmt: skip
    assert data["claim_url"].startswith("http://testserver/refund/") and data["payment_uri"] is None
    again = post(api, "/api/v1/refunds/", {"session": str(session.uuid)}, **{"Idempotency-Key": "r-1"})
    assert again.status_code == 201 and again.json()["uuid"] == data["uuid"]
    assert Refund.objects.count() == 1

    page = api.get(data["claim_url"].removeprefix("http://testserver"))
    assert page.status_code == 200 and "Refund of 2.5 USDC" in page.content.decode()

    second = post(api, "/api/v1/refunds/", {"session": str(session.uuid), "amount": "1000000", "address": CUSTOMER})
    assert second.json()["payment_uri"].endswith(f"/transfer?address={CUSTOMER}&uint256=1000000")
    assert api.get(f"/api/v1/refunds/{data['uuid']}/").json()["uuid"] == data["uuid"]
    listed = api.get("/api/v1/refunds/", {"status": "initiated"}).json()["results"]
    assert [r["uuid"] for r in listed] == [second.json()["uuid"]]
    assert api.get("/api/v1/refunds/", {"session": str(session.uuid)}).json()["count"] == 2

    canceled = post(api, f"/api/v1/refunds/{data['uuid']}/cancel/", {"reason": "store credit instead"})
    assert canceled.json()["status"] == "canceled"
    assert_refused(post(api, f"/api/v1/refunds/{data['uuid']}/cancel/"), "status", "cannot be canceled")
    events = Event.objects.filter(type__startswith="refund.").order_by("created", "pk")
    assert [e.type for e in events] == ["refund.initiated", "refund.canceled"]


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"amount": "99999999"}, "amount", "at most 12500000 base units"),
        ({"amount": "-5"}, "amount", "not a whole number of base units"),
        ({"amount": 1.5}, "amount", "not a whole number of base units"),
        ({"amount": "2.5"}, "amount", "not a whole number of base units"),
        ({"address": "0xabc"}, "address", "is not an address on test"),
        ({"address": "0x70997970c51812dc3A010C7d01b50e0d17dc79C8"}, "address", "checksum"),
        ({"session": "00000000-0000-0000-0000-000000000000"}, "session", "no session"),
        ({"session": None, "transfer": 987654}, "transfer", "no transfer 987654"),
        ({"reason": "a\u0000b"}, "reason", "cannot be stored"),
    ],
)
def test_bad_refund_input_is_a_400_naming_the_field_and_writes_nothing(api, body, field, fragment):
    session = overpaid()
    request = {"session": str(session.uuid)} | body
    assert_refused(post(api, "/api/v1/refunds/", {k: v for k, v in request.items() if v is not None}), field, fragment)
    assert not Refund.objects.exists()


def test_a_refund_of_a_reverted_transfer_is_refused(api):
    reverted = make_unmatched(status="reverted")
    assert_refused(post(api, "/api/v1/refunds/", {"transfer": reverted.pk}), "transfer", "was reverted")
    assert not Refund.objects.exists()
    assert Transfer.objects.get(pk=reverted.pk).resolution == "open"


def test_the_schema_documents_every_endpoint_and_status_code():
    schema = json.loads(APIClient().get("/api/v1/schema/", {"format": "json"}).content)
    paths = schema["paths"]
    expected = {
        "/api/v1/transfers/": ("get", {"200", "400", "401"}),
        "/api/v1/transfers/{id}/": ("get", {"200", "401", "404"}),
        "/api/v1/transfers/{id}/resolve/": ("post", {"200", "400", "401", "404", "409"}),
        "/api/v1/refunds/": ("post", {"201", "400", "401", "409"}),
        "/api/v1/refunds/{uuid}/": ("get", {"200", "401", "404"}),
        "/api/v1/refunds/{uuid}/cancel/": ("post", {"200", "400", "401", "404", "409"}),
        "/api/v1/refunds/{uuid}/payment/": ("post", {"200", "400", "401", "404", "409"}),
    }
    for path, (method, codes) in expected.items():
        operation = paths[path][method]
        assert codes <= set(operation["responses"]), (path, operation["responses"].keys())
        if method == "post":
            assert "Idempotency-Key" in {p["name"] for p in operation["parameters"]}, path
    assert "unmatched" in {p["name"] for p in paths["/api/v1/transfers/"]["get"]["parameters"]}

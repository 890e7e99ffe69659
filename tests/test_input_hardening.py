"""Bad input at the edge: text no database can store, and money written any way but plainly.

Each case was accepted before (a lone surrogate saved a session on SQLite, then stopped every webhook; "1_000" or
"١٠" became a price), so each test fails on the code before the fix.
"""

import json

import pytest
from django.core.exceptions import ValidationError

from payments_gateway.models import CheckoutSession, Customer, Event, Order, WebhookEndpoint
from payments_gateway.services.sessions import create_session

from .factories import make_session

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]

SESSION = {"amount": "19.99", "currency": "USD", "asset": "USDC", "network": "test", "reference": "H-1"}
LONE_SURROGATE = "\ud800"
NUL = "\x00"


def rows() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (CheckoutSession, Order, Event, Customer, WebhookEndpoint))


@pytest.mark.parametrize("bad", [LONE_SURROGATE, NUL], ids=["lone surrogate", "NUL"])
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/sessions/", SESSION | {"metadata": {"a": "{bad}"}}, "metadata"),
        ("/api/v1/sessions/", SESSION | {"metadata": {"{bad}": 1}}, "metadata"),
        ("/api/v1/sessions/", SESSION | {"metadata": {"list": ["ok", "{bad}"]}}, "metadata"),
        ("/api/v1/sessions/", SESSION | {"description": "tea{bad}"}, "description"),
        ("/api/v1/sessions/", SESSION | {"reference": "H{bad}"}, "reference"),
        ("/api/v1/sessions/", SESSION | {"success_url": "https://shop.example/{bad}"}, "success_url"),
        ("/api/v1/customers/", {"email": "a@example.com", "name": "A{bad}"}, "name"),
        ("/api/v1/customers/", {"email": "a@example.com", "metadata": {"k": "{bad}"}}, "metadata"),
        ("/api/v1/webhook-endpoints/", {"url": "https://shop.example/hook", "description": "{bad}"}, "description"),
    ],
)
def test_unstorable_text_in_any_json_field_is_a_400_naming_it_and_nothing_is_written(api, path, body, field, bad):
    before = rows()
    # json.dumps writes the lone surrogate as the escape "\ud800", as a client's JSON would carry it.
    text = json.dumps(body).replace("{bad}", json.dumps(bad)[1:-1])
    response = api.post(path, text, content_type="application/json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert list(error["fields"]) == [field]
    assert f"U+{ord(bad):04X}" in error["message"] and "cannot be stored" in error["message"]
    assert rows() == before


def test_the_service_refuses_unstorable_text_before_writing():
    with pytest.raises(ValidationError) as caught:
        create_session(**SESSION, metadata={"a": LONE_SURROGATE}, description="x" + NUL)
    assert set(caught.value.message_dict) == {"metadata", "description"}
    assert rows() == (0, 0, 0, 0, 0)


def test_the_hosted_page_customer_form_refuses_a_nul_in_the_name(client):
    session = make_session()
    page = client.post(f"/pay/{session.uuid}/customer", {"email": "a@example.com", "name": "A\x00"}, follow=True)
    assert "cannot be stored" in page.content.decode()
    assert not Customer.objects.exists() and not Event.objects.filter(type="customer.created").exists()


def test_the_admin_refuses_unstorable_metadata(admin_client):
    client = admin_client
    customer = Customer.objects.create(email="a@example.com")
    response = client.post(
        f"/admin/payments_gateway/customer/{customer.pk}/change/",
        {"email": "a@example.com", "name": "A", "metadata": '{"a": "\\ud800"}'},
    )
    assert response.status_code == 200  # the form again, with its error
    assert "cannot be stored" in response.content.decode()
    customer.refresh_from_db()
    assert customer.metadata == {}


@pytest.mark.parametrize(
    "amount", ["1_000", "١٠", "+10", "10.", ".5", "1e3", " 10", "10 ", "-1", "0x10", "Infinity", "NaN", "1,5", ""]
)
def test_money_is_ascii_digits_with_one_optional_decimal_point(api, amount):
    response = api.post("/api/v1/sessions/", SESSION | {"amount": amount}, format="json")
    assert response.status_code == 400, response.content
    messages = " ".join(response.json()["error"]["fields"]["amount"])
    assert 'like "19.99"' in messages or "may not be blank" in messages
    assert rows() == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(("amount", "due"), [("10", "10000000"), ("10.5", "10500000"), (10, "10000000")])
def test_plain_amounts_are_accepted(api, amount, due):
    response = api.post("/api/v1/sessions/", SESSION | {"amount": amount}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["amount_due"] == due

"""The customer's refund page ``/refund/<token>/``: a signed, expiring link; the address asked twice, checksummed,
on the network it names; the hosted pages' headers and rate limit."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from payments_gateway.models import Event, Refund
from payments_gateway.services.payments import refresh_session
from payments_gateway.services.refunds import claim_token, create_refund

from .factories import TEST_NETWORK, make_refund, make_session, make_transfer
from .test_checkout_i18n import LOCALES, _catalogue_msgids, text_of
from .test_hosted_page_headers import BARE_MIDDLEWARE, assert_protected

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]

CUSTOMER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture(autouse=True)
def fresh_counts():
    caches["default"].clear()


@pytest.fixture
def refund():
    session = make_session(amount_due=10_000_000)
    make_transfer(session, 12_500_000, status="confirmed")
    return create_refund(session=refresh_session(session.pk))


def url(refund):
    """The refund's link, made once per test: a token signed a second later is another link (and another client
    for the rate limit), as the merchant sending the customer a second link would make."""
    if not hasattr(refund, "link_for_test"):
        refund.link_for_test = reverse("payments_gateway:refund-claim", args=[claim_token(refund)])
    return refund.link_for_test


def give(client, refund, address, confirm=None):
    return client.post(url(refund), {"address": address, "confirm": address if confirm is None else confirm})


@override_settings(MIDDLEWARE=BARE_MIDDLEWARE)
def test_the_page_names_network_asset_and_amount_and_takes_a_checksummed_address_twice(client, refund):
    page = client.get(url(refund))
    assert_protected(page)
    text = page.content.decode()
    assert "Refund of 2.5 USDC" in text and "On the test network (chain id 31337)." in text
    assert 'name="address"' in text and 'name="confirm"' in text

    answer = give(client, refund, CUSTOMER)
    assert answer.status_code == 302 and answer["Location"] == url(refund)
    assert_protected(answer)
    refund.refresh_from_db()
    assert (refund.status, refund.address) == ("initiated", CUSTOMER)
    assert Event.objects.filter(type="refund.initiated").count() == 1
    done = client.get(url(refund)).content.decode()
    assert f"The shop will send the refund to {CUSTOMER}." in done and 'name="address"' not in done
    assert give(client, refund, CUSTOMER).status_code == 400  # it has an address now


@pytest.mark.parametrize(
    ("address", "confirm", "message"),
    [
        ("0x7099797", None, "is not an address on test (chain id 31337): 0x followed by 40 hexadecimal"),
        ("hello", None, "is not an address on test"),
        (CUSTOMER.lower(), None, "this address has no checksum (it is all lowercase)"),
        ("0x70997970c51812dc3A010C7d01b50e0d17dc79C8", None, "capital letters do not match its checksum"),
        (CUSTOMER, CUSTOMER[:-1] + "9", "the two addresses differ: enter the same address twice."),
    ],
)
def test_a_malformed_unchecksummed_or_mistyped_address_is_refused_with_a_clear_message(
    client, refund, address, confirm, message
):
    answer = give(client, refund, address, confirm)
    assert answer.status_code == 400
    assert message in answer.content.decode()
    refund.refresh_from_db()
    assert (refund.status, refund.address) == ("awaiting_address", "")
    assert not Event.objects.filter(type="refund.initiated").exists()


def test_the_link_expires_and_a_forged_one_is_unknown(client, refund, settings):
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "REFUND_LINK_TTL": timedelta(hours=1)}
    old = reverse("payments_gateway:refund-claim", args=[claim_token(refund, now=timezone.now() - timedelta(hours=2))])
    expired = client.get(old)
    assert expired.status_code == 410 and "This refund link has expired" in expired.content.decode()
    assert client.post(old, {"address": CUSTOMER, "confirm": CUSTOMER}).status_code == 410
    recent = claim_token(refund, now=timezone.now() - timedelta(minutes=50))
    assert client.get(reverse("payments_gateway:refund-claim", args=[recent])).status_code == 200
    forged = recent[:-2] + ("AA" if not recent.endswith("AA") else "BB")
    assert client.get(reverse("payments_gateway:refund-claim", args=[forged])).status_code == 404
    refund.refresh_from_db()
    assert refund.status == "awaiting_address"


def test_the_form_is_rate_limited(client, refund):
    for _ in range(30):
        assert give(client, refund, "0x1234").status_code == 400
    limited = give(client, refund, CUSTOMER)
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    refund.refresh_from_db()
    assert refund.status == "awaiting_address"


def test_the_page_carries_the_shop_s_branding_and_speaks_the_customer_s_language(client, refund, settings):
    settings.PAYMENTS_GATEWAY = settings.PAYMENTS_GATEWAY | {"CHECKOUT_BRANDING": {"name": "Mug Shop"}}
    german = client.get(url(refund), HTTP_ACCEPT_LANGUAGE="de-AT,de;q=0.9")
    assert german.status_code == 200 and german["Content-Language"] == "de"
    text = text_of(german)
    assert "Mug Shop" in text and "Erstattung von 2,5 USDC" in text and "Im Netzwerk test (Chain-ID 31337)." in text
    switcher = re.findall(r'<a href="([^"]+)" lang="(\w+)" hreflang="\w+"', german.content.decode())
    assert [lang for _, lang in switcher] == ["en", "de", "es", "fr"]
    assert all(link.startswith(url(refund) + "?lang=") for link, _ in switcher)

    # The form keeps the language it was shown in: its refusal, and the page after it, are in French too.
    refused = client.post(url(refund) + "?lang=fr", {"address": CUSTOMER.lower(), "confirm": CUSTOMER.lower()})
    assert refused.status_code == 400 and "cette adresse n'a pas de somme de contrôle" in text_of(refused)
    answer = client.post(url(refund) + "?lang=fr", {"address": CUSTOMER, "confirm": CUSTOMER})
    assert answer.status_code == 302 and answer["Location"] == url(refund) + "?lang=fr"
    assert f"Merci. La boutique enverra le remboursement à {CUSTOMER}." in text_of(client.get(answer["Location"]))


def test_every_state_of_the_refund_page_is_translated(client, refund, settings, use_networks):
    use_networks(test=TEST_NETWORK | {"explorer_url": "https://scan.example"})
    expired = reverse(
        "payments_gateway:refund-claim", args=[claim_token(refund, now=timezone.now() - timedelta(days=8))]
    )
    others = {status: make_refund(make_session(), status=status, address=CUSTOMER) for status in
              ("initiated", "completed", "canceled")}  # fmt: skip
    Refund.objects.filter(pk=others["completed"].pk).update(tx_hash="0x" + "ab" * 32)
    pages = [url(refund), expired, *(url(r) for r in others.values())]
    english = {m for m in _catalogue_msgids() if " " in m and "%" not in m and "<" not in m}
    for language in LOCALES:
        for page in pages:
            visible = text_of(client.get(page, {"lang": language}))
            assert {m for m in english if m in visible} == set(), (language, page)
    completed = client.get(url(others["completed"])).content.decode()
    assert 'href="https://scan.example/tx/0x' + "ab" * 32 + '"' in completed

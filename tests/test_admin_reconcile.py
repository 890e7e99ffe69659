"""The merchant's admin for money that arrived wrong: "Needs attention" (filters; credit, refund, dismiss), refunds
(EIP-681 URI and QR, claim link, pasted payment, cancel), "Refund the excess" in one click, the dashboard; every
action on money in Django's admin log with its reason; customer edits announced."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from payments_gateway.models import CheckoutSession, Event, Refund, Transfer
from payments_gateway.services.payments import refresh_session
from payments_gateway.services.refunds import create_refund
from payments_gateway.services.sessions import create_session
from payments_gateway.webhooks.outgoing.delivery import redeliver

from .factories import make_customer, make_delivery, make_session, make_transfer, make_unmatched

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]

CUSTOMER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
NEEDS_ATTENTION = "/admin/payments_gateway/unmatchedtransfer/"


def logged(obj) -> list[str]:
    """The admin log messages about ``obj``, oldest first."""
    entries = LogEntry.objects.filter(object_id=str(obj.pk)).order_by("action_time", "pk")
    return [e.change_message for e in entries if e.content_type.model_class()._meta.concrete_model is
            type(obj)._meta.concrete_model]  # fmt: skip


def overpaid():
    session = make_session(amount_due=10_000_000)
    make_transfer(session, 12_500_000, status="confirmed")
    return refresh_session(session.pk)


def test_needs_attention_lists_open_ones_and_filters(admin_client):
    session = make_session()
    open_one = make_unmatched(session, 5_000_000)
    dismissed = make_unmatched(None, 7, asset="ETH", resolution="dismissed")
    make_unmatched(None, 9, status="reverted")
    make_transfer(session, 1)  # pays its session: not listed

    listed = admin_client.get(NEEDS_ATTENTION).context["cl"].result_list
    assert [t.pk for t in listed] == [open_one.pk]
    every = admin_client.get(NEEDS_ATTENTION, {"resolution": "all"}).context["cl"].result_list
    assert {t.pk for t in every} == {open_one.pk, dismissed.pk}
    for query, expected in (({"reason__exact": "wrong_asset", "resolution": "all"}, [open_one.pk]),
                            ({"asset": "ETH", "resolution": "dismissed"}, [dismissed.pk]),
                            ({"network": "test"}, [open_one.pk])):  # fmt: skip
        assert [t.pk for t in admin_client.get(NEEDS_ATTENTION, query).context["cl"].result_list] == expected


def test_credit_to_a_session_logs_the_reason_and_completes_it(admin_client):
    old = make_session(status="expired")
    stray = make_unmatched(old, 10_000_000, asset="USDC", reason="after_late_window")
    new = make_session(order=old.order)
    page = admin_client.get(f"{NEEDS_ATTENTION}{stray.pk}/change/").content.decode()
    assert f"{stray.pk}/credit/" in page and f"{stray.pk}/refund/" in page and f"{stray.pk}/dismiss/" in page

    url = f"{NEEDS_ATTENTION}{stray.pk}/credit/"
    assert str(new.uuid) in admin_client.get(url).content.decode()  # offered as a candidate
    bad = admin_client.post(url, {"session": str(make_session(status="canceled").uuid)})
    assert bad.status_code == 400 and "is canceled" in bad.content.decode()
    answer = admin_client.post(url, {"session": str(new.uuid), "note": "customer paid the old link"})
    assert answer.status_code == 302
    assert CheckoutSession.objects.get(pk=new.pk).status == "complete"
    assert logged(stray) == [f"Credited to session {new.uuid}. Reason: customer paid the old link"]
    assert Transfer.objects.get(pk=stray.pk).resolved_by.username == "admin"


def test_dismiss_needs_a_note_and_is_logged(admin_client):
    stray = make_unmatched()
    url = f"{NEEDS_ATTENTION}{stray.pk}/dismiss/"
    assert admin_client.post(url, {"note": ""}).status_code == 400
    assert admin_client.post(url, {"note": "airdrop spam"}).status_code == 302
    assert Transfer.objects.get(pk=stray.pk).resolution == "dismissed"
    assert logged(stray) == ["Dismissed. Reason: airdrop spam"]


def test_refund_a_transfer_then_the_refund_page_shows_uri_qr_and_takes_the_payment(admin_client):
    stray = make_unmatched(None, 5_000_000, asset="USDC")
    url = f"{NEEDS_ATTENTION}{stray.pk}/refund/"
    assert 'value="5000000"' in admin_client.get(url).content.decode()  # the default amount
    assert "not a whole number" in admin_client.post(url, {"amount": "1.5", "address": CUSTOMER}).content.decode()
    answer = admin_client.post(url, {"amount": "5000000", "address": CUSTOMER, "reason": "sent to a closed cart"})
    refund = Refund.objects.get()
    assert answer["Location"] == reverse("admin:payments_gateway_refund_change", args=[refund.pk])
    assert logged(stray) == [f"Refund {refund.uuid} of 5000000 created. Reason: sent to a closed cart"]

    page = admin_client.get(answer["Location"]).content.decode()
    assert f"/transfer?address={CUSTOMER}&amp;uint256=5000000" in page
    assert 'id="refund-qr" src="data:image/png;base64,' in page
    payment = admin_client.post(reverse("admin:payments_gateway_refund_payment", args=[refund.pk]), {"tx_hash": "0x12"})
    assert payment.status_code == 400 and "0x followed by 64 hexadecimal characters" in payment.content.decode()
    unreachable = admin_client.post(reverse("admin:payments_gateway_refund_payment", args=[refund.pk]),
                                    {"tx_hash": "0x" + "ab" * 32})  # fmt: skip
    assert unreachable.status_code == 400 and "cannot be checked on chain now" in unreachable.content.decode()
    cancel = reverse("admin:payments_gateway_refund_cancel", args=[refund.pk])
    assert admin_client.post(cancel, {"note": "customer wants store credit"}).status_code == 302
    assert Refund.objects.get().status == "canceled"
    assert logged(refund) == ["Canceled. Reason: customer wants store credit"]
    assert Transfer.objects.get(pk=stray.pk).resolution == "open"


def test_refund_the_excess_in_one_click_and_not_twice(admin_client):
    session = overpaid()
    change = reverse("admin:payments_gateway_checkoutsession_change", args=[session.pk])
    page = admin_client.get(change).content.decode()
    url = reverse("admin:payments_gateway_session_refund_excess", args=[session.pk])
    assert f'formaction="{url}"' in page and "Refund the excess (2500000)" in page

    answer = admin_client.post(url)
    refund = Refund.objects.get()
    assert (refund.amount, refund.status, refund.session_id) == (2_500_000, "awaiting_address", session.pk)
    assert answer["Location"] == reverse("admin:payments_gateway_refund_change", args=[refund.pk])
    refund_page = admin_client.get(answer["Location"]).content.decode()
    assert 'id="claim-link">http://testserver/refund/' in refund_page
    assert logged(session) == [f"Refund {refund.uuid} of the excess (2500000) created."]

    again = admin_client.post(url, follow=True)
    assert "refunded already" in again.content.decode()
    assert Refund.objects.count() == 1
    assert "(refunded)" in admin_client.get(change).content.decode()


def test_expire_and_redeliver_write_the_admin_log(admin_client):
    session = create_session(amount="3.00", currency="USD", asset="USDC", network="test")
    admin_client.post("/admin/payments_gateway/checkoutsession/", {"action": "expire",
                                                                     "_selected_action": [session.pk]})  # fmt: skip
    assert logged(session) == ["Expired by the merchant (admin action “Expire”)."]
    delivery = make_delivery()
    redeliver(delivery.event)
    admin_client.post("/admin/payments_gateway/event/", {"action": "redeliver",
                                                          "_selected_action": [delivery.event.pk]})  # fmt: skip
    assert logged(delivery.event) == ["Redelivered by the merchant to 1 endpoint(s)."]
    admin_client.post("/admin/payments_gateway/webhookdelivery/", {"action": "redeliver",
                                                                    "_selected_action": [delivery.pk]})  # fmt: skip
    assert logged(delivery) == [f"Redelivered by the merchant to {delivery.endpoint.url}."]


def test_the_dashboard_shows_what_needs_attention(admin_client):
    session = make_session()
    make_unmatched(session, 5_000_000)
    make_unmatched(session, 2_000_000)
    page = admin_client.get(reverse("admin:payments_gateway_dashboard")).content.decode()
    assert 'data-asset="USDT" data-count="2" data-units="7000000"' in page
    assert NEEDS_ATTENTION in page


def test_customer_edits_in_the_admin_are_announced(admin_client):
    customer = make_customer(email="old@example.com", name="Old")
    url = reverse("admin:payments_gateway_customer_change", args=[customer.pk])
    admin_client.post(url, {"email": "new@example.com", "name": "Old", "metadata": "{}"})
    (event,) = Event.objects.filter(type="customer.updated")
    assert (event.data["uuid"], event.data["email"]) == (str(customer.uuid), "new@example.com")
    admin_client.post(url, {"email": "new@example.com", "name": "Old", "metadata": "{}"})  # no change: no event
    assert Event.objects.filter(type="customer.updated").count() == 1
    added = admin_client.post(reverse("admin:payments_gateway_customer_add"),
                              {"email": "added@example.com", "name": "", "metadata": "{}"})  # fmt: skip
    assert added.status_code == 302
    (created,) = Event.objects.filter(type="customer.created")
    assert created.data["email"] == "added@example.com"


def test_a_refund_created_through_the_service_shows_on_its_session(admin_client):
    session = overpaid()
    refund = create_refund(session=session, address=CUSTOMER)
    page = admin_client.get(reverse("admin:payments_gateway_checkoutsession_change", args=[session.pk]))
    assert str(refund.uuid) in page.content.decode()

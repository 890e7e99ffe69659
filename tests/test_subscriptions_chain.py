"""End to end on anvil: a daily subscription's first payment and its renewal, real USDC transfers found by the
scanner; the renewal opens at once (three days' notice is longer than a day's period) and is paid the same way."""

import pytest

from payments_gateway.models import Event, Subscription
from payments_gateway.scanning import scan_network
from payments_gateway.services.subscriptions import create_subscription_session, renew_due_subscriptions

pytestmark = [pytest.mark.anvil, pytest.mark.django_db]


@pytest.fixture
def gateway(anvil_settings, settings):
    settings.PAYMENTS_GATEWAY = anvil_settings | {"PUBLIC_URL": "https://shop.example"}
    scan_network("anvil")  # catch up to the head before anything is paid


def pay_and_confirm(chain, session):
    chain.send_token("USDC", session.deposit_address.address, session.amount_due)
    scan_network("anvil")
    chain.mine(1)  # the network wants 2 confirmations
    scan_network("anvil")


def test_a_renewal_paid_on_chain_renews_the_subscription(gateway, chain, django_capture_on_commit_callbacks,
                                                        mailoutbox):  # fmt: skip
    first = create_subscription_session(amount="3.00", currency="USD", asset="USDC", network="anvil",
                                        interval="day", customer_email="club@example.com")  # fmt: skip
    pay_and_confirm(chain, first)
    subscription = Subscription.objects.get()
    assert subscription.status == "active"
    first_end = subscription.current_period_end

    with django_capture_on_commit_callbacks(execute=True):
        assert renew_due_subscriptions()["renewals"] == 1
    renewal = subscription.periods.get(number=2).session
    assert renewal.type == "renewSubscription" and renewal.network == "anvil" and renewal.asset == "USDC"
    assert f"/pay/{renewal.uuid}/" in mailoutbox[0].body

    pay_and_confirm(chain, renewal)
    renewal.refresh_from_db()
    subscription.refresh_from_db()
    assert (renewal.status, renewal.payment_status) == ("complete", "paid")
    assert subscription.status == "active" and subscription.current_period_start == first_end
    renewed = Event.objects.get(type="subscription.renewed")
    assert renewed.session == renewal and renewed.data["latest_session"] == str(renewal.uuid)
    assert Event.objects.filter(type="payment.completed", session=renewal).get().data["type"] == "renewSubscription"

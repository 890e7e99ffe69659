"""Refunds: what can be refunded, bad input refused before any write, the lifecycle and its events, concurrency."""

import pytest
from django.core.exceptions import ValidationError
from eth_utils import to_checksum_address

from payments_gateway.models import Event, Refund
from payments_gateway.services.payments import refresh_session
from payments_gateway.services.refunds import (
    cancel_refund,
    create_refund,
    default_amount,
    refund_uri,
    refundable,
    set_refund_address,
)
from tests.concurrency import run_together

from .factories import TEST_NETWORK, make_session, make_transfer, make_unmatched

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]

CUSTOMER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # EIP-55


def paid(amount_due=10_000_000, received=12_500_000):
    session = make_session(amount_due=amount_due)
    make_transfer(session, received, status="confirmed")
    return refresh_session(session.pk)


def refused(field, **kwargs):
    """create_refund(**kwargs) raises a ValidationError naming ``field``, and writes nothing."""
    before = (Refund.objects.count(), Event.objects.count())
    with pytest.raises(ValidationError) as info:
        create_refund(**kwargs)
    assert field in info.value.message_dict, info.value.message_dict
    assert (Refund.objects.count(), Event.objects.count()) == before
    return info.value.message_dict[field][0]


def test_defaults_the_excess_of_an_overpayment_then_the_rest_never_more():
    session = paid()
    assert (default_amount(session=session), refundable(session=session)) == (2_500_000, 12_500_000)
    excess = create_refund(session=session)
    assert (excess.amount, excess.status, excess.asset, excess.network) == (2_500_000, "awaiting_address", "USDC",
                                                                            "test")  # fmt: skip
    # The excess is refunded: a second "refund the excess" refunds nothing more; the payment itself only when
    # asked for.
    assert (default_amount(session=session), refundable(session=session)) == (0, 10_000_000)
    assert "the excess of session" in refused("amount", session=session)
    message = refused("amount", session=session, amount=10_000_001)
    assert message == "at most 10000000 base units of USDC can be refunded on session " + f"{session.uuid}."
    create_refund(session=session, amount="10000000")
    assert "nothing is left to refund" in refused("session", session=session)
    # A canceled refund gives its amount back.
    cancel_refund(excess)
    assert refundable(session=session) == 2_500_000


def test_a_partial_payment_and_an_unmatched_transfer_refund_in_full():
    session = make_session(amount_due=10_000_000)
    make_transfer(session, 4_000_000, status="confirmed")
    assert default_amount(session=refresh_session(session.pk)) == 4_000_000
    stray = make_unmatched(session, 5_000_000)
    refund = create_refund(transfer=stray, address=CUSTOMER, reason="wrong token")
    stray.refresh_from_db()
    assert (refund.amount, refund.asset, refund.status) == (5_000_000, "USDT", "initiated")
    assert (stray.resolution, stray.resolution_note) == ("refunded", "wrong token")


@pytest.mark.parametrize("amount", [-1, 0, "-1", "1.5", 1.5, "1e3", "", " 5", "١٠", True, [5], 2**256])
def test_an_amount_that_is_not_a_positive_whole_number_of_base_units_is_refused(amount):
    refused("amount", session=paid(), amount=amount)


def test_a_transfer_that_was_reverted_unconfirmed_or_pays_its_session_is_refused():
    session = make_session(amount_due=10_000_000)
    assert "was reverted" in refused("transfer", transfer=make_unmatched(session, status="reverted"))
    assert "not confirmed yet" in refused("transfer", transfer=make_unmatched(session, status="detected"))
    matched = make_transfer(session, 10_000_000, status="confirmed")
    assert "refund the session instead" in refused("transfer", transfer=matched)
    assert "give a session or a transfer" in refused("session")


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("0x1234", "is not an address on test (chain id 31337)"),
        ("70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x followed by 40 hexadecimal characters"),
        ("0x70997970c51812dc3A010C7d01b50e0d17dc79C8", "do not match its checksum"),
    ],
)
def test_a_malformed_or_wrongly_checksummed_address_is_refused(address, fragment):
    assert fragment in refused("address", session=paid(), address=address)


def test_the_merchant_may_give_a_lowercase_address_the_customer_may_not():
    session = paid()
    refund = create_refund(session=session, address=CUSTOMER.lower())
    assert refund.address == CUSTOMER
    waiting = create_refund(session=session, amount=1)
    with pytest.raises(ValidationError, match="no checksum"):
        set_refund_address(waiting, CUSTOMER.lower(), CUSTOMER.lower())
    with pytest.raises(ValidationError) as info:
        set_refund_address(waiting, CUSTOMER, CUSTOMER.replace("C8", "C9"))
    assert info.value.message_dict == {"confirm": ["the two addresses differ: enter the same address twice."]}
    with pytest.raises(ValidationError, match="the shop's own deposit addresses"):
        set_refund_address(waiting, session.address, session.address, merchant=True)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.address) == ("awaiting_address", "")


def test_events_initiated_when_the_address_is_known_and_canceled():
    session = paid()
    refund = create_refund(session=session)
    assert not Event.objects.filter(type__startswith="refund.").exists()
    set_refund_address(refund, CUSTOMER, CUSTOMER)
    cancel_refund(refund, reason="customer asked for store credit")
    events = Event.objects.filter(type__startswith="refund.").order_by("created", "pk")
    assert [(e.type, e.data["status"], e.data["address"]) for e in events] == [
        ("refund.initiated", "initiated", CUSTOMER),
        ("refund.canceled", "canceled", CUSTOMER),
    ]
    assert events[0].session_id == session.pk and events[0].data["amount"] == "2500000"
    with pytest.raises(ValidationError, match="is canceled; it cannot be canceled"):
        cancel_refund(refund)


def test_canceling_the_refund_of_a_transfer_puts_it_back_in_the_list():
    stray = make_unmatched()
    cancel_refund(create_refund(transfer=stray))
    stray.refresh_from_db()
    assert stray.resolution == "open"


def test_eip_681_uris_for_the_merchant_wallet():
    session = paid()
    token = create_refund(session=session, address=CUSTOMER)
    assert refund_uri(token) == (
        f"ethereum:{to_checksum_address(TEST_NETWORK['tokens']['USDC']['address'])}@31337/transfer"
        f"?address={CUSTOMER}&uint256=2500000"
    )
    eth = make_session(asset="ETH", amount_due=10**16)
    make_transfer(eth, 2 * 10**16, status="confirmed")
    refund = create_refund(session=refresh_session(eth.pk), address=CUSTOMER)
    assert refund_uri(refund) == f"ethereum:{CUSTOMER}@31337?value={10**16}"
    unknown = to_checksum_address("0x" + "ab" * 20)
    stray = make_unmatched(None, 7, asset=unknown, token_address=unknown, reason="unknown_token")
    assert refund_uri(create_refund(transfer=stray, address=CUSTOMER)) == (
        f"ethereum:{unknown}@31337/transfer?address={CUSTOMER}&uint256=7"
    )


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refunds_of_the_same_excess_cannot_both_be_created():
    session = paid()

    def attempt(refund):
        try:
            return refund().amount
        except ValidationError as exc:
            return next(iter(exc.message_dict))

    # Clicks on "Refund the excess" at the same moment: one refund of the excess.
    results = run_together(4, lambda i: attempt(lambda: create_refund(session=session)))
    assert sorted(results, key=str) == [2_500_000, "amount", "amount", "amount"]
    # Refunds that together exceed what is left (10 USDC): one of them.
    results = run_together(4, lambda i: attempt(lambda: create_refund(session=session, amount=6_000_000)))
    assert sorted(results, key=str) == [6_000_000, "amount", "amount", "amount"]
    assert sorted(Refund.objects.filter(session=session).values_list("amount", flat=True)) == [2_500_000, 6_000_000]

"""The README documents every event type with an example that matches what the gateway sends."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from payments_gateway.models.outgoing import EVENT_TYPES
from payments_gateway.webhooks.outgoing.samples import sample_data, unchosen_payment_sample

README = Path(__file__).resolve().parent.parent / "README.md"


def _documented() -> dict[str, dict]:
    text = README.read_text()
    blocks = re.findall(r"#### `([a-z._]+)`\n\n.+?\n\n```json\n(.+?)\n```", text, flags=re.S)
    return {name: json.loads(body) for name, body in blocks}


def test_every_event_type_is_documented():
    assert sorted(_documented()) == sorted(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_readme_example_is_the_payload_a_test_event_carries(event_type):
    assert _documented()[event_type] == sample_data(event_type)


@pytest.mark.django_db
def test_payment_sample_has_the_shape_of_a_live_payment_event():
    from payments_gateway.services.payloads import session_payload

    from .factories import make_session

    assert set(sample_data("payment.completed")) == set(session_payload(make_session()))


def test_readme_example_before_a_choice_is_the_payload_of_such_a_session():
    block = re.search(r"<!-- before a choice -->\n```json\n(.+?)\n```", README.read_text(), flags=re.S)
    assert json.loads(block.group(1)) == unchosen_payment_sample()


@pytest.mark.django_db
def test_payment_created_before_a_choice_has_the_shape_of_the_readme_example(test_gateway):
    from payments_gateway.models import Event
    from payments_gateway.services.sessions import create_session

    session = create_session(amount="79.00", currency="USD")
    data = Event.objects.get(session=session, type="payment.created").data
    assert set(data) == set(unchosen_payment_sample())
    assert data["payment_methods"] == [
        {"network": "test", "asset": "ETH", "chain_id": 31337, "decimals": 18},
        {"network": "test", "asset": "USDC", "chain_id": 31337, "decimals": 6},
    ]
    assert [data[k] for k in ("network", "asset", "amount_due", "deposit_address")] == [None] * 4

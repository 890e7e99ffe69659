"""The subscription settings come after main's keys in ``DEFAULTS`` (check ids E024-E028, as the README's table
says), and each mistake is named with its key and fix, when read and in ``manage.py check`` alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from payments_gateway.checks import CHECK_IDS
from payments_gateway.conf import DEFAULTS, gateway_settings

from .factories import TEST_NETWORK, TEST_XPUB

SUBSCRIPTION_KEYS = ["RENEWAL_NOTICE", "SUBSCRIPTION_GRACE", "SUBSCRIPTION_AFTER_GRACE", "SUBSCRIPTION_REMINDERS",
                     "PUBLIC_URL"]  # fmt: skip

MISTAKES = {
    "notice of minutes": (
        {"RENEWAL_NOTICE": timedelta(minutes=5)},
        "PAYMENTS_GATEWAY['RENEWAL_NOTICE'] must be between 1 hour and 60 days",
        "E024",
    ),
    "grace of a season": (
        {"SUBSCRIPTION_GRACE": timedelta(days=91)},
        "PAYMENTS_GATEWAY['SUBSCRIPTION_GRACE'] must be between 0 and 90 days",
        "E025",
    ),
    "after grace misspelt": (
        {"SUBSCRIPTION_AFTER_GRACE": "cancelled"},
        "PAYMENTS_GATEWAY['SUBSCRIPTION_AFTER_GRACE'] must be 'canceled' (the subscription ends) or 'unpaid'",
        "E026",
    ),
    "reminders not a bool": (
        {"SUBSCRIPTION_REMINDERS": "yes"},
        "PAYMENTS_GATEWAY['SUBSCRIPTION_REMINDERS'] must be True or False",
        "E027",
    ),
    "public url with a path": (
        {"PUBLIC_URL": "https://shop.example/pay"},
        "PAYMENTS_GATEWAY['PUBLIC_URL'] must be the scheme and host customers reach your site at",
        "E028",
    ),
}


def config(**changes):
    return {"XPUB": TEST_XPUB, "NETWORKS": {"test": TEST_NETWORK}} | changes


def test_the_subscription_keys_follow_refund_link_ttl_with_the_next_ids():
    keys = list(DEFAULTS)
    start = keys.index("REFUND_LINK_TTL") + 1
    assert keys[start : start + len(SUBSCRIPTION_KEYS)] == SUBSCRIPTION_KEYS
    assert [CHECK_IDS[key] for key in ["REFUND_LINK_TTL", *SUBSCRIPTION_KEYS]] == [
        f"payments_gateway.E0{n}" for n in range(23, 29)
    ]


@pytest.mark.parametrize("case", MISTAKES)
def test_a_subscription_setting_mistake_is_named_when_read_and_in_check(case):
    changes, message, check_id = MISTAKES[case]
    with override_settings(PAYMENTS_GATEWAY=config(**changes)):
        with pytest.raises(ImproperlyConfigured) as raised:
            gateway_settings.check_all()
        found = [(m.id, m.msg) for m in run_checks(tags=["payments_gateway"]) if m.is_serious()]
    assert message in str(raised.value)
    assert found == [(f"payments_gateway.{check_id}", str(raised.value))]


def test_good_subscription_settings_are_read_as_given():
    good = config(RENEWAL_NOTICE=timedelta(days=5), SUBSCRIPTION_GRACE=timedelta(0), SUBSCRIPTION_AFTER_GRACE="unpaid",
                  SUBSCRIPTION_REMINDERS=False, PUBLIC_URL="https://shop.example/")  # fmt: skip
    with override_settings(PAYMENTS_GATEWAY=good):
        gateway_settings.check_all()
        read = [getattr(gateway_settings, key) for key in SUBSCRIPTION_KEYS]
    assert read == [timedelta(days=5), timedelta(0), "unpaid", False, "https://shop.example"]

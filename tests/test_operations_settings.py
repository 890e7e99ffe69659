"""The operations settings come after the subscription keys in ``DEFAULTS`` (check ids E029-E031, as the README's
table says); each mistake is named with its key and fix, when read and in ``manage.py check`` alike, and a metrics
token is never echoed in the message."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings

from payments_gateway.checks import CHECK_IDS
from payments_gateway.conf import DEFAULTS, gateway_settings

from .settings_cases import assert_named_mistake, config

OPERATIONS_KEYS = ["METRICS_TOKEN", "SCANNER_LAG_LIMIT", "DELIVERY_DELAY_LIMIT"]

MISTAKES = {
    "token too short": (
        {"METRICS_TOKEN": "hunter2hunter2"},
        "PAYMENTS_GATEWAY['METRICS_TOKEN'] is 14 characters long; use at least 16",
        "E029",
    ),
    "token with a space": (
        {"METRICS_TOKEN": "correct horse battery staple"},
        "PAYMENTS_GATEWAY['METRICS_TOKEN'] must be visible ASCII characters without spaces",
        "E029",
    ),
    "token not a string": (
        {"METRICS_TOKEN": 12345678901234567890},
        "PAYMENTS_GATEWAY['METRICS_TOKEN'] must be a string (or None to turn /metrics off), not int",
        "E029",
    ),
    "scanner lag of seconds": (
        {"SCANNER_LAG_LIMIT": 5},
        "PAYMENTS_GATEWAY['SCANNER_LAG_LIMIT'] must be between 30 seconds and 1 day, not 0:00:05",
        "E030",
    ),
    "scanner lag negative": (
        {"SCANNER_LAG_LIMIT": -60},
        "PAYMENTS_GATEWAY['SCANNER_LAG_LIMIT'] must be a timedelta or a whole number of seconds",
        "E030",
    ),
    "delivery delay of a week": (
        {"DELIVERY_DELAY_LIMIT": timedelta(days=7)},
        "PAYMENTS_GATEWAY['DELIVERY_DELAY_LIMIT'] must be between 1 minute and 1 day, not 7 days",
        "E031",
    ),
    "delivery delay as text": (
        {"DELIVERY_DELAY_LIMIT": "10m"},
        "PAYMENTS_GATEWAY['DELIVERY_DELAY_LIMIT'] must be a timedelta or a whole number of seconds",
        "E031",
    ),
}


def test_the_operations_keys_follow_public_url_with_the_next_ids():
    keys = list(DEFAULTS)
    start = keys.index("PUBLIC_URL") + 1
    assert keys[start : start + len(OPERATIONS_KEYS)] == OPERATIONS_KEYS
    assert [CHECK_IDS[key] for key in OPERATIONS_KEYS] == ["payments_gateway.E029", "payments_gateway.E030",
                                                           "payments_gateway.E031"]  # fmt: skip


@pytest.mark.parametrize("case", MISTAKES)
def test_an_operations_setting_mistake_is_named_when_read_and_in_check(case):
    changes, message, check_id = MISTAKES[case]
    text = assert_named_mistake(changes, message, check_id)
    token = changes.get("METRICS_TOKEN")
    if isinstance(token, str):
        assert token not in text  # a secret, even a bad one, is never echoed


def test_good_operations_settings_are_read_as_given_and_the_defaults_are_sane():
    good = config(METRICS_TOKEN="s3cr3t-scrape-token-0123456789", SCANNER_LAG_LIMIT=120,
                  DELIVERY_DELAY_LIMIT=timedelta(minutes=30))  # fmt: skip
    with override_settings(PAYMENTS_GATEWAY=good):
        gateway_settings.check_all()
        read = [getattr(gateway_settings, key) for key in OPERATIONS_KEYS]
    assert read == ["s3cr3t-scrape-token-0123456789", timedelta(minutes=2), timedelta(minutes=30)]
    with override_settings(PAYMENTS_GATEWAY=config()):
        assert [getattr(gateway_settings, key) for key in OPERATIONS_KEYS] == [
            None,
            timedelta(minutes=5),
            timedelta(minutes=10),
        ]

"""Shared by the settings tests: what a mistake in ``PAYMENTS_GATEWAY`` produces when read and in ``manage.py
check``."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from payments_gateway.conf import gateway_settings

from .factories import TEST_NETWORK, TEST_XPUB


def config(**changes) -> dict:
    """A valid ``PAYMENTS_GATEWAY`` (the test xpub and network) with ``changes``."""
    return {"XPUB": TEST_XPUB, "NETWORKS": {"test": TEST_NETWORK}} | changes


def assert_named_mistake(changes: dict, message: str, check_id: str) -> str:
    """Reading ``config(**changes)`` raises an error containing ``message``, and ``manage.py check`` reports that
    same text, alone, as ``payments_gateway.<check_id>``; returns the text."""
    with override_settings(PAYMENTS_GATEWAY=config(**changes)):
        with pytest.raises(ImproperlyConfigured) as raised:
            gateway_settings.check_all()
        found = [(m.id, m.msg) for m in run_checks(tags=["payments_gateway"]) if m.is_serious()]
    assert message in str(raised.value)
    assert found == [(f"payments_gateway.{check_id}", str(raised.value))]
    return str(raised.value)

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from payments_gateway.chain.devchain import start_devchain

from .factories import TEST_NETWORK, TEST_XPUB


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(scope="session")
def devchain():
    """One anvil for the whole test session, with the test tokens, Multicall3 and the ETH/USD feed deployed.

    A missing anvil makes every test that uses it fail (run `make setup`); it is never skipped. Tests that send
    transactions should use ``chain`` instead, which reverts the chain after the test.
    """
    chain = start_devchain()
    try:
        yield chain
    finally:
        chain.stop()


@pytest.fixture
def chain(devchain):
    """The session's dev chain, returned to its previous state (evm_snapshot / evm_revert) after the test."""
    snapshot = devchain.snapshot()
    try:
        yield devchain
    finally:
        devchain.revert(snapshot)


@pytest.fixture
def anvil_settings(chain):
    """``PAYMENTS_GATEWAY`` pointing at the dev chain as network "anvil" (2 confirmations), with the test xpub.

    Yields the settings dict; chain state is reverted after the test (it builds on ``chain``).
    """
    config = {
        **settings.PAYMENTS_GATEWAY,
        "XPUB": TEST_XPUB,
        "NETWORKS": {"anvil": chain.network_settings(confirmations=2)},
    }
    with override_settings(PAYMENTS_GATEWAY=config):
        yield config


@pytest.fixture
def sync_tasks(monkeypatch):
    """django-q2 runs each queued task at once, in the caller's thread (Q_CLUSTER "sync" mode)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def test_gateway(settings):
    """PAYMENTS_GATEWAY for tests without a chain: the test xpub, the offline "test" network (ETH + USDC) and
    ETH at 3000 USD."""
    settings.PAYMENTS_GATEWAY = {
        "XPUB": TEST_XPUB,
        "NETWORKS": {"test": TEST_NETWORK},
        "RATE_PROVIDER_OPTIONS": {"rates": {"ETH": {"USD": "3000"}}},
    }
    return settings.PAYMENTS_GATEWAY


@pytest.fixture
def private_webhook_urls(settings):
    """Webhooks may be sent to private addresses: the test receivers listen on 127.0.0.1 (production refuses)."""
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "ALLOW_PRIVATE_WEBHOOK_URLS": True}

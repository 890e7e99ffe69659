"""Fixtures shared by the test files: the dev chain, gateway settings for each kind of test, webhook sources,
API clients and DNS. Rows are built by tests/factories.py."""

import os
import shutil
import socket

import pytest
from django.conf import settings
from django.test import override_settings

from payments_gateway.chain import rpc
from payments_gateway.chain.devchain import start_devchain

from . import incoming_helpers
from .factories import TEST_NETWORK, TEST_XPUB, api_client, make_api_key

# --- the dev chain ----------------------------------------------------------------------------------------------


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
def fake_rpc():
    """``fake_rpc(mode, ...)``: a local JSON-RPC server that fails in ``mode`` ("429", "500", "garbage", "sleep",
    "chain") or, in mode "proxy", forwards to ``upstream`` and records the methods asked (tests/http_receiver.py)."""
    from .http_receiver import FakeRPC

    servers = []

    def make(mode, **kwargs):
        servers.append(FakeRPC(mode, **kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.fixture(autouse=True)
def fresh_rpc_state():
    """No test inherits another's RPC backoff or chain-id checks (they are kept per URL, process-wide), nor the
    head source a network's WebSocket was last logged in (chain/heads.py logs each change once per process)."""
    from payments_gateway.chain.heads import forget_logged_modes

    rpc.reset_backoff()
    forget_logged_modes()
    yield
    rpc.reset_backoff()


# --- gateway settings -------------------------------------------------------------------------------------------


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
def forwarder_settings(chain, monkeypatch):
    """Like ``anvil_settings``, with network "anvil" on the forwarder deposit scheme: the dev chain's factory and
    treasury, and the relayer key (anvil's public test account 9) in the environment, as a worker would have it.

    Yields the settings dict; chain state is reverted after the test.
    """
    monkeypatch.setenv("PAYMENTS_GATEWAY_RELAYER_KEY", chain.relayer_key)
    config = {
        **settings.PAYMENTS_GATEWAY,
        "XPUB": TEST_XPUB,
        "NETWORKS": {"anvil": chain.network_settings(confirmations=2, forwarder=True)},
    }
    with override_settings(PAYMENTS_GATEWAY=config):
        yield config


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
def subscription_gateway(test_gateway, settings):
    """``test_gateway`` with ``PUBLIC_URL`` set: subscriptions e-mail their customers links to this site."""
    settings.PAYMENTS_GATEWAY = {**test_gateway, "PUBLIC_URL": "https://shop.example"}
    return settings.PAYMENTS_GATEWAY


@pytest.fixture
def use_networks(settings):
    """``use_networks(name=entry, ...)``: those are the configured networks for the rest of the test."""

    def use(**entries):
        settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "NETWORKS": entries}

    return use


@pytest.fixture
def sync_tasks(monkeypatch):
    """django-q2 runs each queued task at once, in the caller's thread (Q_CLUSTER "sync" mode)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture(params=["orm", "redis"])
def broker(request, monkeypatch):
    """django-q2's broker of a test that runs real workers, which runs once on each: the ORM broker (the embedded
    default) and the Redis broker (production; Redis database 2, emptied before and after). This process queues
    its tasks there too. A Redis that does not answer fails the test (never skipped)."""
    from .processes import Broker, redis_broker

    chosen = Broker("orm") if request.param == "orm" else redis_broker(2)
    chosen.activate(monkeypatch)
    yield chosen
    if chosen.name == "redis":
        chosen.lose_queued_tasks()


# --- webhooks ---------------------------------------------------------------------------------------------------


@pytest.fixture
def private_webhook_urls(settings):
    """Webhooks may be sent to private addresses: the test receivers listen on 127.0.0.1 (production refuses)."""
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "ALLOW_PRIVATE_WEBHOOK_URLS": True}


@pytest.fixture
def public_dns(monkeypatch):
    """DNS is remote: names ending in .example resolve to a public address, as they would for a real shop."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".example"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def webhook_sources(settings):
    """``WEBHOOK_SOURCES`` are the test sources of tests/incoming_helpers.py (partner, github, stamped), whose
    handler records its calls: none recorded yet, and none set to crash."""
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "WEBHOOK_SOURCES": incoming_helpers.SOURCES}
    incoming_helpers.CALLS.clear()
    incoming_helpers.FAIL_IDS.clear()
    yield incoming_helpers.SOURCES
    incoming_helpers.FAIL_IDS.clear()


# --- the REST API -------------------------------------------------------------------------------------------------


@pytest.fixture
def api_key():
    """An active API key: (the row, the raw key)."""
    return make_api_key()


@pytest.fixture
def api(api_key):
    """A REST client authenticated with ``api_key``."""
    return api_client(api_key[1])


@pytest.fixture
def shop_order(client):
    """An order of two mugs placed in the example shop by ``client`` (its cart, then "Place order")."""
    from decimal import Decimal

    from example_shop.shop.models import Product
    from payments_gateway.models import Order

    product = Product.objects.create(slug="mug", name="Mug", price=Decimal("12.00"))
    client.post(f"/products/{product.slug}/add/", {"quantity": 2})
    client.post("/cart/order/")
    return Order.objects.get()


# --- the ASGI live server -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def live_server(request):
    """The project served by uvicorn (a real ASGI server, as in production and the demo) in a thread of this
    process, static files included, for the whole run: ``live_server.url``. Replaces pytest-django's threaded WSGI
    server, so the pages' push channel runs asynchronously as it does in production (pytest-django still gives
    each test that uses it a transactional database)."""
    import threading
    import time

    import uvicorn
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.core.asgi import get_asgi_application

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(ASGIStaticFilesHandler(get_asgi_application()), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the ASGI live server (uvicorn) did not start")
        time.sleep(0.05)
    port = sock.getsockname()[1]
    yield LiveServer(f"http://127.0.0.1:{port}")
    server.should_exit = True
    thread.join(timeout=10)


class LiveServer:
    def __init__(self, url: str) -> None:
        from django.test.utils import modify_settings

        self.url = url
        # pytest-django's helper enables this around each test that uses the live server.
        self._live_server_modified_settings = modify_settings(ALLOWED_HOSTS={"append": "127.0.0.1"})

    def __str__(self) -> str:
        return self.url


# --- the browser --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright, one for the whole run. Missing Chromium fails (never skipped)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls made here between page actions are
    # plain synchronous calls, which Django only allows with this flag.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    chromium = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.fail("Chromium is not installed: run `make setup` (installs Debian's chromium); never skipped.")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """A page on a 375 px wide phone screen."""
    context = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def dev_network(anvil_settings, chain, settings):
    """The dev chain as network "anvil" with 3 confirmations and the test wallet, scanned up to its head."""
    from payments_gateway.scanning import scan_network

    settings.PAYMENTS_GATEWAY = anvil_settings | {
        "NETWORKS": {"anvil": chain.network_settings(confirmations=3, dev=True)}
    }
    scan_network("anvil")  # catch up to the head before anything is paid
    return chain

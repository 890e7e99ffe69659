"""Accessibility and small screens, checked in Chromium: axe-core (from npm) finds no serious or critical violation on
the chooser, waiting, partially paid, paid and expired pages (and a subscription's page and its cancel
confirmation), on a 375 px phone and on a desktop; nothing overflows
at 375 px; the QR code and the copy buttons are reached with the keyboard, labelled, and copy the exact value.

The same walk writes the screenshots of the README: ``make screenshots`` runs it with ``SCREENSHOTS_DIR`` set to
``docs/screenshots`` (otherwise they go to a temporary directory and are only checked to be images)."""

import os
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from payments_gateway.services.methods import choose_payment_method
from payments_gateway.services.payments import expire_session, refresh_session
from payments_gateway.services.sessions import create_session
from payments_gateway.services.subscription_mail import page_token
from payments_gateway.views import checkout as checkout_views

from .browser_wallet import TestWallet
from .factories import TEST_NETWORK, make_customer, make_order, make_subscription, make_transfer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = {"phone": {"width": 375, "height": 812}, "desktop": {"width": 1280, "height": 900}}
SERIOUS = {"serious", "critical"}


@pytest.fixture
def shop(settings):
    """Two networks a real shop would offer (offline: the pages need no RPC), the shop's branding."""
    settings.PAYMENTS_GATEWAY = settings.PAYMENTS_GATEWAY | {
        "NETWORKS": {
            "ethereum": TEST_NETWORK | {"chain_id": 1, "display_name": "Ethereum", "confirmations": 12,
                                        "explorer_url": "https://etherscan.io"},
            "base": TEST_NETWORK | {"chain_id": 8453, "display_name": "Base", "explorer_url": "https://basescan.org"},
        },
        "CHECKOUT_BRANDING": {"name": "Example Shop", "accent_color": "#0b6e4f"},
    }  # fmt: skip


@pytest.fixture
def states(shop, live_server, monkeypatch):
    """The URL of each page state to check (and to photograph). The paid page stays put (no redirect to the shop
    while it is being checked)."""
    monkeypatch.setattr(checkout_views, "SUCCESS_REDIRECT_SECONDS", 3600)

    def session(**fields):
        order = make_order(description="2 × Mug, 1 × Poster", amount=Decimal("79.00"))
        return create_session(
            order=order, success_url=f"{live_server.url}/", cancel_url=f"{live_server.url}/", **fields
        )

    choosing = session()
    waiting = choose_payment_method(session(), "base", "USDC")
    partial = choose_payment_method(session(), "base", "USDC")
    make_transfer(partial, 30_000_000, status="confirmed", network="base",
                  tx_hash="0x8f3b2a6c1d0e9f7a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a")  # fmt: skip
    refresh_session(partial.pk)
    paid = choose_payment_method(session(), "ethereum", "USDC")
    make_transfer(paid, 79_000_000, status="confirmed", network="ethereum", confirmations=12,
                  tx_hash="0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060")  # fmt: skip
    refresh_session(paid.pk)
    expired = expire_session(choose_payment_method(session(), "ethereum", "ETH"))
    pages = {"chooser": choosing, "waiting": waiting, "partial": partial, "paid": paid, "expired": expired}
    return {name: f"{live_server.url}/pay/{s.uuid}/" for name, s in pages.items()}


@pytest.fixture
def screenshots(tmp_path):
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_pages_have_no_serious_accessibility_violations_and_fit_a_phone(browser, states, screenshots, viewport):
    context = browser.new_context(viewport=VIEWPORTS[viewport], device_scale_factor=2 if viewport == "phone" else 1,
                                  is_mobile=viewport == "phone")  # fmt: skip
    page = context.new_page()
    page.add_init_script(path=str(AXE))
    TestWallet(chain=None, account="0x" + "11" * 20, chain_id=8453, known_chains={8453}).install(page)
    problems = {}
    for state, url in states.items():
        page.goto(url)
        if state == "waiting":
            expect(page.locator("#wallet-buttons button")).to_have_text(["Pay with Test Wallet"])
        serious = serious_violations(page)
        if serious:
            problems[state] = serious
        if viewport == "phone":
            assert page.evaluate("document.documentElement.scrollWidth") <= 375, f"{state} overflows at 375 px"
        path = screenshots / f"{state}-{viewport}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    context.close()
    assert problems == {}


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_subscription_page_and_its_confirmation_too(browser, shop, live_server, viewport):
    subscription = make_subscription(customer=make_customer())
    url = f"{live_server.url}/subscriptions/{page_token(subscription)}/"
    context = browser.new_context(viewport=VIEWPORTS[viewport], is_mobile=viewport == "phone")
    page = context.new_page()
    page.add_init_script(path=str(AXE))
    problems = {}
    for state, address in {"subscription": url, "confirmation": url + "cancel"}.items():
        page.goto(address)
        expect(page.locator(".shop-name")).to_have_text("Example Shop")
        if serious := serious_violations(page):
            problems[state] = serious
        if viewport == "phone":
            assert page.evaluate("document.documentElement.scrollWidth") <= 375, f"{state} overflows at 375 px"
    context.close()
    assert problems == {}


def serious_violations(page) -> list[dict]:
    """What axe-core finds on the page that is serious or critical."""
    page.evaluate("document.fonts.ready")
    found = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
             .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")) }))"""
    )
    return [v for v in found if v["impact"] in SERIOUS]


def test_qr_and_copy_buttons_are_reached_by_keyboard_labelled_and_copy_the_exact_value(browser, states, live_server):
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="de-DE")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.goto(states["waiting"])
    expect(page.locator("#amount-to-pay")).to_have_text("79")
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.id"))
        if "copy-address" in reached and "qr-link" in reached:
            break
    assert reached.index("copy-amount") < reached.index("copy-address") < reached.index("qr-link")
    expect(page.get_by_role("button", name="Betrag kopieren")).to_have_id("copy-amount")
    expect(page.get_by_role("button", name="Adresse kopieren")).to_have_id("copy-address")
    expect(page.get_by_role("link", name="Zahlung in Ihrer Wallet-App öffnen (QR-Code)")).to_have_id("qr-link")
    expect(page.get_by_role("img", name="QR-Code der Zahlung: scannen Sie ihn mit Ihrer Wallet-App")).to_be_visible()

    page.locator("#copy-address").focus()
    page.keyboard.press("Enter")
    address = page.locator("#address").inner_text()
    assert page.evaluate("navigator.clipboard.readText()") == address
    context.close()


def test_copy_copies_the_machine_value_not_the_localized_display(browser, shop, live_server):
    session = choose_payment_method(create_session(amount="1234.56", currency="USD"), "base", "USDC")
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="de-DE")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.goto(f"{live_server.url}/pay/{session.uuid}/")
    expect(page.locator("#amount-to-pay")).to_have_text("1.234,56")
    page.locator("#copy-amount").focus()
    page.keyboard.press("Space")
    assert page.evaluate("navigator.clipboard.readText()") == "1234.56"
    context.close()

"""A customer in Chromium (Playwright) on a 375 px wide screen: pays, pays half and tops up, lets a session expire —
and sees each state arrive without reloading the page. Payments are real transfers on anvil found by the scanner."""

import base64
import re
import subprocess
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from payments_gateway.models import CheckoutSession
from payments_gateway.scanning import scan_network
from payments_gateway.services.payloads import payment_uri
from payments_gateway.services.sessions import create_session

pytestmark = [pytest.mark.browser, pytest.mark.anvil, pytest.mark.django_db(transaction=True)]
WAIT = 20_000  # ms: how long the browser may take to show a state the server already has


def new_session(live_server, **kwargs):
    fields = {"amount": "12.00", "currency": "USD", "asset": "USDC", "network": "anvil",
              "success_url": f"{live_server.url}/orders/00000000-0000-0000-0000-000000000000/paid/"
                             "?session={CHECKOUT_SESSION_ID}"} | kwargs  # fmt: skip
    return create_session(**fields)


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_pays_in_full_sees_confirmations_rise_to_paid_and_continues(dev_network, live_server, page):
    chain = dev_network
    session = new_session(live_server)
    page.goto(f"{live_server.url}/pay/{session.uuid}/")
    expect(page.locator("#status-message")).to_have_text("Waiting for your payment.")
    expect(page.locator("#customer-card")).to_be_visible()
    assert no_horizontal_scroll(page)
    page.evaluate("window.__notReloaded = true")

    chain.send_token("USDC", session.deposit_address.address, session.amount_due)
    scan_network("anvil")
    expect(page.locator("#status-message")).to_have_text(
        "Payment received, waiting for confirmations (1/3).", timeout=WAIT
    )
    chain.mine(1)
    scan_network("anvil")
    expect(page.locator("#confirmations-count")).to_have_text("2", timeout=WAIT)
    chain.mine(1)
    scan_network("anvil")
    expect(page.locator("#status-message")).to_have_text("Paid — thank you!", timeout=WAIT)
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#pay-box")).to_be_hidden()
    expect(page.locator("#customer-card")).to_be_hidden()  # no empty "Your details" box once paid

    page.locator("#continue").click()
    page.wait_for_url(f"**/paid/?session={session.uuid}")
    assert page.url.endswith(f"?session={session.uuid}")


def test_pays_half_sees_the_remainder_tops_up_and_sees_paid(dev_network, live_server, page):
    chain = dev_network
    session = new_session(live_server)
    page.goto(f"{live_server.url}/pay/{session.uuid}/")
    page.evaluate("window.__notReloaded = true")

    pay_and_scan(chain, session, 4_000_000)
    expect_remainder_of_8_usdc(page, session)
    expect(page.locator("#amount-to-pay")).to_have_text("8")

    pay_and_scan(chain, session, 8_000_000)
    expect(page.locator("#status-message")).to_have_text("Paid — thank you!", timeout=WAIT)
    assert page.evaluate("window.__notReloaded") is True


def pay_and_scan(chain, session, units: int) -> None:
    """Send ``units`` of USDC to the session's address, confirm it (2 blocks) and scan."""
    chain.send_token("USDC", session.deposit_address.address, units)
    chain.mine(2)
    scan_network("anvil")


def expect_remainder_of_8_usdc(page, session) -> None:
    """The page, without a reload, says 8 USDC are left and its QR code asks for them."""
    expect(page.locator("#status-message")).to_have_text(
        "Partially paid: 8 USDC still to pay to the same address.", timeout=WAIT
    )
    expect(page.locator("#qr")).to_have_attribute("src", f"/pay/{session.uuid}/qr.png?units=8000000", timeout=WAIT)


def test_the_page_works_under_its_own_content_security_policy(dev_network, live_server, page, settings):
    # Without the project's security middleware: the page's own headers are all there is.
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "security" not in m and "clickjacking" not in m]
    chain = dev_network
    session = new_session(live_server)
    console = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    # Recorded by the browser itself for anything the policy blocks (an inline script, a fetch elsewhere, ...).
    page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    response = page.goto(f"{live_server.url}/pay/{session.uuid}/")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    page.evaluate("window.__notReloaded = true")

    # Live status (event stream, polling), the new QR code of the remainder, the countdown: all still work.
    pay_and_scan(chain, session, 4_000_000)
    expect_remainder_of_8_usdc(page, session)
    # Polled from here: wait_for_function's polling in the page evaluates a string, which this policy forbids.
    deadline = time.monotonic() + WAIT / 1000
    while not page.evaluate("document.getElementById('qr').naturalWidth > 0"):
        assert time.monotonic() < deadline, "the QR code of the remainder did not load"
        page.wait_for_timeout(100)
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^\d+h \d+m \d+s$"))  # the script's countdown
    pay_and_scan(chain, session, 8_000_000)
    expect(page.locator("#status-message")).to_have_text("Paid — thank you!", timeout=WAIT)
    assert page.evaluate("window.__notReloaded") is True

    assert page.evaluate("window.__violations") == []
    assert not [line for line in console if "Content Security Policy" in line]
    # The redirect to the shop still works (no referrer needed).
    page.locator("#continue").click()
    page.wait_for_url(f"**/paid/?session={session.uuid}")


def test_test_wallet_button_pays_on_the_dev_chain(dev_network, live_server, page):
    session = new_session(live_server)
    page.goto(f"{live_server.url}/pay/{session.uuid}/")
    page.get_by_role("button", name="Pay the full amount with test wallet").click()
    expect(page.locator(".messages")).to_contain_text("Test wallet sent the full amount")
    expect(page.locator("#status-message")).to_have_text(
        "Payment received, waiting for confirmations (1/3).", timeout=WAIT
    )
    dev_network.mine(2)
    scan_network("anvil")
    expect(page.locator("#status-message")).to_have_text("Paid — thank you!", timeout=WAIT)


def test_lets_the_session_expire_and_sees_expired(dev_network, live_server, page):
    session = new_session(live_server)
    page.goto(f"{live_server.url}/pay/{session.uuid}/")
    page.evaluate("window.__notReloaded = true")
    CheckoutSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expect(page.locator("#status-message")).to_have_text(
        "This payment expired. Please start a new checkout.", timeout=WAIT
    )
    expect(page.locator("#pay-box")).to_be_hidden()
    assert page.evaluate("window.__notReloaded") is True


def test_the_qr_code_on_the_page_is_the_exact_eip681_uri(dev_network, live_server, page):
    session = new_session(live_server, asset="ETH")
    page.goto(f"{live_server.url}/pay/{session.uuid}/")
    src = page.locator("#qr").get_attribute("src")
    png = base64.b64decode(src.split(",", 1)[1])
    decoded = subprocess.run(["zbarimg", "--raw", "-q", "-"], input=png, capture_output=True, check=True)
    expected = f"ethereum:{session.deposit_address.address}@31337?value={session.amount_due}"
    assert decoded.stdout.decode().strip() == expected == payment_uri(session)


def test_works_without_javascript(dev_network, live_server, browser):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 375, "height": 812})
    page = context.new_page()
    session = new_session(live_server)
    page.goto(f"{live_server.url}/pay/{session.uuid}/")
    expect(page.locator("#status-message")).to_have_text("Waiting for your payment.")
    dev_network.send_token("USDC", session.deposit_address.address, session.amount_due)
    dev_network.mine(2)
    scan_network("anvil")
    page.get_by_role("link", name="Refresh status").click()
    expect(page.locator("#status-message")).to_have_text("Paid — thank you!")
    context.close()

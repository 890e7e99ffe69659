"""A customer in Chromium chooses the coin, pays with the browser's own wallet (an EIP-1193 provider announced through
EIP-6963, written in tests/browser_wallet.py, that signs with an anvil account), and follows the payment to paid and
back to the shop. Every way a wallet can fail is explained in words on the page, and nothing is sent."""

import pytest
from playwright.sync_api import expect

from payments_gateway.models import CheckoutSession
from payments_gateway.scanning import scan_network
from payments_gateway.services.sessions import create_session
from payments_gateway.views import checkout as checkout_views

from .browser_wallet import TestWallet
from .factories import fresh_address

pytestmark = [pytest.mark.browser, pytest.mark.anvil, pytest.mark.django_db(transaction=True)]
WAIT = 20_000  # ms
EXPLORER = "https://explorer.example"


@pytest.fixture
def wallet_network(anvil_settings, chain, settings):
    """The dev chain as "anvil" ("Anvil" to customers), with an explorer and a public RPC URL for wallets."""
    entry = chain.network_settings(confirmations=3, display_name="Anvil", explorer_url=EXPLORER,
                                   wallet_rpc_url=chain.rpc_url)  # fmt: skip
    settings.PAYMENTS_GATEWAY = anvil_settings | {"NETWORKS": {"anvil": entry}}
    scan_network("anvil")
    return chain


def new_session(live_server, **fields):
    success = f"{live_server.url}/orders/00000000-0000-0000-0000-000000000000/paid/?session={{CHECKOUT_SESSION_ID}}"
    return create_session(**{"amount": "12.00", "currency": "USD", "success_url": success} | fields)


def status(page):
    return page.locator("#wallet-status")


def test_chooses_eth_adds_the_chain_pays_from_the_wallet_and_returns_to_the_shop(
    wallet_network, live_server, page, monkeypatch
):
    chain = wallet_network
    monkeypatch.setattr(checkout_views, "SUCCESS_REDIRECT_SECONDS", 1)
    wallet = TestWallet(chain, chain.accounts[1])  # on Ethereum, and it has never heard of the dev chain
    wallet.install(page)
    session = new_session(live_server)
    page.goto(f"{live_server.url}/pay/{session.uuid}/")
    page.get_by_role("button", name="ETH on Anvil 0.004 ETH").click()  # 12 USD at 3000 USD/ETH
    expect(page.locator("h1")).to_have_text("Pay 0.004 ETH")
    page.evaluate("window.__notReloaded = true")

    page.get_by_role("button", name="Pay with Test Wallet").click()
    expect(status(page)).to_contain_text("Payment sent.", timeout=WAIT)
    session.refresh_from_db()
    [added] = wallet.asked("wallet_addEthereumChain")
    assert added == [{"chainId": "0x7a69", "chainName": "Anvil", "rpcUrls": [chain.rpc_url],
                      "nativeCurrency": {"name": "ETH", "symbol": "ETH", "decimals": 18},
                      "blockExplorerUrls": [EXPLORER]}]  # fmt: skip
    [tx_hash] = wallet.sent
    tx = chain.w3.eth.get_transaction(tx_hash)
    assert (tx["from"], tx["to"], tx["value"]) == (chain.accounts[1], session.address, session.amount_due)
    expect(status(page).locator("a")).to_have_attribute("href", f"{EXPLORER}/tx/{tx_hash}")

    scan_network("anvil")
    expect(page.locator("#status-message")).to_have_text(
        "Payment received, waiting for confirmations (1/3).", timeout=WAIT
    )
    expect(page.locator("#tx-list a")).to_have_attribute("href", f"{EXPLORER}/tx/{tx_hash}", timeout=WAIT)
    chain.mine(2)
    scan_network("anvil")
    expect(page.locator("#status-message")).to_have_text("Paid — thank you!", timeout=WAIT)
    assert page.evaluate("window.__notReloaded") is True
    page.wait_for_url(f"**/paid/?session={session.uuid}", timeout=WAIT)  # by itself, after the countdown


def test_pays_usdc_with_the_erc20_transfer_call_on_the_chain_the_wallet_is_on(wallet_network, live_server, page):
    chain = wallet_network
    wallet = TestWallet(chain, chain.accounts[2], chain_id=31337, known_chains={31337})
    wallet.install(page, names=("Test Wallet", "Second Wallet"))
    session = new_session(live_server, network="anvil", asset="USDC")
    page.goto(f"{live_server.url}/pay/{session.uuid}/")
    expect(page.locator("#wallet-buttons button")).to_have_text(["Pay with Test Wallet", "Pay with Second Wallet"])
    page.get_by_role("button", name="Pay with Second Wallet").click()
    expect(status(page)).to_contain_text("Payment sent.", timeout=WAIT)
    assert wallet.asked("wallet_switchEthereumChain") == [] and wallet.asked("wallet_addEthereumChain") == []
    [tx_hash] = wallet.sent
    tx = chain.w3.eth.get_transaction(tx_hash)
    calldata = "0xa9059cbb" + session.address[2:].lower().rjust(64, "0") + f"{session.amount_due:064x}"
    assert (tx["to"], tx["value"], tx["input"].to_0x_hex()) == (chain.tokens["USDC"], 0, calldata)
    assert chain.token("USDC").functions.balanceOf(session.address).call() == 12_000_000
    scan_network("anvil")
    expect(page.locator("#status-message")).to_have_text(
        "Payment received, waiting for confirmations (1/3).", timeout=WAIT
    )


def test_every_wallet_failure_is_explained_and_nothing_is_sent(wallet_network, live_server, page, settings):
    chain = wallet_network
    no_rpc = settings.PAYMENTS_GATEWAY["NETWORKS"]["anvil"] | {"wallet_rpc_url": None}
    settings.PAYMENTS_GATEWAY = settings.PAYMENTS_GATEWAY | {"NETWORKS": {"anvil": no_rpc}}
    wallet = TestWallet(chain, chain.accounts[3])
    wallet.install(page)
    session = new_session(live_server, network="anvil", asset="USDC")
    page.goto(f"{live_server.url}/pay/{session.uuid}/")
    pay = page.get_by_role("button", name="Pay with Test Wallet")

    def attempt(expected: str) -> None:
        pay.click()
        expect(status(page)).to_have_text(expected, timeout=WAIT)
        expect(status(page)).to_have_class("wallet-status error")

    wallet.refuse = {"eth_requestAccounts"}
    attempt("You declined the connection in your wallet. Nothing was sent.")
    wallet.refuse = set()
    # Without a public RPC URL for wallets, a wallet that does not know the chain cannot be given it.
    attempt("Your wallet does not know Anvil. Add this network (chain id 31337) in your wallet, then try again.")
    wallet.known_chains.add(31337)
    wallet.refuse = {"wallet_switchEthereumChain"}
    attempt("Your wallet stayed on another network. Switch it to Anvil (chain 31337) to pay here.")
    wallet.refuse, wallet.ignore_switch = set(), True
    attempt("Your wallet is on another network (chain 1). Switch it to Anvil (chain 31337) and try again.")
    wallet.ignore_switch, wallet.chain_id = False, 31337
    wallet.account = fresh_address()  # an account without a single USDC
    attempt("Not enough USDC in your wallet: this payment needs 12 USDC, and the account holds 0 USDC.")
    wallet.account = chain.accounts[3]
    wallet.balances = {"eth_getBalance": "0x0"}
    attempt("Your wallet has no ETH to pay the network fee of this payment.")
    wallet.balances = {}
    wallet.refuse = {"eth_sendTransaction"}
    attempt("You rejected the payment in your wallet. Nothing was sent; you can try again.")
    wallet.refuse, wallet.disconnect_on = set(), {"eth_sendTransaction"}
    attempt(
        "Your wallet is no longer available (it was closed, locked or removed). Open it and try again, or pay with "
        "the QR code or the address."
    )

    assert wallet.sent == []
    scan_network("anvil")
    session = CheckoutSession.objects.get(pk=session.pk)
    assert (session.payment_status, session.transfers.count()) == ("unpaid", 0)
    expect(page.locator("#pay-box")).to_be_visible()  # the QR code and the address are still there


def test_speaks_the_customer_s_language(wallet_network, live_server, browser):
    context = browser.new_context(locale="de-DE", viewport={"width": 375, "height": 812})
    page = context.new_page()
    wallet = TestWallet(wallet_network, wallet_network.accounts[1], chain_id=31337, known_chains={31337})
    wallet.refuse = {"eth_sendTransaction"}
    wallet.install(page)
    session = new_session(live_server, network="anvil", asset="ETH")
    page.goto(f"{live_server.url}/pay/{session.uuid}/")
    expect(page.locator("#amount-to-pay")).to_have_text("0,004")
    page.get_by_role("button", name="Mit Test Wallet bezahlen").click()
    expect(status(page)).to_have_text(
        "Sie haben die Zahlung in Ihrer Wallet abgelehnt. Es wurde nichts gesendet; Sie können es erneut versuchen.",
        timeout=WAIT,
    )
    context.close()

"""The merchant's view of deposit balances: what each xpub address holds (read on chain, exported as CSV), and on a
forwarder network what waits to be swept, the treasury, the relayer's gas and "Sweep now"."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth import get_user_model

from payments_gateway.models import Sweep
from payments_gateway.services.sessions import create_session
from payments_gateway.services.sweeps import refresh_sweeps
from tests.factories import make_forwarder_session
from tests.onchain import paid_and_confirmed

pytestmark = pytest.mark.django_db

BALANCES = "/admin/payments_gateway/depositaddress/balances/"
SWEEPS = "/admin/payments_gateway/sweep/"


def test_xpub_addresses_balances_are_read_on_chain_and_exported_as_csv(anvil_settings, chain, admin_client):
    first, second = (create_session(asset="USDC", network="anvil", amount="5", currency="USD") for _ in range(2))
    chain.send_eth(first.deposit_address.address, 10**18 + 5)
    chain.send_token("USDC", second.deposit_address.address, 7_250_000)  # no scan ran: nothing recorded, still shown

    page = admin_client.get(BALANCES, {"network": "anvil"}).content.decode()
    assert 'data-index="0" data-asset="ETH" data-units="1000000000000000005"' in page
    assert 'data-index="1" data-asset="USDC" data-units="7250000"' in page
    assert "7.25" in page and 'data-asset="DAI"' not in page  # zero balances only on request

    rows = list(
        csv.reader(io.StringIO(admin_client.get(BALANCES.rstrip("/") + ".csv", {"network": "anvil"}).content.decode()))
    )
    assert rows[0] == ["network", "index", "address", "asset", "balance_base_units", "balance"]
    assert ["anvil", "0", first.deposit_address.address, "ETH", "1000000000000000005", "1.000000000000000005"] in rows
    assert ["anvil", "1", second.deposit_address.address, "USDC", "7250000", "7.25"] in rows
    assert len(rows) == 1 + 2 * 4  # every address and asset (ETH, USDC, USDT, DAI)

    # The merchant moves the ETH out with the wallet: the page shows the chain, not the recorded transfers.
    chain.rpc("anvil_setBalance", [first.deposit_address.address, "0x0"])
    assert 'data-asset="ETH"' not in admin_client.get(BALANCES, {"network": "anvil"}).content.decode()


def test_balances_page_is_staff_only(anvil_settings, client):
    assert client.get(BALANCES).status_code == 302  # to the login page
    assert client.get(BALANCES.rstrip("/") + ".csv").status_code == 302


def test_sweep_now_sweeps_logs_who_did_it_and_the_treasury_balance_moves(forwarder_settings, chain, admin_client):
    session = make_forwarder_session(asset="USDC", amount_due=25_000_000)
    paid_and_confirmed(chain, (session, 25_000_000))

    page = admin_client.get(SWEEPS).content.decode()
    assert chain.treasury in page and chain.accounts[9] in page  # the treasury, and the relayer with its gas
    assert 'class="pg-unswept">25 USDC (1 address)' in page
    assert 'class="pg-treasury">0 USDC' in page

    response = admin_client.post(SWEEPS + "sweep-now/", follow=True)
    assert "1 sweep(s) sent." in response.content.decode()
    (sweep,) = Sweep.objects.all()
    entry = LogEntry.objects.get()
    assert (entry.action_flag, entry.object_id, entry.user.username) == (ADDITION, str(sweep.pk), "admin")
    assert entry.get_change_message() == "Sweep now: USDC from 1 addresses"

    chain.mine(2)
    refresh_sweeps("anvil")
    page = admin_client.get(SWEEPS).content.decode()
    assert 'class="pg-treasury">25 USDC' in page and 'class="pg-unswept">0 USDC (0 addresses)' in page
    assert sweep.tx_hash in page
    dashboard = admin_client.get("/admin/payments_gateway/checkoutsession/dashboard/").content.decode()
    assert 'id="pg-forwarders"' in dashboard and 'class="pg-treasury">25 USDC' in dashboard


def test_sweep_now_needs_a_post_and_the_permission(forwarder_settings, chain, admin_client, client):
    assert admin_client.get(SWEEPS + "sweep-now/").status_code == 405
    staff = get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.post(SWEEPS + "sweep-now/").status_code == 403
    assert Sweep.objects.count() == 0


def test_a_relayer_low_on_gas_is_shown_on_the_dashboard(forwarder_settings, chain, admin_client):
    chain.rpc("anvil_setBalance", [chain.accounts[9], hex(10**6)])
    dashboard = admin_client.get("/admin/payments_gateway/checkoutsession/dashboard/").content.decode()
    assert "pg-relayer-low" in dashboard and "is low on gas" in dashboard

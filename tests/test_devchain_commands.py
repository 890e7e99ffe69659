"""manage.py payments_gateway_devchain and payments_gateway_pay, against real anvil processes."""

import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from web3 import Web3

from payments_gateway.chain.contracts import abi
from payments_gateway.deposits import allocate_address
from payments_gateway.models import CheckoutSession

from .factories import make_order, make_session
from .http_receiver import closed_port

ROOT = Path(__file__).resolve().parent.parent


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def check_chain(entry: dict) -> Web3:
    """The written settings point at a live chain with the funded test tokens."""
    w3 = Web3(Web3.HTTPProvider(entry["rpc_urls"][0]))
    assert w3.eth.chain_id == entry["chain_id"] == 31337
    assert entry["dev"] is True
    customer = w3.eth.accounts[0]
    for symbol, decimals in {"USDC": 6, "USDT": 6, "DAI": 18}.items():
        token = w3.eth.contract(address=entry["tokens"][symbol]["address"], abi=abi("TestToken"))
        assert entry["tokens"][symbol]["decimals"] == decimals
        assert token.functions.balanceOf(customer).call() == 10**6 * 10**decimals
    feed = w3.eth.contract(address=entry["price_feeds"]["ETH/USD"], abi=abi("MockV3Aggregator"))
    assert feed.functions.latestRoundData().call()[1] == 3000 * 10**8
    return w3


def test_devchain_runs_until_terminated_and_writes_the_config(tmp_path):
    port, config = closed_port(), tmp_path / "var" / "payments_gateway.json"
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "payments_gateway_devchain", "--port", str(port), "--write-config",
         str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not config.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no config written within 60 s"
            time.sleep(0.1)
        written = json.loads(config.read_text())
        entry = written["NETWORKS"]["anvil"]
        assert entry["rpc_urls"] == [f"http://127.0.0.1:{port}"]
        assert entry["confirmations"] == 2
        w3 = check_chain(entry)
        # Interval mining (1 s by default), so confirmations progress without transactions.
        head = w3.eth.block_number
        deadline = time.monotonic() + 10
        while w3.eth.block_number == head:
            assert time.monotonic() < deadline, "no new block within 10 s"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json.loads(out) == written  # the same entry is printed on stdout
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):  # anvil is gone
        sock.connect(("127.0.0.1", port))


def test_devchain_detach_leaves_anvil_running(tmp_path):
    port, config = closed_port(), tmp_path / "pg.json"
    out, err = io.StringIO(), io.StringIO()
    call_command("payments_gateway_devchain", "--port", str(port), "--block-time", "0", "--detach",
                 "--write-config", str(config), "--confirmations", "5", stdout=out, stderr=err)  # fmt: skip
    pid = int(re.search(r"kill (\d+)", err.getvalue()).group(1))
    try:
        entry = json.loads(config.read_text())["NETWORKS"]["anvil"]
        assert entry["confirmations"] == 5
        check_chain(entry)
    finally:
        os.kill(pid, signal.SIGTERM)
    # In a real run anvil outlives the command; here it is still this process's child, so reap it.
    with contextlib.suppress(ChildProcessError):  # already reaped by subprocess' own cleanup
        os.waitpid(pid, 0)
    assert wait_gone(pid)


def test_devchain_port_in_use_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(CommandError, match=f"port {port} on 127.0.0.1 is already in use"):
            call_command("payments_gateway_devchain", "--port", str(port), "--detach", stdout=io.StringIO())


# --- payments_gateway_pay ---------------------------------------------------------------------------


def new_session(asset: str, amount_due: int) -> CheckoutSession:
    """A 12.50 USD session on the merchant's next xpub address of the dev chain."""
    with transaction.atomic():
        address = allocate_address("anvil", busy_until=timezone.now() + timedelta(days=2))
    order = make_order(amount=Decimal("12.50"))
    return make_session(
        network="anvil",
        asset=asset,
        amount_due=amount_due,
        order=order,
        fiat_amount=order.amount,
        deposit_address=address,
    )


def pay(*args) -> str:
    out = io.StringIO()
    call_command("payments_gateway_pay", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


@pytest.mark.django_db
def test_pay_token_in_full_then_partial_and_top_up(anvil_settings, chain):
    session = new_session("USDC", 12_500_000)
    usdc = chain.token("USDC")
    tx_hash = pay(str(session.uuid))
    receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
    assert receipt["status"] == 1 and receipt["from"] == chain.accounts[0]
    assert usdc.functions.balanceOf(session.address).call() == 12_500_000

    partial = new_session("USDC", 12_500_000)
    pay(str(partial.uuid), "--amount", "5", "--from-account", "3")
    assert usdc.functions.balanceOf(partial.address).call() == 5_000_000
    assert usdc.functions.balanceOf(chain.accounts[3]).call() == 10**12 - 5_000_000
    # Once the scanner has recorded the 5 USDC, a plain `pay` sends the remaining 7.5.
    partial.amount_received = 5_000_000
    partial.save()
    pay(str(partial.uuid))
    assert usdc.functions.balanceOf(partial.address).call() == 12_500_000


@pytest.mark.django_db
def test_pay_eth_and_dai_exact_base_units(anvil_settings, chain):
    eth = new_session("ETH", 4_166_666_666_666_667)  # 12.50 USD at 3000 USD/ETH, rounded up
    pay(str(eth.uuid))
    assert chain.w3.eth.get_balance(eth.address) == 4_166_666_666_666_667
    dai = new_session("DAI", 12 * 10**18)
    pay(str(dai.uuid), "--amount", "0.000000000000000001")
    assert chain.token("DAI").functions.balanceOf(dai.address).call() == 1


@pytest.mark.django_db
def test_pay_refuses_bad_input_and_sends_nothing(anvil_settings, chain):
    session = new_session("USDC", 12_500_000)
    head = chain.w3.eth.block_number
    cases = [
        ((str(session.uuid), "--amount", "1.0000001"), "more than 6 decimals"),
        ((str(session.uuid), "--amount", "-1"), "positive number"),
        ((str(session.uuid), "--amount", "abc"), "not a number"),
        ((str(session.uuid), "--from-account", "10"), r"dev account 10 does not exist: the node has accounts 0\.\.9"),
        (("not-a-uuid",), "not a session uuid"),
        (("6b1a9d8e-3c3e-4f6e-9b0a-2f1f3c4d5e6f",), "no checkout session"),
    ]
    for args, message in cases:
        with pytest.raises(CommandError, match=message):
            pay(*args)
    session.amount_received = 12_500_000
    session.save()
    with pytest.raises(CommandError, match="nothing left to pay"):
        pay(str(session.uuid))
    assert chain.w3.eth.block_number == head  # no transaction was sent


@pytest.mark.django_db
def test_pay_only_on_a_dev_network(anvil_settings, chain):
    session = new_session("USDC", 12_500_000)
    not_dev = {**anvil_settings["NETWORKS"]["anvil"], "dev": False}
    with (
        override_settings(PAYMENTS_GATEWAY={**anvil_settings, "NETWORKS": {"anvil": not_dev}}),
        pytest.raises(CommandError, match="'anvil' is not a dev chain"),
    ):
        pay(str(session.uuid))
    assert chain.token("USDC").functions.balanceOf(session.address).call() == 0

"""The forwarder scheme's settings, the relayer key from the environment, and ``payments_gateway_sweep``: every
mistake is named with the key (or variable) and its fix, and the key itself is never echoed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from eth_utils import to_checksum_address

from payments_gateway.chain import forwarder
from payments_gateway.conf import gateway_settings
from payments_gateway.deposits import scheme_for
from payments_gateway.deposits.forwarder import forwarder_findings, verify_factory
from payments_gateway.deposits.relayer import relayer_account
from payments_gateway.models import Sweep
from tests.factories import TEST_XPUB, make_forwarder_session
from tests.onchain import paid_and_confirmed

TREASURY = "0x" + "7e" * 20
FACTORY = "0x" + "fa" * 20
KEY = "0x" + "4c" * 32  # a valid private key, for these tests only
DROP = object()


def config(relayer_env=None, **changes):
    spec = {
        "chain_id": 31337,
        "rpc_urls": ["http://127.0.0.1:9"],
        "deposit_scheme": "forwarder",
        "treasury": TREASURY,
        "forwarder_factory": FACTORY,
    }
    spec = {k: v for k, v in (spec | changes).items() if v is not DROP}
    return {"XPUB": TEST_XPUB, "NETWORKS": {"shop": spec}, **({"RELAYER_KEY_ENV": relayer_env} if relayer_env else {})}


def serious(settings_dict):
    with override_settings(PAYMENTS_GATEWAY=settings_dict):
        return [(m.id, m.msg) for m in run_checks(tags=["payments_gateway"]) if m.is_serious()]


KEY_OF = "PAYMENTS_GATEWAY['NETWORKS']['shop']"
MISTAKES = {
    "no treasury": ({"treasury": DROP}, f"{KEY_OF}['treasury'] is not set", "set it to the merchant's treasury"),
    "no factory": ({"forwarder_factory": DROP}, f"{KEY_OF}['forwarder_factory'] is not set", "--deploy-factory"),
    "treasury not an address": ({"treasury": "0x1234"}, f"{KEY_OF}['treasury'] must be a 0x-prefixed", "'0x1234'"),
    "factory not an address": ({"forwarder_factory": "factory"}, f"{KEY_OF}['forwarder_factory'] must be", "20-byte"),
    "zero treasury": ({"treasury": "0x" + "0" * 40}, f"{KEY_OF}['treasury'] is the zero address", "burnt"),
    "treasury is the factory": ({"treasury": FACTORY}, f"{KEY_OF}['treasury'] is the forwarder factory", "own"),
    "batch too large": ({"sweep_batch_size": 1000}, f"{KEY_OF}['sweep_batch_size'] is 1000", "at most 500"),
    "ratio as a float": ({"sweep_min_value_ratio": 2.5}, f"{KEY_OF}['sweep_min_value_ratio']", "'2.5'"),
    "negative age": ({"sweep_max_age": -5}, f"{KEY_OF}['sweep_max_age'] must be a timedelta", "not negative"),
}


@pytest.mark.parametrize("case", MISTAKES)
def test_manage_py_check_names_each_forwarder_mistake_and_its_fix(case, monkeypatch):
    monkeypatch.setenv("PAYMENTS_GATEWAY_RELAYER_KEY", KEY)
    changes, names_key, names_fix = MISTAKES[case]
    (found,) = serious(config(**changes))
    assert found[0] == "payments_gateway.E001"
    assert names_key in found[1] and names_fix in found[1]


def test_a_forwarder_network_without_a_treasury_cannot_hand_out_addresses():
    with override_settings(PAYMENTS_GATEWAY=config(treasury=DROP)), pytest.raises(ImproperlyConfigured) as raised:
        scheme_for("shop")
    assert f"{KEY_OF}['treasury'] is not set" in str(raised.value)


def test_valid_forwarder_settings_pass_the_checks(monkeypatch):
    monkeypatch.setenv("PAYMENTS_GATEWAY_RELAYER_KEY", KEY)
    assert serious(config()) == []
    with override_settings(PAYMENTS_GATEWAY=config(sweep_max_age=3600, sweep_min_value_ratio="2.5")):
        shop = gateway_settings.network("shop")
        assert (shop.treasury, shop.forwarder_factory) == (to_checksum_address(TREASURY), to_checksum_address(FACTORY))
        assert (shop.sweep_max_age, shop.sweep_min_value_ratio, shop.sweep_batch_size) == (
            timedelta(hours=1),
            Decimal("2.5"),
            100,
        )
        assert scheme_for("shop").address(7) == forwarder.deposit_address(FACTORY, TREASURY, 7)


# --- the relayer key ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["not-a-key", "0x" + "00" * 32, "0x" + "ff" * 32, "4c" * 31, TREASURY])
def test_a_relayer_key_that_is_not_a_key_fails_the_check_naming_the_variable_not_the_value(value, monkeypatch):
    monkeypatch.setenv("PAYMENTS_GATEWAY_RELAYER_KEY", value)
    ((check_id, message),) = serious(config())
    assert check_id == "payments_gateway.E102"
    assert "the environment variable PAYMENTS_GATEWAY_RELAYER_KEY" in message and "private key" in message
    assert value not in message and value.removeprefix("0x") not in message
    with override_settings(PAYMENTS_GATEWAY=config()), pytest.raises(SystemCheckError) as raised:
        call_command("check")
    assert "payments_gateway.E102" in str(raised.value) and value.removeprefix("0x") not in str(raised.value)


def test_a_missing_relayer_key_is_a_warning_and_xpub_networks_need_none(monkeypatch):
    monkeypatch.delenv("PAYMENTS_GATEWAY_RELAYER_KEY", raising=False)
    with override_settings(PAYMENTS_GATEWAY=config()):
        (warning,) = [m for m in run_checks(tags=["payments_gateway"]) if m.id == "payments_gateway.W002"]
        assert "PAYMENTS_GATEWAY_RELAYER_KEY" in warning.msg and "is not set" in warning.msg
    xpub = config(deposit_scheme="xpub", treasury=DROP, forwarder_factory=DROP)
    with override_settings(PAYMENTS_GATEWAY=xpub):
        assert [m.id for m in run_checks(tags=["payments_gateway"])] == []


def test_the_relayer_key_is_read_from_the_variable_the_setting_names(monkeypatch):
    monkeypatch.setenv("SHOP_SWEEPER", KEY)
    monkeypatch.delenv("PAYMENTS_GATEWAY_RELAYER_KEY", raising=False)
    with override_settings(PAYMENTS_GATEWAY=config(relayer_env="SHOP_SWEEPER")):
        assert serious(config(relayer_env="SHOP_SWEEPER")) == []
        assert relayer_account().key.to_0x_hex() == KEY


def test_relayer_key_env_must_name_a_variable_and_a_pasted_key_is_never_echoed():
    ((check_id, message),) = serious(config(relayer_env=KEY))
    assert check_id == "payments_gateway.E020"
    assert "PAYMENTS_GATEWAY['RELAYER_KEY_ENV'] must be the NAME of an environment variable" in message
    assert KEY.removeprefix("0x") not in message and "not a private key" in message


# --- on the chain: the factory check and the command ------------------------------------------------


@pytest.mark.django_db
def test_findings_name_a_missing_factory_a_missing_key_and_pass_when_all_is_well(
    forwarder_settings, chain, monkeypatch
):
    anvil = gateway_settings.network("anvil")
    assert forwarder_findings(anvil) == [] == scheme_for("anvil").check()

    nowhere = "0x" + "0d" * 20  # no code there
    with pytest.raises(ImproperlyConfigured) as raised:
        verify_factory(chain_client(anvil), anvil, nowhere, chain.treasury)
    assert "['anvil']['forwarder_factory']" in str(raised.value) and "no contract" in str(raised.value)
    assert "payments_gateway_sweep --deploy-factory --network anvil" in str(raised.value)

    monkeypatch.delenv("PAYMENTS_GATEWAY_RELAYER_KEY")
    (finding,) = forwarder_findings(anvil)
    assert "PAYMENTS_GATEWAY_RELAYER_KEY" in finding and "is not set" in finding


def chain_client(network):
    from payments_gateway.chain.rpc import client_for

    return client_for(network)


@pytest.mark.django_db
def test_sweep_command_prints_the_plan_in_a_dry_run_and_sends_without_one(forwarder_settings, chain, capsys):
    session = make_forwarder_session(asset="USDC", amount_due=25_000_000)
    paid_and_confirmed(chain, (session, 25_000_000))

    call_command("payments_gateway_sweep", "--dry-run")
    out = capsys.readouterr().out
    assert "network anvil: 1 batch(es) (dry run)" in out
    assert f"DUE  25 USDC from 1 address(es) [{session.deposit_address.index}] to {chain.treasury}" in out
    assert Sweep.objects.count() == 0 and chain.token("USDC").functions.balanceOf(chain.treasury).call() == 0

    call_command("payments_gateway_sweep", "--asset", "ETH")
    assert "0 batch(es)" in capsys.readouterr().out  # no ETH deposit
    call_command("payments_gateway_sweep", "--network", "anvil", "--asset", "USDC")
    (sweep,) = Sweep.objects.all()
    assert f"sent {sweep.tx_hash}" in capsys.readouterr().out
    assert chain.token("USDC").functions.balanceOf(chain.treasury).call() == 25_000_000

    for args, error in [
        (["--network", "mainnet"], "unknown network 'mainnet'"),
        (["--asset", "BTC"], "unknown asset 'BTC'"),
        (["--deploy-factory"], "needs exactly one --network"),
    ]:
        with pytest.raises(CommandError, match=error):
            call_command("payments_gateway_sweep", *args)


@pytest.mark.django_db
def test_deploy_factory_deploys_a_factory_that_computes_our_addresses(forwarder_settings, chain, capsys):
    call_command("payments_gateway_sweep", "--deploy-factory", "--network", "anvil")
    out = capsys.readouterr().out
    address = out.split(" at ")[1].split(" ")[0]
    assert address != chain.forwarder_factory
    assert f"['forwarder_factory'] = '{address}'" in out
    predicted = forwarder.factory_deposit_addresses(chain.rpc, address, chain.treasury, [0, 5])
    assert predicted == forwarder.deposit_addresses(address, chain.treasury, [0, 5])


def test_sweep_command_without_a_forwarder_network_says_so():
    with override_settings(PAYMENTS_GATEWAY=config(deposit_scheme="xpub")), pytest.raises(CommandError) as raised:
        call_command("payments_gateway_sweep", "--dry-run")
    assert 'no network uses deposit_scheme "forwarder"' in str(raised.value)

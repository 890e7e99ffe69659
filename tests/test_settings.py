"""``PAYMENTS_GATEWAY``: read lazily, follows ``override_settings``, and every mistake is named with its fix,
both when the app reads the setting and in ``manage.py check``."""

import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from bip_utils import Bip32Secp256k1, Bip39SeedGenerator
from django.conf import settings
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from payments_gateway.conf import DEFAULTS, gateway_settings
from payments_gateway.services.payments import underpayment_tolerance

MNEMONIC = " ".join(["abandon"] * 11 + ["about"])  # the public BIP39 test vector, never a real wallet
_MASTER = Bip32Secp256k1.FromSeed(Bip39SeedGenerator(MNEMONIC).Generate())
ACCOUNT = _MASTER.DerivePath("m/44'/60'/0'")
XPUB = ACCOUNT.PublicKey().ToExtended()
XPRV = ACCOUNT.PrivateKey().ToExtended()
MASTER_XPUB = _MASTER.PublicKey().ToExtended()
TOKEN = "0x" + "ab" * 20


def valid_config(**changes):
    config = {
        "XPUB": XPUB,
        "NETWORKS": {
            "testnet": {
                "chain_id": 31337,
                "rpc_urls": ["http://127.0.0.1:9"],
                "tokens": {"USDC": {"address": TOKEN, "decimals": 6}},
            }
        },
    }
    config.update(changes)
    return config


def network(**changes):
    spec = valid_config()["NETWORKS"]["testnet"]
    spec.update(changes)
    for key, value in list(spec.items()):
        if value is DROP:
            del spec[key]
    return {"testnet": spec}


def token(**changes):
    spec = {"address": TOKEN, "decimals": 6, **changes}
    return network(tokens={"USDC": {k: v for k, v in spec.items() if v is not DROP}})


DROP = object()
NET = "PAYMENTS_GATEWAY['NETWORKS']['testnet']"

# (config, text naming the key, text naming the fix, check id)
MISTAKES = {
    "xpub garbage": (valid_config(XPUB="hello world"), "PAYMENTS_GATEWAY['XPUB']", "m/44'/60'/0'", "E002"),
    "xpub bad checksum": (
        valid_config(XPUB=XPUB[:-1] + ("u" if XPUB[-1] != "u" else "v")),
        "PAYMENTS_GATEWAY['XPUB'] is not a valid extended public key",
        "starting with 'xpub'",
        "E002",
    ),
    "xprv": (valid_config(XPUB=XPRV), "PAYMENTS_GATEWAY['XPUB'] looks like a private key", "Remove it", "E002"),
    "mnemonic": (valid_config(XPUB=MNEMONIC), "PAYMENTS_GATEWAY['XPUB'] looks like a private key", "xpub", "E002"),
    "raw private key": (valid_config(XPUB="0x" + "1f" * 32), "looks like a private key", "m/44'/60'/0'", "E002"),
    "master xpub": (valid_config(XPUB=MASTER_XPUB), "depth 0, not an account key", "m/44'/60'/0'", "E002"),
    "xpub not a string": (valid_config(XPUB=42), "PAYMENTS_GATEWAY['XPUB'] must be a string", "xpub", "E002"),
    "networks not a dict": (valid_config(NETWORKS=["testnet"]), "PAYMENTS_GATEWAY['NETWORKS']", "chain_id", "E001"),
    "network without rpc_urls": (
        valid_config(NETWORKS=network(rpc_urls=DROP)),
        f"{NET}['rpc_urls']",
        "non-empty list of RPC URLs, e.g. ['http://127.0.0.1:8545']",
        "E001",
    ),
    "rpc_urls a string": (
        valid_config(NETWORKS=network(rpc_urls="http://127.0.0.1:9")),
        f"{NET}['rpc_urls']",
        "non-empty list",
        "E001",
    ),
    "rpc url not http": (valid_config(NETWORKS=network(rpc_urls=["ftp://x"])), "'ftp://x'", "http(s)", "E001"),
    "rpc url a websocket": (
        valid_config(NETWORKS=network(rpc_urls=["http://127.0.0.1:9", "wss://ws.example/v3/KEY"])),
        f"{NET}['rpc_urls']: 'wss://ws.example/v3/KEY'",
        "use an http(s) URL (the RPC client speaks JSON-RPC over HTTP); a ws(s):// URL goes in the network's 'ws_url'",
        "E001",
    ),
    "rpc url a plain websocket": (
        valid_config(NETWORKS=network(rpc_urls=["ws://127.0.0.1:8546"])),
        "'ws://127.0.0.1:8546'",
        "'ws_url'",
        "E001",
    ),
    "push redis url not a url": (
        valid_config(PUSH_REDIS_URL="127.0.0.1:6379"),
        "PAYMENTS_GATEWAY['PUSH_REDIS_URL'] must be a Redis URL",
        "redis://127.0.0.1:6379/0",
        "E032",
    ),
    "ws_url not a websocket URL": (
        valid_config(NETWORKS=network(ws_url="http://127.0.0.1:8546")),
        f"{NET}['ws_url'] must be a ws:// or wss:// URL",
        "its http(s) URLs go in 'rpc_urls'",
        "E001",
    ),
    "ws_url not a string": (
        valid_config(NETWORKS=network(ws_url=["wss://x.example"])),
        f"{NET}['ws_url']",
        "wss://mainnet.example/ws",
        "E001",
    ),
    "network without chain_id": (valid_config(NETWORKS=network(chain_id=DROP)), NET, "EIP-155 chain id", "E001"),
    "unknown network key": (valid_config(NETWORKS=network(confirmation=3)), NET, "known keys", "E001"),
    "bad network name": (valid_config(NETWORKS={"Main Net": {}}), "'Main Net'", "lowercase letters", "E001"),
    "dev not a bool": (valid_config(NETWORKS=network(dev="false")), f"{NET}['dev']", "True or False", "E001"),
    "dev on a real chain": (
        valid_config(NETWORKS=network(dev=True, chain_id=1)),
        f"{NET}['dev'] is True on chain id 1, which is not a local dev chain (1337, 31337)",
        "the test wallet would spend the node's unlocked accounts",
        "E001",
    ),
    "zero confirmations": (valid_config(NETWORKS=network(confirmations=0)), "['confirmations']", ">= 1", "E001"),
    "block_time float": (valid_config(NETWORKS=network(block_time=12.5)), "['block_time']", "'12.5'", "E001"),
    "token without decimals": (
        valid_config(NETWORKS=token(decimals=DROP)),
        f"{NET}['tokens']['USDC'] has no 'decimals'",
        "'decimals': 6",
        "E001",
    ),
    "token decimals a string": (valid_config(NETWORKS=token(decimals="6")), "['decimals']", "0..77", "E001"),
    "token bad address": (
        valid_config(NETWORKS=token(address="0x1234")),
        f"{NET}['tokens']['USDC']['address']",
        "0x-prefixed 20-byte hex address",
        "E001",
    ),
    "token without address": (valid_config(NETWORKS=token(address=DROP)), "has no 'address'", "contract", "E001"),
    "session ttl too short": (
        valid_config(SESSION_TTL=timedelta(minutes=14)),
        "PAYMENTS_GATEWAY['SESSION_TTL']",
        "between 15 minutes and 7 days",
        "E003",
    ),
    "session ttl too long": (
        valid_config(SESSION_TTL=timedelta(days=7, seconds=1)),
        "PAYMENTS_GATEWAY['SESSION_TTL']",
        "between 15 minutes and 7 days",
        "E003",
    ),
    "session ttl float": (valid_config(SESSION_TTL=3600.0), "['SESSION_TTL']", "whole number of seconds", "E003"),
    "negative late window": (
        valid_config(LATE_PAYMENT_WINDOW=timedelta(hours=-1)),
        "PAYMENTS_GATEWAY['LATE_PAYMENT_WINDOW']",
        "not negative",
        "E004",
    ),
    "unknown top-level key": (
        valid_config(SESION_TTL=timedelta(hours=1)),
        "unknown key(s) 'SESION_TTL'",
        "did you mean 'SESSION_TTL'?",
        "E100",
    ),
    "tolerance without percent sign": (
        valid_config(UNDERPAYMENT_TOLERANCE={"USDC": "5"}),
        "PAYMENTS_GATEWAY['UNDERPAYMENT_TOLERANCE']['USDC']",
        "percentage like '1%'",
        "E005",
    ),
    "tolerance over 100%": (valid_config(UNDERPAYMENT_TOLERANCE={"USDC": "150%"}), "['USDC']", "'1%'", "E005"),
    "tolerance of 100%": (
        valid_config(UNDERPAYMENT_TOLERANCE={"USDC": "100%"}),
        "['USDC'] is '100%'",
        "even 1 base unit",
        "E005",
    ),
    "negative tolerance": (valid_config(UNDERPAYMENT_TOLERANCE={"DAI": -1}), "['DAI']", "not be negative", "E005"),
    "tolerance float": (valid_config(UNDERPAYMENT_TOLERANCE={"ETH": 0.01}), "['ETH']", "never a float", "E005"),
    "tolerance not a dict": (valid_config(UNDERPAYMENT_TOLERANCE="1%"), "['UNDERPAYMENT_TOLERANCE']", "'1%'}", "E005"),
    "float rate": (
        valid_config(RATE_PROVIDER_OPTIONS={"rates": {"ETH": {"USD": 3000.1}}}),
        "PAYMENTS_GATEWAY['RATE_PROVIDER_OPTIONS']['rates']['ETH']['USD'] is a float",
        "write it as a string '3000.1'",
        "E007",
    ),
    "retry schedule with zero": (
        valid_config(WEBHOOK_RETRY_SCHEDULE=[5, 0]),
        "PAYMENTS_GATEWAY['WEBHOOK_RETRY_SCHEDULE'] must be a whole number",
        ">= 1",
        "E008",
    ),
    "private urls not a bool": (
        valid_config(ALLOW_PRIVATE_WEBHOOK_URLS="yes"),
        "PAYMENTS_GATEWAY['ALLOW_PRIVATE_WEBHOOK_URLS']",
        "True or False",
        "E012",
    ),
    "log retention under a day": (
        valid_config(WEBHOOK_LOG_RETENTION=timedelta(hours=23)),
        "PAYMENTS_GATEWAY['WEBHOOK_LOG_RETENTION'] must be at least 1 day",
        "timedelta(days=30)",
        "E018",
    ),
    "log retention not a duration": (
        valid_config(WEBHOOK_LOG_RETENTION="30d"),
        "PAYMENTS_GATEWAY['WEBHOOK_LOG_RETENTION']",
        "whole number of seconds",
        "E018",
    ),
    "rate limit cache not in CACHES": (
        valid_config(RATE_LIMIT_CACHE="redis"),
        "PAYMENTS_GATEWAY['RATE_LIMIT_CACHE'] must name a cache of CACHES",
        "'default'",
        "E019",
    ),
    "branding colour not #rrggbb": (
        valid_config(CHECKOUT_BRANDING={"accent_color": "#fff"}),
        "PAYMENTS_GATEWAY['CHECKOUT_BRANDING']['accent_color']",
        "#rrggbb (six hex digits), e.g. '#1a73e8', not '#fff'",
        "E021",
    ),
    "branding colour a name": (
        valid_config(CHECKOUT_BRANDING={"accent_color": "red; background: url(x)"}),
        "['accent_color']",
        "#rrggbb",
        "E021",
    ),
    "branding logo not http(s)": (
        valid_config(CHECKOUT_BRANDING={"logo_url": "javascript:alert(1)"}),
        "PAYMENTS_GATEWAY['CHECKOUT_BRANDING']['logo_url']",
        "absolute http(s) URL of an image",
        "E021",
    ),
    "branding logo with a quote": (
        valid_config(CHECKOUT_BRANDING={"logo_url": "https://shop.example/logo.png' data:"}),
        "['logo_url'] is not a URL we can use",
        "https://shop.example/static/logo.png",
        "E021",
    ),
    "branding logo relative": (
        valid_config(CHECKOUT_BRANDING={"logo_url": "/static/logo.png"}),
        "['logo_url'] must be an http(s) URL",
        "absolute http(s) URL",
        "E021",
    ),
    "branding misspelt key": (
        valid_config(CHECKOUT_BRANDING={"accent_colour": "#112233"}),
        "PAYMENTS_GATEWAY['CHECKOUT_BRANDING'] has unknown key(s) 'accent_colour'",
        "did you mean 'accent_color'?",
        "E021",
    ),
    "branding not a dict": (
        valid_config(CHECKOUT_BRANDING="My Shop"),
        "PAYMENTS_GATEWAY['CHECKOUT_BRANDING'] must be a dict",
        "'name': 'My Shop'",
        "E021",
    ),
    "explorer not a URL": (
        valid_config(NETWORKS=network(explorer_url="etherscan.io")),
        "PAYMENTS_GATEWAY['NETWORKS']['testnet']['explorer_url']",
        "http(s) URL without query or fragment, e.g. 'https://etherscan.io'",
        "E001",
    ),
    "wallet RPC URL with a query": (
        valid_config(NETWORKS=network(wallet_rpc_url="https://rpc.example/?key=1")),
        "['wallet_rpc_url']",
        "without query or fragment",
        "E001",
    ),
    "empty display name": (
        valid_config(NETWORKS=network(display_name=" ")),
        "['display_name']",
        "a name of 1 to 60 characters",
        "E001",
    ),
    "old addresses read more than daily": (
        valid_config(OLD_ADDRESS_SCAN_INTERVAL=timedelta(days=2)),
        "PAYMENTS_GATEWAY['OLD_ADDRESS_SCAN_INTERVAL'] must be between 1 second and 1 day",
        "timedelta(minutes=10)",
        "E022",
    ),
    "old addresses read every 0 seconds": (
        valid_config(OLD_ADDRESS_SCAN_INTERVAL=0),
        "PAYMENTS_GATEWAY['OLD_ADDRESS_SCAN_INTERVAL'] must be between 1 second and 1 day",
        "timedelta(minutes=10)",
        "E022",
    ),
    "refund link for a year": (
        valid_config(REFUND_LINK_TTL=timedelta(days=365)),
        "PAYMENTS_GATEWAY['REFUND_LINK_TTL'] must be between 1 hour and 90 days",
        "timedelta(days=7)",
        "E023",
    ),
    "not a dict": (["XPUB"], "PAYMENTS_GATEWAY must be a dict", "{'XPUB'", "E099"),
}


@pytest.mark.parametrize("case", MISTAKES)
def test_a_mistake_is_named_with_its_fix(case):
    config, names_key, names_fix, _ = MISTAKES[case]
    with override_settings(PAYMENTS_GATEWAY=config), pytest.raises(ImproperlyConfigured) as raised:
        gateway_settings.check_all()
    assert names_key in str(raised.value)
    assert names_fix in str(raised.value)


@pytest.mark.parametrize("case", MISTAKES)
def test_system_check_reports_the_same_mistake(case):
    config, _, _, check_id = MISTAKES[case]
    with override_settings(PAYMENTS_GATEWAY=config):
        with pytest.raises(ImproperlyConfigured) as raised:
            gateway_settings.check_all()
        messages = run_checks(tags=["payments_gateway"])
    assert [(m.id, m.msg) for m in messages if m.is_serious()] == [(f"payments_gateway.{check_id}", str(raised.value))]


def test_manage_py_check_fails_naming_the_key():
    config = valid_config(SESSION_TTL=timedelta(minutes=5))
    with override_settings(PAYMENTS_GATEWAY=config), pytest.raises(SystemCheckError) as raised:
        call_command("check")
    assert "payments_gateway.E003" in str(raised.value)
    assert "PAYMENTS_GATEWAY['SESSION_TTL'] must be between 15 minutes and 7 days" in str(raised.value)


def test_check_reports_every_broken_network_at_once():
    broken = {"a": {"chain_id": 1}, "b": {"rpc_urls": ["http://x"]}, "c": valid_config()["NETWORKS"]["testnet"]}
    with override_settings(PAYMENTS_GATEWAY=valid_config(NETWORKS=broken, SESSION_TTL=60)):
        messages = run_checks(tags=["payments_gateway"])
    assert [m.id for m in messages] == ["payments_gateway.E001", "payments_gateway.E001", "payments_gateway.E003"]
    assert "['a']['rpc_urls']" in messages[0].msg
    assert "['b'] has no 'chain_id'" in messages[1].msg


def test_missing_xpub_is_a_warning_in_check_and_an_error_when_used():
    config = valid_config()
    del config["XPUB"]
    with override_settings(PAYMENTS_GATEWAY=config):
        messages = run_checks(tags=["payments_gateway"])
        with pytest.raises(ImproperlyConfigured, match=r"PAYMENTS_GATEWAY\['XPUB'\] is not set: give the account"):
            gateway_settings.XPUB
    assert [(m.id, m.is_serious()) for m in messages] == [("payments_gateway.W001", False)]


def test_the_test_settings_pass_the_checks():
    assert run_checks(tags=["payments_gateway"]) == []
    call_command("check", fail_level="WARNING")


def test_valid_settings_are_parsed_with_defaults():
    config = valid_config(SESSION_TTL=900, UNDERPAYMENT_TOLERANCE={"USDC": "0.5%", "*": 10})
    config["NETWORKS"]["testnet"]["rpc_urls"] = ("https://rpc.example", "http://backup.example:8545")
    with override_settings(PAYMENTS_GATEWAY=config):
        net = gateway_settings.network("testnet")
        assert net.chain_id == 31337
        assert net.rpc_urls == ("https://rpc.example", "http://backup.example:8545")
        assert (net.confirmations, net.block_time, net.max_block_range) == (12, Decimal(12), 1000)
        assert (net.native.symbol, net.native.decimals, net.native.is_native) == ("ETH", 18, True)
        assert net.asset("USDC").address == "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"  # EIP-55
        assert net.asset("USDC").decimals == 6
        assert gateway_settings.XPUB == XPUB
        assert session_ttl() == timedelta(minutes=15)
        assert gateway_settings.LATE_PAYMENT_WINDOW == DEFAULTS["LATE_PAYMENT_WINDOW"] == timedelta(hours=24)
        assert gateway_settings.ALLOW_PRIVATE_WEBHOOK_URLS is False
        assert underpayment_tolerance("USDC", 1999) == 9  # 9.995 rounds down
        assert underpayment_tolerance("DAI", 10**18) == 10  # "*" rule
        with pytest.raises(ValueError, match="unknown asset 'USDT' on network 'testnet'; known: ETH, USDC"):
            net.asset("USDT")
        with pytest.raises(ValueError, match="unknown network 'mainnet'; configured networks: testnet"):
            gateway_settings.network("mainnet")


def test_branding_and_customer_facing_network_keys_are_parsed():
    config = valid_config(
        CHECKOUT_BRANDING={"name": " My Shop ", "logo_url": "https://cdn.shop.example:8443/logo.svg",
                           "accent_color": "#FFD400"},
        NETWORKS=network(display_name="Base", explorer_url="https://basescan.org/", wallet_rpc_url="https://mainnet.base.org"),
    )  # fmt: skip
    with override_settings(PAYMENTS_GATEWAY=config):
        branding = gateway_settings.CHECKOUT_BRANDING
        assert (branding.name, branding.accent_color) == ("My Shop", "#ffd400")
        assert branding.logo_origin == "https://cdn.shop.example:8443"
        assert branding.text_on_accent == "#000000"  # black reads better on yellow
        net = gateway_settings.network("testnet")
        assert (net.display_name, net.wallet_rpc_url) == ("Base", "https://mainnet.base.org")
        assert net.explorer_link("tx", "0xabc") == "https://basescan.org/tx/0xabc"
    with override_settings(PAYMENTS_GATEWAY=valid_config(CHECKOUT_BRANDING={"accent_color": "#1a2b6d"})):
        assert gateway_settings.CHECKOUT_BRANDING.text_on_accent == "#ffffff"
    with override_settings(PAYMENTS_GATEWAY=valid_config()):
        net = gateway_settings.network("testnet")
        assert (net.display_name, net.explorer_url, net.explorer_link("tx", "0xabc")) == ("testnet", None, None)
        assert gateway_settings.CHECKOUT_BRANDING.logo_origin == ""


def test_percentage_tolerance_is_exact_on_uint256_amounts():
    with override_settings(PAYMENTS_GATEWAY=valid_config(UNDERPAYMENT_TOLERANCE={"ETH": "1%"})):
        # A 28-digit Decimal product would round 10**40 - 1 up to 10**40 and allow one unit too many.
        assert underpayment_tolerance("ETH", 10**40 - 1) == 10**38 - 1
        assert underpayment_tolerance("ETH", 2**256 - 1) == (2**256 - 1) // 100


def session_ttl():
    return gateway_settings.SESSION_TTL


def test_override_settings_changes_what_is_read_and_back():
    before = session_ttl()
    assert before == timedelta(hours=24)
    assert set(gateway_settings.networks) == set(settings.PAYMENTS_GATEWAY["NETWORKS"])
    with override_settings(PAYMENTS_GATEWAY=valid_config(SESSION_TTL=timedelta(hours=2))):
        assert session_ttl() == timedelta(hours=2)
        assert list(gateway_settings.networks) == ["testnet"]
        with override_settings(PAYMENTS_GATEWAY=valid_config(SESSION_TTL=timedelta(hours=3))):
            assert session_ttl() == timedelta(hours=3)
        assert session_ttl() == timedelta(hours=2)
    assert session_ttl() == before
    assert set(gateway_settings.networks) == set(settings.PAYMENTS_GATEWAY["NETWORKS"])


def test_a_broken_override_does_not_stick():
    with override_settings(PAYMENTS_GATEWAY=valid_config(SESSION_TTL=1)), pytest.raises(ImproperlyConfigured):
        gateway_settings.SESSION_TTL
    assert session_ttl() == timedelta(hours=24)


def test_importing_the_settings_object_reads_no_settings():
    # Settings read at import time would break override_settings: importing must work with no Django settings
    # configured at all, and only the first attribute read touches them.
    code = (
        "import payments_gateway.conf as c, payments_gateway.checks\n"
        "print('imported')\n"
        "c.gateway_settings.SESSION_TTL\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.stdout.strip() == "imported", result.stderr
    assert "settings are not configured" in result.stderr.splitlines()[-1]


@pytest.fixture
def sqlite_default(monkeypatch):
    """The checks see a SQLite default database (whatever this run uses) whose library version a test sets."""
    from django.db.utils import ConnectionHandler

    from payments_gateway import checks

    handler = ConnectionHandler({"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}})
    monkeypatch.setattr(checks, "connections", handler, raising=False)  # what the check reads

    def at_version(*version):
        monkeypatch.setattr(handler["default"].Database, "sqlite_version_info", version)

    return at_version


def test_sqlite_older_than_3_35_fails_the_system_check_naming_both_versions(sqlite_default):
    sqlite_default(3, 34, 1)
    messages = run_checks(tags=["payments_gateway"])
    assert [(m.id, m.is_serious()) for m in messages] == [("payments_gateway.E101", True)]
    assert "The default database is SQLite 3.34.1, but payments_gateway needs SQLite 3.35 or newer" in messages[0].msg
    assert "INSERT ... RETURNING" in messages[0].msg
    with pytest.raises(SystemCheckError, match=r"payments_gateway\.E101"):
        call_command("check")


def test_sqlite_3_35_passes_the_system_check(sqlite_default):
    sqlite_default(3, 35, 0)
    assert run_checks(tags=["payments_gateway"]) == []


def test_an_old_sqlite_library_does_not_matter_when_the_database_is_postgresql(monkeypatch):
    from django.db.utils import ConnectionHandler

    from payments_gateway import checks

    handler = ConnectionHandler({"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "shop"}})
    monkeypatch.setattr(checks, "connections", handler, raising=False)  # what the check reads
    monkeypatch.setattr(sqlite3.dbapi2, "sqlite_version_info", (3, 31, 1))
    assert run_checks(tags=["payments_gateway"]) == []


@pytest.mark.parametrize("chain_id", [31337, 1337])
def test_dev_is_allowed_on_a_local_chain_id(chain_id):
    with override_settings(PAYMENTS_GATEWAY=valid_config(NETWORKS=network(dev=True, chain_id=chain_id))):
        assert gateway_settings.network("testnet").dev is True
        assert run_checks(tags=["payments_gateway"]) == []


def test_dev_on_a_real_chain_id_is_allowed_only_with_debug():
    config = valid_config(NETWORKS=network(dev=True, chain_id=8453))
    with override_settings(PAYMENTS_GATEWAY=config, DEBUG=True):
        assert gateway_settings.network("testnet").dev is True
    with override_settings(PAYMENTS_GATEWAY=config), pytest.raises(ImproperlyConfigured, match="not a local dev chain"):
        gateway_settings.network("testnet")

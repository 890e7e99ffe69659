"""A fiat price becomes an exact asset amount, rounded up, through the configured rate provider."""

from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from payments_gateway.conf import gateway_settings
from payments_gateway.pricing import (
    ChainlinkRateProvider,
    FixedRateProvider,
    NoRate,
    RateProvider,
    RateUnavailable,
    amount_for,
    get_quote,
    get_rate_provider,
)

from .factories import TEST_NETWORK

NETWORK = TEST_NETWORK | {
    "tokens": {
        "USDC": {"address": "0x" + "a0" * 20, "decimals": 6},
        "DAI": {"address": "0x" + "b0" * 20, "decimals": 18},
    }
}


@pytest.fixture
def network(settings):
    settings.PAYMENTS_GATEWAY = {
        "NETWORKS": {"test": NETWORK},
        "RATE_PROVIDER_OPTIONS": {"rates": {"ETH": {"USD": "3000", "EUR": "2765.43"}}},
    }
    return gateway_settings.network("test")


def test_stablecoins_are_one_to_one_with_usd(network):
    quote = get_quote(Decimal("19.99"), "USD", "USDC", network)
    assert quote.amount == 19_990_000
    assert (quote.rate, quote.source) == (Decimal(1), "fixed")
    assert get_quote(Decimal("19.99"), "USD", "DAI", network).amount == 19_990_000_000_000_000_000


def test_eth_amount_is_exact_and_rounded_up_for_the_merchant(network):
    # 10 / 3000 = 0.00333… ETH: 3333333333333333.33… wei, charged as …334 (never less than the price).
    quote = get_quote(Decimal("10.00"), "USD", "ETH", network)
    assert quote.amount == 3_333_333_333_333_334
    assert quote.amount * Decimal(3000) / 10**18 >= Decimal("10.00")
    # An exact division is not bumped.
    assert get_quote(Decimal("30.00"), "USD", "ETH", network).amount == 10**16
    assert get_quote(Decimal("2765.43"), "EUR", "ETH", network).amount == 10**18


def test_rounding_up_is_at_most_one_base_unit():
    for price in ["0.01", "1", "9.99", "123456.78", "0.03"]:
        for rate in ["3000", "2765.43", "0.7", "1"]:
            units = amount_for(Decimal(price), Decimal(rate), 6)
            value = Decimal(units) * Decimal(rate) / 10**6
            assert value >= Decimal(price)
            assert (Decimal(units - 1) * Decimal(rate) / 10**6) < Decimal(price)


def test_a_pair_without_rate_is_refused_with_the_setting_to_add(network):
    with pytest.raises(NoRate, match=r"no USDC/EUR rate.*\['USDC'\]\['EUR'\]"):
        get_quote(Decimal("1"), "EUR", "USDC", network)
    with pytest.raises(NoRate, match="unknown currency 'XXX'"):
        get_quote(Decimal("1"), "XXX", "ETH", network)


def test_float_or_negative_rates_are_configuration_errors():
    with pytest.raises(ImproperlyConfigured, match="no floats"):
        FixedRateProvider(rates={"ETH": {"USD": 3000.5}})
    with pytest.raises(ImproperlyConfigured, match="positive"):
        FixedRateProvider(rates={"ETH": {"USD": "-1"}})


class ManyDecimalsProvider(RateProvider):
    """Like a feed whose decimals() is above 18: the rate has more decimal places than a session stores."""

    def rate(self, asset, currency, network):
        return Decimal(self.options.get("rate", "2999.1234567890123456789")), "many-decimals"


def test_a_rate_with_more_than_18_decimals_is_truncated_down_so_the_amount_rounds_up(network):
    quote = ManyDecimalsProvider().quote(Decimal("100.00"), "USD", network.asset("ETH"), network)
    assert quote.rate == Decimal("2999.123456789012345678")  # the 19th decimal (9) dropped, never rounded up
    assert quote.amount == amount_for(Decimal("100.00"), Decimal("2999.123456789012345678"), 18)
    assert quote.amount >= amount_for(Decimal("100.00"), Decimal("2999.1234567890123456789"), 18)
    with pytest.raises(RateUnavailable, match="too small to store"):
        ManyDecimalsProvider(rate="1e-19").quote(Decimal("1"), "USD", network.asset("ETH"), network)
    with pytest.raises(RateUnavailable, match="too large to store"):
        ManyDecimalsProvider(rate="1e22").quote(Decimal("1"), "USD", network.asset("ETH"), network)


def test_a_fixed_rate_with_more_than_18_decimals_is_a_configuration_error_naming_the_key():
    with pytest.raises(ImproperlyConfigured, match=r"\['ETH'\]\['USD'\] has more than 18 decimal places"):
        FixedRateProvider(rates={"ETH": {"USD": "3000.0000000000000000001"}})
    assert FixedRateProvider(rates={"ETH": {"USD": "3000.0000000000000000000"}}).rates["ETH"]["USD"] == 3000


def test_provider_is_chosen_by_registered_name_or_dotted_path(settings):
    settings.PAYMENTS_GATEWAY = {"RATE_PROVIDER": "chainlink"}
    assert type(get_rate_provider()) is ChainlinkRateProvider
    settings.PAYMENTS_GATEWAY = {"RATE_PROVIDER": "payments_gateway.pricing.FixedRateProvider"}
    assert type(get_rate_provider()) is FixedRateProvider
    settings.PAYMENTS_GATEWAY = {"RATE_PROVIDER": "nope.Provider"}
    with pytest.raises(ImproperlyConfigured, match="RATE_PROVIDER.*'nope.Provider'.*chainlink, fixed"):
        get_rate_provider()


# --- Chainlink price feed, read on the dev chain -------------------------------------------------------------


@pytest.fixture
def feed_network(anvil_settings, settings):
    settings.PAYMENTS_GATEWAY = anvil_settings | {"RATE_PROVIDER": "chainlink"}
    return gateway_settings.network("anvil")


def feed(chain):
    return chain.contract("MockV3Aggregator", chain.price_feeds["ETH/USD"])


@pytest.mark.anvil
def test_chainlink_quote_reads_the_feed_and_rounds_up(chain, feed_network):
    chain.set_eth_usd("2500.12345678")
    quote = get_quote(Decimal("100.00"), "USD", "ETH", feed_network)
    assert quote.rate == Decimal("2500.12345678")
    assert quote.source.startswith(f"chainlink:{chain.price_feeds['ETH/USD']}#")
    assert quote.amount == amount_for(Decimal("100.00"), Decimal("2500.12345678"), 18)
    assert quote.amount * quote.rate / 10**18 >= Decimal("100.00")
    # Stablecoins have no feed here: the fixed 1:1 table answers.
    assert get_quote(Decimal("100.00"), "USD", "USDC", feed_network).amount == 100_000_000


@pytest.mark.anvil
def test_a_chainlink_feed_with_more_than_18_decimals_is_truncated_down(chain, anvil_settings, settings):
    from payments_gateway.chain.contracts import load_artifact

    artifact = load_artifact("MockV3Aggregator")
    factory = chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    answer = 250012345678901234567891  # 2500.12345678901234567891 with 20 decimals
    tx = factory.constructor(20, "ETH / USD", answer).transact({"from": chain.w3.eth.accounts[0]})
    address = chain.w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    network = anvil_settings["NETWORKS"]["anvil"] | {"price_feeds": {"ETH/USD": address}}
    settings.PAYMENTS_GATEWAY = anvil_settings | {"RATE_PROVIDER": "chainlink", "NETWORKS": {"anvil": network}}
    quote = get_quote(Decimal("100.00"), "USD", "ETH", gateway_settings.network("anvil"))
    assert quote.rate == Decimal("2500.123456789012345678")  # "91" dropped, never rounded up
    assert quote.amount == amount_for(Decimal("100.00"), Decimal("2500.123456789012345678"), 18)


@pytest.mark.anvil
def test_chainlink_refuses_negative_zero_and_stale_answers(chain, feed_network):
    chain.set_eth_usd("-1")
    with pytest.raises(RateUnavailable, match="not a price"):
        get_quote(Decimal("1"), "USD", "ETH", feed_network)
    chain.set_eth_usd("0")
    with pytest.raises(RateUnavailable, match="not a price"):
        get_quote(Decimal("1"), "USD", "ETH", feed_network)
    two_hours_ago = chain.w3.eth.get_block("latest")["timestamp"] - 7200
    tx = feed(chain).functions.updateAnswerAt(3000 * 10**8, two_hours_ago).transact({"from": chain.w3.eth.accounts[0]})
    chain.w3.eth.wait_for_transaction_receipt(tx)
    with pytest.raises(RateUnavailable, match="stale"):
        get_quote(Decimal("1"), "USD", "ETH", feed_network)


def test_chainlink_unreachable_rpc_is_unavailable(settings):
    settings.PAYMENTS_GATEWAY = {
        "RATE_PROVIDER": "chainlink",
        "NETWORKS": {
            "test": NETWORK | {"rpc_urls": ["http://127.0.0.1:9"], "price_feeds": {"ETH/USD": "0x" + "c0" * 20}}
        },
    }
    with pytest.raises(RateUnavailable, match="cannot read price feed"):
        get_quote(Decimal("1"), "USD", "ETH", gateway_settings.network("test"))

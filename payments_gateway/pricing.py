"""Fiat price → exact asset amount in base units, through the configured rate provider.

A rate provider answers one question: how much fiat is one whole unit of an asset worth (``rate``)? The
gateway turns a fiat price into base units as ``ceil(price / rate * 10**decimals)``, computed with exact
rational arithmetic: **rounding is always up, in the merchant's favour** — the customer may pay at most one
base unit (1 wei, 0.000001 USDC) more than the exact price, never less. The quote (rate, source, time) is
stored on the checkout session when it is created and never changes afterwards.

Providers are a seam like django-payments' variants: one small base class, :class:`RateProvider`, and a
registry of names. ``PAYMENTS_GATEWAY["RATE_PROVIDER"]`` is a registered name (``"fixed"``, ``"chainlink"``)
or a dotted path to a subclass; ``PAYMENTS_GATEWAY["RATE_PROVIDER_OPTIONS"]`` is passed to its constructor.

Built-ins:

- :class:`FixedRateProvider` — a table ``{"rates": {"ETH": {"USD": "3000"}}}``; the stablecoins USDC, USDT and
  DAI are 1:1 to USD unless the table says otherwise.
- :class:`ChainlinkRateProvider` — reads ``latestRoundData()`` and ``decimals()`` of the network's
  Chainlink-style price feed ``NetworkConfig.price_feeds["ETH/USD"]``; refuses non-positive, incomplete or
  stale answers (older than ``max_age`` seconds, default 3600). Pairs without a feed fall back to the fixed
  table (so stablecoins stay 1:1 to USD).

A stored rate has at most 18 decimal places (``CheckoutSession.quote_rate``). A rate from the fixed table with
more is a configuration error naming its key. A rate from a feed or a custom provider with more (a feed whose
``decimals()`` is above 18) is truncated to 18 places, rounding DOWN: a lower rate means a higher amount, so the
rounding again favours the merchant, by far less than one base unit per ~10**18 of price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Context, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from .conf import AssetConfig, NetworkConfig, gateway_settings, settings_cache
from .money import CURRENCY_EXPONENTS, decimal_places
from .plugins import Plugin, load_plugin

STABLECOINS_USD = ("USDC", "USDT", "DAI")
# CheckoutSession.quote_rate is numeric(40, 18).
RATE_DECIMAL_PLACES = 18
RATE_LIMIT = Decimal(10) ** (40 - RATE_DECIMAL_PLACES)
_RATE_QUANTUM = Decimal(1).scaleb(-RATE_DECIMAL_PLACES)


class PricingError(Exception):
    """No quote can be given."""


class NoRate(PricingError):
    """The provider has no rate for this asset and currency (a client error: choose another pair)."""


class RateUnavailable(PricingError):
    """The provider should have a rate but cannot give a trustworthy one now (feed stale, RPC down)."""


@dataclass(frozen=True)
class Quote:
    """A locked price: ``amount`` base units of ``asset`` for ``fiat_amount`` ``currency`` at ``rate``."""

    asset: str
    currency: str
    fiat_amount: Decimal
    rate: Decimal  # fiat per one whole unit of the asset
    source: str
    quoted_at: datetime
    amount: int  # base units, rounded up


def currency_exponent(currency: str) -> int:
    """Minor-unit digits of an ISO 4217 currency (USD 2, JPY 0, KWD 3); ``NoRate`` for an unknown one."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise NoRate(f"unknown currency {currency!r}; supported: {', '.join(sorted(CURRENCY_EXPONENTS))}") from None


def amount_for(fiat_amount: Decimal, rate: Decimal, decimals: int) -> int:
    """Base units to charge for ``fiat_amount`` at ``rate`` fiat per whole unit: exact, rounded up."""
    exact = Fraction(fiat_amount) * 10**decimals / Fraction(rate)
    return -(-exact.numerator // exact.denominator)


@settings_cache
def get_rate_provider() -> RateProvider:
    """The configured provider (``RATE_PROVIDER`` + ``RATE_PROVIDER_OPTIONS``), built once per settings."""
    return build_rate_provider(gateway_settings.RATE_PROVIDER, gateway_settings.RATE_PROVIDER_OPTIONS)


def build_rate_provider(path: str, options: dict[str, Any]) -> RateProvider:
    """The provider ``path`` names (a registered name or a dotted path) with ``options``; ``ImproperlyConfigured``
    naming the key when either is wrong (also what ``manage.py check`` reports)."""
    return load_plugin(RateProvider, path, "PAYMENTS_GATEWAY['RATE_PROVIDER']")(**options)


def get_quote(
    fiat_amount: Decimal, currency: str, asset: str, network: NetworkConfig, *, now: datetime | None = None
) -> Quote:
    """Quote ``fiat_amount`` ``currency`` in ``asset`` on ``network`` with the configured provider."""
    return get_rate_provider().quote(fiat_amount, currency, network.asset(asset), network, now=now)


class RateProvider(Plugin):
    """Base class of rate providers. Subclasses set ``name`` (to register it) and implement :meth:`rate`."""

    registry: ClassVar[dict[str, type[RateProvider]]] = {}

    def __init__(self, **options: Any) -> None:
        self.options = options

    def rate(self, asset: AssetConfig, currency: str, network: NetworkConfig) -> tuple[Decimal, str]:
        """``(fiat per one whole asset unit, source description)``; raise :class:`PricingError` if none."""
        raise NotImplementedError

    def quote(
        self,
        fiat_amount: Decimal,
        currency: str,
        asset: AssetConfig,
        network: NetworkConfig,
        *,
        now: datetime | None = None,
    ) -> Quote:
        """Lock a price: the rate now and the amount in base units, rounded up."""
        currency_exponent(currency)
        rate, source = self.rate(asset, currency, network)
        name = self.name or type(self).__name__
        if not rate.is_finite() or rate <= 0:
            raise RateUnavailable(f"{name} gave a non-positive rate {rate}.")
        if rate >= RATE_LIMIT:
            raise RateUnavailable(f"{name} gave a rate {rate} of {currency} per {asset.symbol}: too large to store.")
        # At most 18 decimal places, rounded down (so the amount rounds up, for the merchant).
        rate = rate.quantize(_RATE_QUANTUM, rounding=ROUND_DOWN, context=Context(prec=100))
        if rate <= 0:
            raise RateUnavailable(f"{name} gave a rate below 10**-{RATE_DECIMAL_PLACES}, too small to store.")
        return Quote(
            asset=asset.symbol,
            currency=currency,
            fiat_amount=fiat_amount,
            rate=rate,
            source=source[:100],
            quoted_at=now or timezone.now(),
            amount=amount_for(fiat_amount, rate, asset.decimals),
        )


class FixedRateProvider(RateProvider):
    """Rates from a table: ``RATE_PROVIDER_OPTIONS = {"rates": {"ETH": {"USD": "3000"}}}``.

    Rates are strings, ints or Decimals (never floats). USDC, USDT and DAI are 1 USD unless the table says
    otherwise.
    """

    name = "fixed"

    def __init__(self, rates: dict | None = None, **options: Any) -> None:
        super().__init__(**options)
        table: dict[str, dict[str, Decimal]] = {coin: {"USD": Decimal(1)} for coin in STABLECOINS_USD}
        if not isinstance(rates or {}, dict):
            raise ImproperlyConfigured("PAYMENTS_GATEWAY['RATE_PROVIDER_OPTIONS']['rates'] must be a dict.")
        for asset, per_currency in (rates or {}).items():
            key = f"PAYMENTS_GATEWAY['RATE_PROVIDER_OPTIONS']['rates'][{asset!r}]"
            if not isinstance(per_currency, dict):
                raise ImproperlyConfigured(f"{key} must be a dict like {{'USD': '3000'}}.")
            for currency, value in per_currency.items():
                table.setdefault(asset, {})[currency] = _rate(value, f"{key}[{currency!r}]")
        self.rates = table

    def rate(self, asset: AssetConfig, currency: str, network: NetworkConfig) -> tuple[Decimal, str]:
        try:
            return self.rates[asset.symbol][currency], "fixed"
        except KeyError:
            raise NoRate(
                f"no {asset.symbol}/{currency} rate: add it to "
                f"PAYMENTS_GATEWAY['RATE_PROVIDER_OPTIONS']['rates'][{asset.symbol!r}][{currency!r}]"
            ) from None


class ChainlinkRateProvider(RateProvider):
    """Rates read on chain from Chainlink-style aggregators (``latestRoundData`` + ``decimals``).

    The feed of ``ETH`` in ``USD`` on a network is ``NETWORKS[name]["price_feeds"]["ETH/USD"]``. Options:
    ``max_age`` (seconds, default 3600) — an answer updated longer ago is refused; ``rates`` — a fixed
    table for pairs without a feed (stablecoins are 1:1 to USD by default).
    """

    name = "chainlink"

    def __init__(self, max_age: int = 3600, rates: dict | None = None, **options: Any) -> None:
        super().__init__(**options)
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age <= 0:
            raise ImproperlyConfigured("PAYMENTS_GATEWAY['RATE_PROVIDER_OPTIONS']['max_age'] must be seconds > 0.")
        self.max_age = timedelta(seconds=max_age)
        self.fallback = FixedRateProvider(rates=rates)

    def rate(self, asset: AssetConfig, currency: str, network: NetworkConfig) -> tuple[Decimal, str]:
        feed = network.price_feeds.get(f"{asset.symbol}/{currency}")
        if feed is None:
            return self.fallback.rate(asset, currency, network)
        round_id, answer, updated_at, decimals = self._read_feed(network, feed)
        if answer <= 0:
            raise RateUnavailable(f"price feed {feed} on {network.name} answered {answer} (not a price).")
        age = timezone.now() - datetime.fromtimestamp(updated_at, tz=UTC)
        if updated_at == 0 or age > self.max_age:
            raise RateUnavailable(
                f"price feed {feed} on {network.name} is stale: last updated {age} ago (max {self.max_age})."
            )
        return Decimal(answer).scaleb(-decimals), f"chainlink:{feed}#{round_id}"

    def _read_feed(self, network: NetworkConfig, feed: str) -> tuple[int, int, int, int]:
        """``(round_id, answer, updated_at, decimals)`` in one JSON-RPC batch through the chain layer's client,
        which fails over between ``rpc_urls``, backs off and checks each URL's chain id."""
        from eth_abi import decode

        from .chain.rpc import RPCError, client_for

        calls = [("eth_call", [{"to": feed, "data": selector}, "latest"]) for selector in (DECIMALS, LATEST_ROUND)]
        try:
            raw_decimals, raw_round = client_for(network).batch(calls)
            (decimals,) = decode(["uint8"], bytes.fromhex(raw_decimals[2:]))
            round_id, answer, _started, updated_at, _answered = decode(
                ["uint80", "int256", "uint256", "uint256", "uint80"], bytes.fromhex(raw_round[2:])
            )
        except (RPCError, ValueError, TypeError) as exc:  # no node answered, or the address is no feed
            raise RateUnavailable(f"cannot read price feed {feed} on {network.name}: {exc}") from None
        return round_id, answer, updated_at, decimals


def _rate(value: Any, key: str) -> Decimal:
    if isinstance(value, float | bool):
        raise ImproperlyConfigured(f"{key} must be a string, int or Decimal, not {value!r} (no floats for money).")
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        rate = Decimal(0)
    if not rate.is_finite() or rate <= 0:
        raise ImproperlyConfigured(f"{key} must be a positive number, not {value!r}.")
    if rate >= RATE_LIMIT:
        raise ImproperlyConfigured(f"{key} must be below 10**{40 - RATE_DECIMAL_PLACES}, not {value!r}.")
    if decimal_places(rate) > RATE_DECIMAL_PLACES and rate != rate.quantize(_RATE_QUANTUM, context=Context(prec=100)):
        raise ImproperlyConfigured(
            f"{key} has more than {RATE_DECIMAL_PLACES} decimal places ({value!r}); a rate is stored with at most "
            f"{RATE_DECIMAL_PLACES}."
        )
    return rate


# AggregatorV3Interface selectors: decimals() and latestRoundData().
DECIMALS = "0x313ce567"
LATEST_ROUND = "0xfeaf968c"

"""The ``PAYMENTS_GATEWAY`` settings dict, read lazily and validated.

Use ``from payments_gateway.conf import gateway_settings`` and read attributes
(``gateway_settings.SESSION_TTL``, ``gateway_settings.networks["anvil"]``). Values are read from
``django.conf.settings`` on first use and cached until a ``setting_changed`` signal (so
``override_settings`` works in tests). A missing or malformed value raises ``ImproperlyConfigured``
naming the key and how to fix it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

SETTING_NAME = "PAYMENTS_GATEWAY"

DEFAULTS: dict[str, Any] = {
    # {name: {"chain_id", "rpc_urls", "confirmations", "block_time", "tokens", "native", ...}}
    "NETWORKS": {},
    # Account-level extended public key (m/44'/60'/0'); deposit address i is m/44'/60'/0'/0/i.
    "XPUB": None,
    "SESSION_TTL": timedelta(hours=24),
    "LATE_PAYMENT_WINDOW": timedelta(hours=24),
    # {"USDC": "1%", "DAI": 10**16, "*": 0}: base units (int) or a percentage string (< 100 %), per asset. Base
    # units are capped at MAX_ABSOLUTE_TOLERANCE_PERCENT % of the amount due (see GatewaySettings.tolerance).
    "UNDERPAYMENT_TOLERANCE": {},
    "RATE_PROVIDER": "payments_gateway.pricing.FixedRateProvider",
    "RATE_PROVIDER_OPTIONS": {},
    # Seconds between delivery attempts (Standard Webhooks' schedule; spans more than 24 h).
    "WEBHOOK_RETRY_SCHEDULE": [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400],
    "WEBHOOK_TIMEOUT": 15,
    "WEBHOOK_SECRET_ROTATION_OVERLAP": timedelta(hours=24),
    "WEBHOOK_DISABLE_AFTER": timedelta(days=5),
    "ALLOW_PRIVATE_WEBHOOK_URLS": False,
    # Incoming: {source: {"scheme": "standard"|"hmac-sha256", "secrets": [...], "handler": dotted path, ...}}
    # (see payments_gateway/webhooks/incoming/sources.py)
    "WEBHOOK_SOURCES": {},
    "WEBHOOK_MAX_BODY": 256 * 1024,
    "IDEMPOTENCY_KEY_TTL": timedelta(hours=24),
    # How often the scanner polls each network, in seconds (default: the network's block_time).
    "SCAN_INTERVAL": None,
    # Incoming: seconds before each retry of an event whose handler failed; after the last, it stays failed
    # (reprocess it from the admin).
    "WEBHOOK_INCOMING_RETRY_SCHEDULE": [60, 300, 1800, 7200, 21600],
    # Incoming: how long the webhook log (every request; processed events) is kept before the purge task deletes it.
    "WEBHOOK_LOG_RETENTION": timedelta(days=30),
    # The cache (a key of CACHES) holding rate-limit counts; per process with LocMemCache, so share one (Redis)
    # across processes (see payments_gateway/ratelimit.py).
    "RATE_LIMIT_CACHE": "default",
}

# An absolute UNDERPAYMENT_TOLERANCE never forgives more than this share of a session's amount due.
MAX_ABSOLUTE_TOLERANCE_PERCENT = Decimal(1)

_NETWORK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
TX_HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ASSET = re.compile(r"^[A-Z0-9.]{1,12}$")
_DURATION_KEYS = {
    "LATE_PAYMENT_WINDOW",
    "WEBHOOK_SECRET_ROTATION_OVERLAP",
    "WEBHOOK_DISABLE_AFTER",
    "IDEMPOTENCY_KEY_TTL",
}
SESSION_TTL_RANGE = (timedelta(minutes=15), timedelta(days=7))


@dataclass(frozen=True)
class AssetConfig:
    """A coin on a network: the native coin (``address`` is None) or an ERC-20 token."""

    symbol: str
    decimals: int
    address: str | None = None

    @property
    def is_native(self) -> bool:
        return self.address is None


@dataclass(frozen=True)
class NetworkConfig:
    """One EVM network from ``PAYMENTS_GATEWAY["NETWORKS"]``."""

    name: str
    chain_id: int
    rpc_urls: tuple[str, ...]
    confirmations: int
    block_time: Decimal
    native: AssetConfig
    tokens: dict[str, AssetConfig] = field(default_factory=dict)
    # Largest block span one eth_getLogs may ask for (provider limit), and addresses per OR-list.
    max_block_range: int = 1000
    address_chunk: int = 1000
    rpc_timeout: Decimal = Decimal(10)
    # Multicall3 contract used to read many ETH balances in one call (None: no balance sweep).
    multicall3: str | None = None
    # A local development chain: enables "Pay with test wallet" and the dev-only commands.
    dev: bool = False
    # Chainlink-style price feeds on this network: {"ETH/USD": "0x..."}
    price_feeds: dict[str, str] = field(default_factory=dict)

    @property
    def assets(self) -> dict[str, AssetConfig]:
        return {self.native.symbol: self.native, **self.tokens}

    def asset(self, symbol: str) -> AssetConfig:
        try:
            return self.assets[symbol]
        except KeyError:
            known = ", ".join(sorted(self.assets))
            raise ValueError(f"unknown asset {symbol!r} on network {self.name!r}; known: {known}") from None


def _key(*parts: str) -> str:
    return SETTING_NAME + "".join(f"[{p!r}]" for p in parts)


def _duration(value: Any, key: str) -> timedelta:
    if isinstance(value, int) and not isinstance(value, bool):
        value = timedelta(seconds=value)
    if isinstance(value, timedelta) and value >= timedelta(0):
        return value
    raise ImproperlyConfigured(
        f"{key} must be a timedelta or a whole number of seconds, not negative, e.g. timedelta(hours=24); "
        f"got {value!r}."
    )


def _positive_int(value: Any, key: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        floor = 0 if allow_zero else 1
        raise ImproperlyConfigured(f"{key} must be a whole number >= {floor}, not {value!r}.")
    return value


def _decimal(value: Any, key: str) -> Decimal:
    if isinstance(value, float):
        raise ImproperlyConfigured(
            f"{key} must be an int, a Decimal or a string, not a float ({value!r}): write it as {str(value)!r}."
        )
    if isinstance(value, bool):
        raise ImproperlyConfigured(f"{key} must be a number, not {value!r}.")
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ImproperlyConfigured(f"{key} must be a number, not {value!r}.") from None
    if not result.is_finite() or result <= 0:
        raise ImproperlyConfigured(f"{key} must be a positive number, not {value!r}.")
    return result


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"{key} must be True or False, not {value!r}.")
    return value


def _address(value: Any, key: str) -> str:
    from eth_utils import to_checksum_address

    if not isinstance(value, str) or not ADDRESS_RE.match(value):
        raise ImproperlyConfigured(f"{key} must be a 0x-prefixed 20-byte hex address, not {value!r}.")
    return to_checksum_address(value)


def _asset(spec: Any, symbol: str, key: str, *, native: bool) -> AssetConfig:
    if not isinstance(spec, dict):
        example = '{"symbol": "ETH", "decimals": 18}' if native else '{"address": "0x...", "decimals": 6}'
        raise ImproperlyConfigured(f"{key} must be a dict like {example}, not {spec!r}.")
    if "decimals" not in spec:
        raise ImproperlyConfigured(f"{key} has no 'decimals': add them, e.g. 'decimals': {18 if native else 6}.")
    decimals = spec["decimals"]
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 77:
        raise ImproperlyConfigured(f"{_key_join(key, 'decimals')} must be a whole number 0..77, not {decimals!r}.")
    if not _ASSET.match(symbol):
        raise ImproperlyConfigured(f"{key}: asset symbol {symbol!r} must be 1-12 capitals or digits.")
    if native:
        return AssetConfig(symbol=symbol, decimals=decimals)
    if "address" not in spec:
        raise ImproperlyConfigured(f"{key} has no 'address': add the token contract address.")
    return AssetConfig(symbol=symbol, decimals=decimals, address=_address(spec["address"], _key_join(key, "address")))


def _key_join(key: str, part: str) -> str:
    return f"{key}[{part!r}]"


def parse_network(name: Any, spec: Any) -> NetworkConfig:
    """Validate one ``NETWORKS`` entry; raise ``ImproperlyConfigured`` naming the bad key."""
    key = _key("NETWORKS", str(name))
    if not isinstance(name, str) or not _NETWORK_NAME.match(name):
        raise ImproperlyConfigured(f"{key}: a network name is lowercase letters, digits, '-' or '_', not {name!r}.")
    if not isinstance(spec, dict):
        raise ImproperlyConfigured(f"{key} must be a dict with chain_id, rpc_urls, confirmations, ...")
    known = {
        "chain_id", "rpc_urls", "confirmations", "block_time", "tokens", "native", "max_block_range",
        "address_chunk", "rpc_timeout", "multicall3", "dev", "price_feeds",
    }  # fmt: skip
    unknown = set(spec) - known
    if unknown:
        raise ImproperlyConfigured(f"{key} has unknown keys {sorted(unknown)}; known keys: {sorted(known)}.")
    if "chain_id" not in spec:
        raise ImproperlyConfigured(f"{key} has no 'chain_id': add the network's EIP-155 chain id, e.g. 1.")
    chain_id = _positive_int(spec["chain_id"], _key_join(key, "chain_id"))
    urls = spec.get("rpc_urls")
    if not urls or not isinstance(urls, list | tuple) or not all(isinstance(u, str) for u in urls):
        raise ImproperlyConfigured(
            f"{_key_join(key, 'rpc_urls')} must be a non-empty list of RPC URLs, e.g. ['http://127.0.0.1:8545']."
        )
    for url in urls:
        # The RPC client (chain/rpc.py) speaks JSON-RPC over HTTP POST only; a ws(s):// URL would pass here and
        # fail on every call.
        if not re.match(r"^https?://[^\s/]+", url):
            raise ImproperlyConfigured(
                f"{_key_join(key, 'rpc_urls')}: {url!r} cannot be used: use an http(s) URL; "
                "websocket URLs are not supported (the RPC client speaks JSON-RPC over HTTP)."
            )
    confirmations = _positive_int(spec.get("confirmations", 12), _key_join(key, "confirmations"))
    block_time = _decimal(spec.get("block_time", 12), _key_join(key, "block_time"))
    native_spec = spec.get("native", {"symbol": "ETH", "decimals": 18})
    if not isinstance(native_spec, dict) or "symbol" not in native_spec:
        raise ImproperlyConfigured(
            f"{_key_join(key, 'native')} must be a dict like {{'symbol': 'ETH', 'decimals': 18}}."
        )
    native = _asset(native_spec, native_spec["symbol"], _key_join(key, "native"), native=True)
    tokens_spec = spec.get("tokens", {})
    if not isinstance(tokens_spec, dict):
        raise ImproperlyConfigured(f"{_key_join(key, 'tokens')} must be a dict {{symbol: {{address, decimals}}}}.")
    tokens = {
        symbol: _asset(token, symbol, _key_join(_key_join(key, "tokens"), symbol), native=False)
        for symbol, token in tokens_spec.items()
    }
    if native.symbol in tokens:
        raise ImproperlyConfigured(f"{_key_join(key, 'tokens')}: {native.symbol!r} is already the native coin.")
    multicall3 = spec.get("multicall3")
    feeds = spec.get("price_feeds", {})
    if not isinstance(feeds, dict):
        raise ImproperlyConfigured(f"{_key_join(key, 'price_feeds')} must be a dict like {{'ETH/USD': '0x...'}}.")
    return NetworkConfig(
        name=name,
        chain_id=chain_id,
        rpc_urls=tuple(urls),
        confirmations=confirmations,
        block_time=block_time,
        native=native,
        tokens=tokens,
        max_block_range=_positive_int(spec.get("max_block_range", 1000), _key_join(key, "max_block_range")),
        address_chunk=_positive_int(spec.get("address_chunk", 1000), _key_join(key, "address_chunk")),
        rpc_timeout=_decimal(spec.get("rpc_timeout", 10), _key_join(key, "rpc_timeout")),
        multicall3=_address(multicall3, _key_join(key, "multicall3")) if multicall3 else None,
        dev=_bool(spec.get("dev", False), _key_join(key, "dev")),
        price_feeds={
            pair: _address(addr, _key_join(_key_join(key, "price_feeds"), pair)) for pair, addr in feeds.items()
        },
    )


def validate_xpub(value: Any) -> str:
    """Return the xpub if it is a valid account-level BIP32 extended *public* key, else raise
    ``ImproperlyConfigured`` saying what to give instead."""
    key = _key("XPUB")
    fix = (
        "give the account-level extended public key (path m/44'/60'/0', starting with 'xpub') exported from the "
        "merchant wallet"
    )
    if not value:
        raise ImproperlyConfigured(f"{key} is not set: {fix}. Never a private key or mnemonic.")
    if not isinstance(value, str):
        raise ImproperlyConfigured(f"{key} must be a string starting with 'xpub', not {type(value).__name__}: {fix}.")
    value = value.strip()
    if _looks_secret(value):
        raise ImproperlyConfigured(
            f"{key} looks like a private key or mnemonic. Remove it from your settings at once and {fix}: "
            "this app never needs a key that can spend."
        )
    from bip_utils import Bip32Secp256k1

    try:
        node = Bip32Secp256k1.FromExtendedKey(value)
    except Exception:  # bip_utils raises several unrelated types for bad input
        raise ImproperlyConfigured(
            f"{key} is not a valid extended public key (bad length or checksum): {fix}."
        ) from None
    if not node.IsPublicOnly():
        raise ImproperlyConfigured(f"{key} must be an extended public key (xpub), not a private one: {fix}.")
    # Deposit address i is derived as <account>/0/i: a master or change-level key would derive addresses the
    # merchant's wallet never looks at.
    if node.Depth().ToInt() != 3 or not node.Index().IsHardened():
        raise ImproperlyConfigured(
            f"{key} is an extended public key at depth {node.Depth().ToInt()}, not an account key: {fix}."
        )
    return value


def _looks_secret(value: str) -> bool:
    """An extended private key (xprv, tprv, yprv, zprv...), a raw hex private key, or a BIP39 mnemonic."""
    return value[1:4] == "prv" or re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", value) is not None or len(value.split()) >= 12


def parse_tolerance(value: Any, key: str) -> int | Decimal:
    """A tolerance is base units (int >= 0) or a percentage string like ``"0.5%"`` (returned as a Decimal)."""
    if isinstance(value, bool):
        raise ImproperlyConfigured(f"{key} must be base units (int) or a percentage like '1%', not {value!r}.")
    if isinstance(value, float):
        raise ImproperlyConfigured(
            f"{key} must be base units (int) or a percentage string like '1%', never a float ({value!r})."
        )
    if isinstance(value, int):
        if value < 0:
            raise ImproperlyConfigured(f"{key} must not be negative.")
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = Decimal(value[:-1])
        except InvalidOperation:
            percent = Decimal(-1)
        if percent.is_finite() and percent >= 100:
            raise ImproperlyConfigured(
                f"{key} is {value!r}: a tolerance of 100 % or more would count any transfer, even 1 base unit, "
                "as full payment. Use a small percentage for rounding dust, e.g. '1%'."
            )
        if percent.is_finite() and percent >= 0:
            return percent
    raise ImproperlyConfigured(f"{key} must be base units (int) or a percentage like '1%', not {value!r}.")


def _percent_of(amount: int, percent: Decimal) -> int:
    # Integer arithmetic (a Decimal product would round at 28 digits); round down, so the result never exceeds
    # the percentage.
    numerator, denominator = percent.as_integer_ratio()
    return amount * numerator // (denominator * 100)


class GatewaySettings:
    """Attribute access to ``PAYMENTS_GATEWAY`` with defaults, validation and caching."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    @property
    def user_settings(self) -> dict[str, Any]:
        """The ``PAYMENTS_GATEWAY`` dict as given. A misspelt key raises: it would silently mean the default."""
        value = getattr(settings, SETTING_NAME, {})
        if not isinstance(value, dict):
            raise ImproperlyConfigured(
                f"{SETTING_NAME} must be a dict like {{'XPUB': 'xpub...', 'NETWORKS': {{...}}}}, "
                f"not {type(value).__name__}."
            )
        unknown = sorted(set(value) - set(DEFAULTS), key=str)
        if unknown:
            raise ImproperlyConfigured(unknown_keys_message(unknown))
        return value

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_") or attr not in DEFAULTS:
            raise AttributeError(f"{SETTING_NAME} has no key {attr!r}")
        if attr not in self._cache:
            raw = self.user_settings.get(attr, DEFAULTS[attr])
            self._cache[attr] = self.validate(attr, raw)
        return self._cache[attr]

    @property
    def networks(self) -> dict[str, NetworkConfig]:
        return self.NETWORKS

    def network(self, name: str) -> NetworkConfig:
        """The named network, or ``ValueError`` listing the configured ones."""
        try:
            return self.NETWORKS[name]
        except KeyError:
            known = ", ".join(sorted(self.NETWORKS)) or "none configured"
            raise ValueError(f"unknown network {name!r}; configured networks: {known}") from None

    def tolerance(self, asset: str, amount_due: int) -> int:
        """Base units by which a payment of ``asset`` may fall short of ``amount_due`` and still count as paid.

        The tolerance is for rounding and fee dust. A percentage applies as configured (below 100 %). An
        absolute tolerance (base units) applies up to :data:`MAX_ABSOLUTE_TOLERANCE_PERCENT` % of
        ``amount_due`` and never more: ``10**16`` wei is dust on a 1 ETH session but the whole price of a $10
        one, where it would let a 1 wei transfer pay the session.
        """
        table = self.UNDERPAYMENT_TOLERANCE
        rule = table.get(asset, table.get("*", 0))
        if isinstance(rule, Decimal):
            return _percent_of(amount_due, rule)
        return min(rule, _percent_of(amount_due, MAX_ABSOLUTE_TOLERANCE_PERCENT))

    def reload(self) -> None:
        self._cache.clear()

    def check_all(self) -> None:
        """Read every key (raising the first ``ImproperlyConfigured``)."""
        for name in DEFAULTS:
            getattr(self, name)

    def validate(self, attr: str, value: Any) -> Any:
        """``value`` checked and normalised as the key ``attr`` (raises ``ImproperlyConfigured``)."""
        key = _key(attr)
        if attr == "RATE_PROVIDER_OPTIONS":
            _refuse_floats(value, key)  # rates are money: a float anywhere in the options is a mistake
        if attr == "NETWORKS":
            if not isinstance(value, dict):
                raise ImproperlyConfigured(f"{key} must be a dict {{name: {{chain_id, rpc_urls, ...}}}}.")
            return {name: parse_network(name, spec) for name, spec in value.items()}
        if attr == "XPUB":
            return validate_xpub(value)
        if attr == "SESSION_TTL":
            ttl = _duration(value, key)
            low, high = SESSION_TTL_RANGE
            if not low <= ttl <= high:
                raise ImproperlyConfigured(f"{key} must be between 15 minutes and 7 days, not {ttl}.")
            return ttl
        if attr == "WEBHOOK_LOG_RETENTION":
            if (retention := _duration(value, key)) < timedelta(days=1):
                raise ImproperlyConfigured(
                    f"{key} must be at least 1 day, not {retention}: an event id forgotten while its sender still "
                    "retries would be processed twice. Use e.g. timedelta(days=30)."
                )
            return retention
        if attr == "RATE_LIMIT_CACHE":
            if not isinstance(value, str) or value not in settings.CACHES:
                known = ", ".join(map(repr, settings.CACHES)) or "none"
                raise ImproperlyConfigured(f"{key} must name a cache of CACHES ({known}), not {value!r}.")
            return value
        if attr in _DURATION_KEYS:
            return _duration(value, key)
        if attr == "UNDERPAYMENT_TOLERANCE":
            if not isinstance(value, dict):
                raise ImproperlyConfigured(
                    f"{key} must be a dict {{asset: base units or 'N%'}}, e.g. {{'USDC': '1%'}}."
                )
            return {asset: parse_tolerance(rule, _key_join(key, asset)) for asset, rule in value.items()}
        if attr == "RATE_PROVIDER":
            if not isinstance(value, str):
                raise ImproperlyConfigured(f"{key} must be a dotted path to a rate provider class.")
            return value
        if attr == "WEBHOOK_SOURCES":
            from .webhooks.incoming.sources import parse_sources

            return parse_sources(value, key)
        if attr == "RATE_PROVIDER_OPTIONS":
            if not isinstance(value, dict):
                raise ImproperlyConfigured(f"{key} must be a dict.")
            return value
        if attr in {"WEBHOOK_RETRY_SCHEDULE", "WEBHOOK_INCOMING_RETRY_SCHEDULE"}:
            if not isinstance(value, list | tuple) or not value:
                raise ImproperlyConfigured(f"{key} must be a non-empty list of seconds between attempts.")
            return [_positive_int(v, key) for v in value]
        if attr == "WEBHOOK_TIMEOUT":
            # Seconds, whole or not (tests use a fraction of a second); a Decimal, never a float on input.
            return _decimal(value, key)
        if attr == "WEBHOOK_MAX_BODY":
            return _positive_int(value, key)
        if attr == "SCAN_INTERVAL":
            return None if value is None else _decimal(value, key)
        if attr == "ALLOW_PRIVATE_WEBHOOK_URLS":
            return _bool(value, key)
        return value  # pragma: no cover - every key is handled above

    def rate_provider_class(self) -> type:
        try:
            return import_string(self.RATE_PROVIDER)
        except ImportError as exc:
            raise ImproperlyConfigured(f"{_key('RATE_PROVIDER')}: cannot import {self.RATE_PROVIDER!r} ({exc}).")


gateway_settings = GatewaySettings()


def unknown_keys_message(unknown: list[str]) -> str:
    """The error for keys of ``PAYMENTS_GATEWAY`` that the app does not know, with the likely intended key."""
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(str(name), list(DEFAULTS), n=1)
        hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    return (
        f"{SETTING_NAME} has unknown key(s) {', '.join(hints)}: remove or rename them. "
        f"Known keys: {', '.join(DEFAULTS)}."
    )


def _refuse_floats(value: Any, key: str) -> None:
    """Raise if a float hides anywhere in ``value``: floats cannot hold prices exactly."""
    if isinstance(value, float):
        raise ImproperlyConfigured(
            f"{key} is a float ({value!r}); money is never a float here: write it as a string {str(value)!r} "
            "or a Decimal."
        )
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_floats(v, _key_join(key, k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _refuse_floats(v, f"{key}[{i}]")


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        gateway_settings.reload()


setting_changed.connect(_reload)

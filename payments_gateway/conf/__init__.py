"""The ``PAYMENTS_GATEWAY`` settings dict, read lazily and validated.

Use ``from payments_gateway.conf import gateway_settings`` and read attributes
(``gateway_settings.SESSION_TTL``, ``gateway_settings.networks["anvil"]``). Values are read from
``django.conf.settings`` on first use and cached until a ``setting_changed`` signal (so
``override_settings`` works in tests). A missing or malformed value raises ``ImproperlyConfigured``
naming the key and how to fix it.

This package only validates and serves values. Pluggable parts named by a setting (the rate provider, webhook
sources, deposit schemes) are built by their own modules, with :func:`settings_cache` so they are rebuilt when
the settings change. Network and asset entries are in :mod:`.networks`; single-value checks in :mod:`.values`.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from .branding import Branding, parse_branding
from .networks import AssetConfig, NetworkConfig, parse_network
from .values import (
    SETTING_NAME,
    dotted_path,
    duration,
    key_of,
    positive_decimal,
    positive_int,
    public_url,
    refuse_floats,
    sub_key,
)
from .values import boolean as _boolean

__all__ = [
    "DEFAULTS",
    "SETTING_NAME",
    "AssetConfig",
    "Branding",
    "GatewaySettings",
    "NetworkConfig",
    "gateway_settings",
    "parse_network",
    "settings_cache",
]

DEFAULTS: dict[str, Any] = {
    # {name: {"chain_id", "rpc_urls", "confirmations", "block_time", "tokens", "native", ...}}
    "NETWORKS": {},
    # Account-level extended public key (m/44'/60'/0'); deposit address i is m/44'/60'/0'/0/i.
    "XPUB": None,
    "SESSION_TTL": timedelta(hours=24),
    "LATE_PAYMENT_WINDOW": timedelta(hours=24),
    # {"USDC": "1%", "DAI": 10**16, "*": 0}: base units (int) or a percentage string (< 100 %), per asset. Base
    # units are capped at 1 % of the amount due (see payments_gateway.money.tolerance).
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
    # (built and checked by payments_gateway/webhooks/incoming/sources.py)
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
    # The environment variable holding the relayer's private key, which signs forwarder sweeps (gas money only; the
    # key itself is never a setting, never stored, never logged: see payments_gateway/deposits/relayer.py).
    "RELAYER_KEY_ENV": "PAYMENTS_GATEWAY_RELAYER_KEY",
    # The shop on the hosted pages: {"name": "My Shop", "logo_url": "https://...", "accent_color": "#1a73e8"}
    # (payments_gateway/conf/branding.py).
    "CHECKOUT_BRANDING": {},
    # How often the scanner reads token transfers to old deposit addresses (past their session's late payment
    # window); open sessions' addresses are read every block.
    "OLD_ADDRESS_SCAN_INTERVAL": timedelta(minutes=10),
    # How long a refund's claim link (/refund/<token>/, where the customer gives their address) stays valid.
    "REFUND_LINK_TTL": timedelta(days=7),
    # Subscriptions: a period's renewal session opens this long before the period ends (never before it starts).
    "RENEWAL_NOTICE": timedelta(days=3),
    # Subscriptions: how long after a period ends its renewal may still be paid (the subscription is past_due).
    "SUBSCRIPTION_GRACE": timedelta(days=7),
    # Subscriptions: what one still unpaid after the grace period becomes, "canceled" or "unpaid".
    "SUBSCRIPTION_AFTER_GRACE": "canceled",
    # Subscriptions: e-mail the customer when a renewal is due and when it is past due.
    "SUBSCRIPTION_REMINDERS": True,
    # The absolute URL this app's pages are served at (e.g. "https://shop.example"), for links in e-mails.
    "PUBLIC_URL": None,
    # The bearer token a Prometheus server sends to scrape /metrics (``Authorization: Bearer <token>``); None: the
    # endpoint answers 404, as if it did not exist (payments_gateway/operations/).
    "METRICS_TOKEN": None,
    # A network whose scanner is further behind the chain than this is unhealthy (/health/ answers 503,
    # payments_gateway_check reports it): blocks behind x block_time, plus the time since its last scan.
    "SCANNER_LAG_LIMIT": timedelta(minutes=5),
    # A webhook delivery due for longer than this and still not attempted is a backlog (/health/ stays 200: the
    # merchant's endpoint is not ours; payments_gateway_check reports it, /metrics counts it per endpoint).
    "DELIVERY_DELAY_LIMIT": timedelta(minutes=10),
    # A Redis URL (e.g. "redis://127.0.0.1:6379/0"): the checkout pages' push channel is woken by Redis pub/sub
    # (views/live.py). None: PostgreSQL LISTEN/NOTIFY on PostgreSQL, one shared poller per process on SQLite.
    "PUSH_REDIS_URL": None,
}

_DURATION_KEYS = {
    "LATE_PAYMENT_WINDOW",
    "WEBHOOK_SECRET_ROTATION_OVERLAP",
    "WEBHOOK_DISABLE_AFTER",
    "IDEMPOTENCY_KEY_TTL",
}
# Durations with bounds: (low, high, how to say them, what the error adds after the value it got).
BOUNDED_DURATIONS = {
    "SESSION_TTL": (timedelta(minutes=15), timedelta(days=7), "between 15 minutes and 7 days", "."),
    "OLD_ADDRESS_SCAN_INTERVAL": (
        timedelta(seconds=1),
        timedelta(days=1),
        "between 1 second and 1 day",
        ": a payment to an old address must still be found the same day. Use e.g. timedelta(minutes=10).",
    ),
    "REFUND_LINK_TTL": (
        timedelta(hours=1),
        timedelta(days=90),
        "between 1 hour and 90 days",
        ": long enough for a customer to answer an e-mail, short enough that an old link is not a standing way "
        "in. Use e.g. timedelta(days=7).",
    ),
    "RENEWAL_NOTICE": (
        timedelta(hours=1),
        timedelta(days=60),
        "between 1 hour and 60 days",
        "; e.g. timedelta(days=3).",
    ),
    "SUBSCRIPTION_GRACE": (timedelta(0), timedelta(days=90), "between 0 and 90 days", "; e.g. timedelta(days=3)."),
    # The operations limits: below the low end every healthy pause would raise an alarm.
    "SCANNER_LAG_LIMIT": (
        timedelta(seconds=30),
        timedelta(days=1),
        "between 30 seconds and 1 day",
        "; e.g. timedelta(minutes=5).",
    ),
    "DELIVERY_DELAY_LIMIT": (
        timedelta(minutes=1),
        timedelta(days=1),
        "between 1 minute and 1 day",
        "; e.g. timedelta(minutes=10).",
    ),
}
AFTER_GRACE_CHOICES = ("canceled", "unpaid")
METRICS_TOKEN_MIN_LENGTH = 16

_T = TypeVar("_T")
_caches: list[Callable[[], None]] = []


def settings_cache(builder: Callable[..., _T]) -> Callable[..., _T]:
    """Cache what ``builder`` makes from the settings until ``PAYMENTS_GATEWAY`` changes (``override_settings``
    in tests, a reload): how plug-ins named by a setting are built once, lazily, by their own module."""
    cached = functools.cache(builder)
    _caches.append(cached.cache_clear)
    return cached


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

    def decimals(self, network: str, asset: str) -> int | None:
        """Decimals of ``asset`` on ``network``, or None when either is no longer configured (a stored session
        may outlive its network's entry in the settings)."""
        config = self.networks.get(network)
        found = config.assets.get(asset) if config else None
        return found.decimals if found else None

    def reload(self) -> None:
        self._cache.clear()
        for clear in _caches:
            clear()

    def check_all(self) -> None:
        """Read every key (raising the first ``ImproperlyConfigured``)."""
        for name in DEFAULTS:
            getattr(self, name)

    def validate(self, attr: str, value: Any) -> Any:
        """``value`` checked and normalised as the key ``attr`` (raises ``ImproperlyConfigured``)."""
        key = key_of(attr)
        if attr == "NETWORKS":
            if not isinstance(value, dict):
                raise ImproperlyConfigured(f"{key} must be a dict {{name: {{chain_id, rpc_urls, ...}}}}.")
            return {name: parse_network(name, spec) for name, spec in value.items()}
        if attr == "XPUB":
            return validate_xpub(value)
        if attr in BOUNDED_DURATIONS:
            low, high, allowed, advice = BOUNDED_DURATIONS[attr]
            if not low <= (period := duration(value, key)) <= high:
                raise ImproperlyConfigured(f"{key} must be {allowed}, not {period}{advice}")
            return period
        if attr == "WEBHOOK_LOG_RETENTION":
            if (retention := duration(value, key)) < timedelta(days=1):
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
            return duration(value, key)
        if attr == "UNDERPAYMENT_TOLERANCE":
            if not isinstance(value, dict):
                raise ImproperlyConfigured(
                    f"{key} must be a dict {{asset: base units or 'N%'}}, e.g. {{'USDC': '1%'}}."
                )
            return {asset: parse_tolerance(rule, sub_key(key, asset)) for asset, rule in value.items()}
        if attr == "RATE_PROVIDER":
            return dotted_path(value, key, "rate provider class")
        if attr == "RATE_PROVIDER_OPTIONS":
            refuse_floats(value, key)  # rates are money: a float anywhere in the options is a mistake
            if not isinstance(value, dict):
                raise ImproperlyConfigured(f"{key} must be a dict.")
            return value
        if attr == "WEBHOOK_SOURCES":
            # Each source is built and checked by webhooks/incoming/sources.py (it imports the handlers).
            if not isinstance(value, dict):
                raise ImproperlyConfigured(f"{key} must be a dict {{source name: {{'scheme', 'secrets', 'handler'}}}}.")
            return value
        if attr in {"WEBHOOK_RETRY_SCHEDULE", "WEBHOOK_INCOMING_RETRY_SCHEDULE"}:
            if not isinstance(value, list | tuple) or not value:
                raise ImproperlyConfigured(f"{key} must be a non-empty list of seconds between attempts.")
            return [positive_int(v, key) for v in value]
        if attr == "WEBHOOK_TIMEOUT":
            # Seconds, whole or not (tests use a fraction of a second); a Decimal, never a float on input.
            return positive_decimal(value, key)
        if attr == "WEBHOOK_MAX_BODY":
            return positive_int(value, key)
        if attr == "SCAN_INTERVAL":
            return None if value is None else positive_decimal(value, key)
        if attr in {"ALLOW_PRIVATE_WEBHOOK_URLS", "SUBSCRIPTION_REMINDERS"}:
            return _boolean(value, key)
        if attr == "RELAYER_KEY_ENV":
            if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
                # Never echo a key someone pasted here by mistake.
                shown = "a private key" if _looks_secret(str(value)) else repr(value)
                raise ImproperlyConfigured(
                    f"{key} must be the NAME of an environment variable (letters, digits, '_'), such as "
                    f"'PAYMENTS_GATEWAY_RELAYER_KEY', not {shown}: put the key itself in that variable, never in "
                    "the settings."
                )
            return value
        if attr == "CHECKOUT_BRANDING":
            return parse_branding(value, key)
        if attr == "SUBSCRIPTION_AFTER_GRACE":
            if value not in AFTER_GRACE_CHOICES:
                raise ImproperlyConfigured(
                    f"{key} must be 'canceled' (the subscription ends) or 'unpaid' (it stops, and a late payment of "
                    f"its renewal revives it), not {value!r}."
                )
            return value
        if attr == "PUBLIC_URL":
            return public_url(value, key)
        if attr == "METRICS_TOKEN":
            return metrics_token(value, key)
        if attr == "PUSH_REDIS_URL":
            if value is not None and (not isinstance(value, str) or not re.match(r"^(rediss?|unix)://\S+$", value)):
                raise ImproperlyConfigured(
                    f"{key} must be a Redis URL such as 'redis://127.0.0.1:6379/0' (or None to be woken by the "
                    f"database), not {value!r}."
                )
            return value
        return value  # pragma: no cover - every key is handled above


gateway_settings = GatewaySettings()


def validate_xpub(value: Any) -> str:
    """Return the xpub if it is a valid account-level BIP32 extended *public* key, else raise
    ``ImproperlyConfigured`` saying what to give instead."""
    key = key_of("XPUB")
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


def metrics_token(value: Any, key: str) -> str | None:
    """None (``/metrics`` off), or a token of at least 16 visible ASCII characters: it travels in an HTTP header
    and guards what the gateway holds, so a short or guessable one is refused."""
    if value is None:
        return None
    fix = "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
    if not isinstance(value, str):
        raise ImproperlyConfigured(
            f"{key} must be a string (or None to turn /metrics off), not {type(value).__name__}."
        )
    if not re.fullmatch(r"[\x21-\x7e]+", value):
        raise ImproperlyConfigured(
            f"{key} must be visible ASCII characters without spaces (it is sent in the Authorization header): {fix}."
        )
    if len(value) < METRICS_TOKEN_MIN_LENGTH:
        raise ImproperlyConfigured(
            f"{key} is {len(value)} characters long; use at least {METRICS_TOKEN_MIN_LENGTH}: {fix}."
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


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in {SETTING_NAME, "DEBUG"}:  # a dev network is allowed on a real chain id only with DEBUG
        gateway_settings.reload()


setting_changed.connect(_reload)

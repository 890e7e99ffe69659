"""``PAYMENTS_GATEWAY["NETWORKS"]``: each entry validated into a :class:`NetworkConfig` with its assets."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .values import address, boolean, duration, key_of, positive_decimal, positive_int, sub_key

NETWORK_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
ASSET_RE = re.compile(r"^[A-Z0-9.]{1,12}$")
DEFAULT_DEPOSIT_SCHEME = "xpub"
#: Chain ids of local development nodes (anvil, Hardhat: 31337; Ganache and geth --dev: 1337).
LOCAL_CHAIN_IDS = frozenset({31337, 1337})


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
    # How deposit addresses are made: a registered scheme name or a dotted path (see payments_gateway.deposits).
    deposit_scheme: str = DEFAULT_DEPOSIT_SCHEME
    # deposit_scheme "forwarder": where every deposit address sweeps to, and the ForwarderFactory that makes them.
    treasury: str | None = None
    forwarder_factory: str | None = None
    # Sweep policy: a batch is sent when what it collects is worth at least this many times its gas cost, or when
    # its oldest deposit is older than sweep_max_age; at most sweep_batch_size addresses per transaction.
    sweep_min_value_ratio: Decimal = Decimal(10)
    sweep_max_age: timedelta = timedelta(days=7)
    sweep_batch_size: int = 100
    # The relayer (RELAYER_KEY_ENV) is reported low on gas below this many wei.
    relayer_min_balance: int = 10**16
    # What customers read: the network's name on the hosted page and in their wallet (default: the key).
    display_name: str = ""
    # A block explorer (Etherscan, Blockscout...): transactions are linked as <explorer_url>/tx/<hash>.
    explorer_url: str | None = None
    # A public RPC URL a customer's browser wallet may add for this chain (wallet_addEthereumChain). Never one of
    # rpc_urls by default: those may carry the merchant's API key.
    wallet_rpc_url: str | None = None
    # A ws(s):// JSON-RPC URL of the same chain: new heads arrive by eth_subscribe("newHeads") and start the scan at
    # once (the blocks and logs are still read over rpc_urls; polling when it is None or fails).
    ws_url: str | None = None

    def explorer_link(self, kind: str, value: str) -> str | None:
        """``<explorer_url>/tx/<hash>`` (``kind`` "tx") or ``/address/<address>``; None without an explorer."""
        return f"{self.explorer_url}/{kind}/{value}" if self.explorer_url else None

    @property
    def assets(self) -> dict[str, AssetConfig]:
        return {self.native.symbol: self.native, **self.tokens}

    def asset(self, symbol: str) -> AssetConfig:
        try:
            return self.assets[symbol]
        except KeyError:
            known = ", ".join(sorted(self.assets))
            raise ValueError(f"unknown asset {symbol!r} on network {self.name!r}; known: {known}") from None


#: The keys one NETWORKS entry may have.
NETWORK_KEYS = {
    "chain_id", "rpc_urls", "confirmations", "block_time", "tokens", "native", "max_block_range",
    "address_chunk", "rpc_timeout", "multicall3", "dev", "price_feeds", "deposit_scheme", "treasury",
    "forwarder_factory", "sweep_min_value_ratio", "sweep_max_age", "sweep_batch_size", "relayer_min_balance",
    "display_name", "explorer_url", "wallet_rpc_url", "ws_url",
}  # fmt: skip
#: Most deposit addresses one sweep transaction may take (about 50,000 gas each: 500 fill a 25M-gas transaction).
MAX_SWEEP_BATCH = 500


def parse_network(name: Any, spec: Any) -> NetworkConfig:
    """Validate one ``NETWORKS`` entry; raise ``ImproperlyConfigured`` naming the bad key."""
    key = key_of("NETWORKS", str(name))
    if not isinstance(name, str) or not NETWORK_NAME_RE.match(name):
        raise ImproperlyConfigured(f"{key}: a network name is lowercase letters, digits, '-' or '_', not {name!r}.")
    if not isinstance(spec, dict):
        raise ImproperlyConfigured(f"{key} must be a dict with chain_id, rpc_urls, confirmations, ...")
    unknown = set(spec) - NETWORK_KEYS
    if unknown:
        raise ImproperlyConfigured(f"{key} has unknown keys {sorted(unknown)}; known keys: {sorted(NETWORK_KEYS)}.")
    if "chain_id" not in spec:
        raise ImproperlyConfigured(f"{key} has no 'chain_id': add the network's EIP-155 chain id, e.g. 1.")
    native_spec = spec.get("native", {"symbol": "ETH", "decimals": 18})
    if not isinstance(native_spec, dict) or "symbol" not in native_spec:
        raise ImproperlyConfigured(f"{sub_key(key, 'native')} must be a dict like {{'symbol': 'ETH', 'decimals': 18}}.")
    native = _asset(native_spec, native_spec["symbol"], sub_key(key, "native"), native=True)
    tokens = _tokens(spec.get("tokens", {}), sub_key(key, "tokens"))
    if native.symbol in tokens:
        raise ImproperlyConfigured(f"{sub_key(key, 'tokens')}: {native.symbol!r} is already the native coin.")
    multicall3 = spec.get("multicall3")
    feeds = spec.get("price_feeds", {})
    if not isinstance(feeds, dict):
        raise ImproperlyConfigured(f"{sub_key(key, 'price_feeds')} must be a dict like {{'ETH/USD': '0x...'}}.")
    scheme = spec.get("deposit_scheme", DEFAULT_DEPOSIT_SCHEME)
    if not isinstance(scheme, str) or not scheme:
        raise ImproperlyConfigured(
            f"{sub_key(key, 'deposit_scheme')} must be a scheme name such as 'xpub' or a dotted path, not {scheme!r}."
        )
    chain_id = positive_int(spec["chain_id"], sub_key(key, "chain_id"))
    dev = boolean(spec.get("dev", False), sub_key(key, "dev"))
    if dev and chain_id not in LOCAL_CHAIN_IDS and not settings.DEBUG:
        # The test wallet pays from the node's unlocked accounts: on a real chain that spends real money.
        raise ImproperlyConfigured(
            f"{sub_key(key, 'dev')} is True on chain id {chain_id}, which is not a local dev chain "
            f"({', '.join(map(str, sorted(LOCAL_CHAIN_IDS)))}): the test wallet would spend the node's unlocked "
            "accounts. Remove 'dev' (or run with DEBUG = True while developing)."
        )
    return NetworkConfig(
        name=name,
        chain_id=chain_id,
        rpc_urls=_rpc_urls(spec.get("rpc_urls"), sub_key(key, "rpc_urls")),
        confirmations=positive_int(spec.get("confirmations", 12), sub_key(key, "confirmations")),
        block_time=positive_decimal(spec.get("block_time", 12), sub_key(key, "block_time")),
        native=native,
        tokens=tokens,
        max_block_range=positive_int(spec.get("max_block_range", 1000), sub_key(key, "max_block_range")),
        address_chunk=positive_int(spec.get("address_chunk", 1000), sub_key(key, "address_chunk")),
        rpc_timeout=positive_decimal(spec.get("rpc_timeout", 10), sub_key(key, "rpc_timeout")),
        multicall3=address(multicall3, sub_key(key, "multicall3")) if multicall3 else None,
        dev=dev,
        price_feeds={pair: address(a, sub_key(sub_key(key, "price_feeds"), pair)) for pair, a in feeds.items()},
        deposit_scheme=scheme,
        display_name=_display_name(spec.get("display_name", name), sub_key(key, "display_name")),
        explorer_url=_public_url(spec.get("explorer_url"), sub_key(key, "explorer_url"), "https://etherscan.io"),
        wallet_rpc_url=_public_url(
            spec.get("wallet_rpc_url"), sub_key(key, "wallet_rpc_url"), "https://mainnet.base.org"
        ),
        ws_url=_ws_url(spec.get("ws_url"), sub_key(key, "ws_url")),
        **_forwarder_keys(spec, key),
    )


def _forwarder_keys(spec: dict[str, Any], key: str) -> dict[str, Any]:
    """The keys of the "forwarder" deposit scheme, checked where given (the scheme requires them, see
    payments_gateway/deposits/forwarder.py)."""
    values: dict[str, Any] = {}
    for name in ("treasury", "forwarder_factory"):
        if spec.get(name) is not None:
            values[name] = address(spec[name], sub_key(key, name))
            if int(values[name], 16) == 0:
                raise ImproperlyConfigured(
                    f"{sub_key(key, name)} is the zero address: funds sent there are burnt. Give the address of "
                    + ("the merchant's treasury (a Safe, a hardware wallet)." if name == "treasury" else "the factory.")
                )
    if values.get("treasury") and values.get("treasury") == values.get("forwarder_factory"):
        raise ImproperlyConfigured(
            f"{sub_key(key, 'treasury')} is the forwarder factory itself, which the factory refuses (the funds "
            "would be stuck): give the merchant's own address."
        )
    if "sweep_min_value_ratio" in spec:
        values["sweep_min_value_ratio"] = positive_decimal(
            spec["sweep_min_value_ratio"], sub_key(key, "sweep_min_value_ratio")
        )
    if "sweep_max_age" in spec:
        values["sweep_max_age"] = duration(spec["sweep_max_age"], sub_key(key, "sweep_max_age"))
    if "sweep_batch_size" in spec:
        batch = positive_int(spec["sweep_batch_size"], sub_key(key, "sweep_batch_size"))
        if batch > MAX_SWEEP_BATCH:
            raise ImproperlyConfigured(
                f"{sub_key(key, 'sweep_batch_size')} is {batch}: at most {MAX_SWEEP_BATCH} addresses fit in one "
                "sweep transaction's gas. Use e.g. 100."
            )
        values["sweep_batch_size"] = batch
    if "relayer_min_balance" in spec:
        values["relayer_min_balance"] = positive_int(
            spec["relayer_min_balance"], sub_key(key, "relayer_min_balance"), allow_zero=True
        )
    return values


def _display_name(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 60:
        raise ImproperlyConfigured(f"{key} must be a name of 1 to 60 characters, e.g. 'Base', not {value!r}.")
    return value.strip()


def _public_url(value: Any, key: str, example: str) -> str | None:
    """An http(s) URL shown to customers (without a trailing slash), or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/?#\"'<>]+(/[^\s?#\"'<>]*)?$", value):
        raise ImproperlyConfigured(f"{key} must be an http(s) URL without query or fragment, e.g. {example!r}, "
                                   f"not {value!r}.")  # fmt: skip
    return value.rstrip("/")


def _rpc_urls(urls: Any, key: str) -> tuple[str, ...]:
    if not urls or not isinstance(urls, list | tuple) or not all(isinstance(u, str) for u in urls):
        raise ImproperlyConfigured(f"{key} must be a non-empty list of RPC URLs, e.g. ['http://127.0.0.1:8545'].")
    for url in urls:
        # The RPC client (chain/rpc.py) speaks JSON-RPC over HTTP POST only; a ws(s):// URL would pass here and
        # fail on every call.
        if not re.match(r"^https?://[^\s/]+", url):
            raise ImproperlyConfigured(
                f"{key}: {url!r} cannot be used: use an http(s) URL (the RPC client speaks JSON-RPC over HTTP); "
                "a ws(s):// URL goes in the network's 'ws_url' (new heads by eth_subscribe)."
            )
    return tuple(urls)


def _ws_url(value: Any, key: str) -> str | None:
    """A ws:// or wss:// URL, or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.match(r"^wss?://[^\s/?#]+(/\S*)?$", value):
        raise ImproperlyConfigured(
            f"{key} must be a ws:// or wss:// URL of the network's JSON-RPC WebSocket, e.g. "
            f"'wss://mainnet.example/ws', not {value!r} (its http(s) URLs go in 'rpc_urls')."
        )
    return value


def _tokens(spec: Any, key: str) -> dict[str, AssetConfig]:
    if not isinstance(spec, dict):
        raise ImproperlyConfigured(f"{key} must be a dict {{symbol: {{address, decimals}}}}.")
    return {symbol: _asset(token, symbol, sub_key(key, symbol), native=False) for symbol, token in spec.items()}


def _asset(spec: Any, symbol: str, key: str, *, native: bool) -> AssetConfig:
    if not isinstance(spec, dict):
        example = '{"symbol": "ETH", "decimals": 18}' if native else '{"address": "0x...", "decimals": 6}'
        raise ImproperlyConfigured(f"{key} must be a dict like {example}, not {spec!r}.")
    if "decimals" not in spec:
        raise ImproperlyConfigured(f"{key} has no 'decimals': add them, e.g. 'decimals': {18 if native else 6}.")
    decimals = spec["decimals"]
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 77:
        raise ImproperlyConfigured(f"{sub_key(key, 'decimals')} must be a whole number 0..77, not {decimals!r}.")
    if not ASSET_RE.match(symbol):
        raise ImproperlyConfigured(f"{key}: asset symbol {symbol!r} must be 1-12 capitals or digits.")
    if native:
        return AssetConfig(symbol=symbol, decimals=decimals)
    if "address" not in spec:
        raise ImproperlyConfigured(f"{key} has no 'address': add the token contract address.")
    return AssetConfig(symbol=symbol, decimals=decimals, address=address(spec["address"], sub_key(key, "address")))

"""A local development chain: anvil with test tokens, Multicall3, an ETH/USD feed and the ForwarderFactory.

Used by the tests (fixture ``devchain``), ``manage.py payments_gateway_devchain`` and the demo: ``chain =
start_devchain()`` (anvil on a free port, contracts deployed, customers funded), then
``settings["NETWORKS"]["anvil"] = chain.network_settings(confirmations=2)``, and ``chain.stop()``.

Customers are anvil's default accounts (from anvil's public test mnemonic; their keys are public, test money
only). The merchant's xpub must come from a *different* mnemonic (``MERCHANT_XPUB``), or deposit address 0
would be a funded customer account. Nothing here is used on a real network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hexbytes import HexBytes
from web3 import Web3
from web3.types import RPCEndpoint, TxParams, Wei

from .anvil import AnvilProcess, DevChainError, start_anvil
from .contracts import abi, load_artifact

#: Account xpub (m/44'/60'/0') of the public BIP39 test mnemonic "abandon ×11 about": the dev merchant wallet.
MERCHANT_XPUB = (
    "xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh5GFZaM6si3yZdUsT8ddYM3PwnATt"
)

#: Test tokens deployed on the dev chain: symbol -> (name, decimals).
TOKENS: dict[str, tuple[str, int]] = {
    "USDC": ("USD Coin (dev)", 6),
    "USDT": ("Tether USD (dev)", 6),
    "DAI": ("Dai Stablecoin (dev)", 18),
}
#: Whole token units minted to every customer account.
CUSTOMER_TOKEN_BALANCE = 1_000_000
ETH_USD_DECIMALS = 8
DEFAULT_ETH_USD = Decimal("3000")
#: Treasury of the dev chain's forwarder deposit addresses: an address nobody holds a key to (dev money only),
#: empty at start, so its balance shows exactly what the sweeps moved.
DEV_TREASURY = Web3.to_checksum_address(Web3.keccak(text="payments_gateway dev treasury")[12:])
RELAYER_ACCOUNT = 9  # the dev chain's sweeps are signed with this default account's (public) key


@dataclass
class DevChain:
    """A deployed dev chain: where it is, what is on it, and who can pay."""

    rpc_url: str
    chain_id: int
    tokens: dict[str, str]  # symbol -> address
    token_decimals: dict[str, int]
    multicall3: str
    price_feeds: dict[str, str]  # "ETH/USD" -> aggregator address
    forwarder: str
    accounts: list[str]  # customers: anvil's default accounts, unlocked on the node
    private_keys: list[str] = field(default_factory=list, repr=False)
    block_time: int | None = None
    forwarder_factory: str = ""  # ForwarderFactory: CREATE2 deposit addresses swept to a treasury
    treasury: str = DEV_TREASURY  # where the dev chain's forwarder deposit addresses sweep to
    anvil: AnvilProcess | None = field(default=None, repr=False)
    _w3: Web3 | None = field(default=None, repr=False)

    # --- settings -------------------------------------------------------------------------------

    def network_settings(self, confirmations: int = 2, *, forwarder: bool = False, **extra: Any) -> dict[str, Any]:
        """A ``NETWORKS`` entry for this chain (JSON); ``forwarder``: the forwarder scheme; ``extra`` keys override."""
        if forwarder:  # the dev factory and treasury; sweeps are signed with relayer_key
            extra = {"deposit_scheme": "forwarder", "treasury": self.treasury,
                     "forwarder_factory": self.forwarder_factory, **extra}  # fmt: skip
        entry: dict[str, Any] = {
            "chain_id": self.chain_id,
            "rpc_urls": [self.rpc_url],
            "wallet_rpc_url": self.rpc_url,  # a browser wallet on this machine may add the dev chain
            "confirmations": confirmations,
            "block_time": self.block_time or 1,
            "native": {"symbol": "ETH", "decimals": 18},
            "tokens": {
                symbol: {"address": address, "decimals": self.token_decimals[symbol]}
                for symbol, address in self.tokens.items()
            },
            "multicall3": self.multicall3,
            "price_feeds": dict(self.price_feeds),
            "dev": True,
        }
        entry.update(extra)
        return entry

    # --- access ---------------------------------------------------------------------------------

    @property
    def relayer_key(self) -> str:
        """The dev relayer's key (anvil's public test account 9; no customer pays from it): gas money only."""
        return self.private_keys[RELAYER_ACCOUNT]

    @property
    def w3(self) -> Web3:
        if self._w3 is None:
            self._w3 = _connect(self.rpc_url)
        return self._w3

    def token(self, symbol: str):
        """web3 contract object of test token ``symbol``."""
        try:
            address = self.tokens[symbol]
        except KeyError:
            raise ValueError(f"unknown dev token {symbol!r}; known: {', '.join(self.tokens)}") from None
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi("TestToken"))

    def contract(self, name: str, address: str):
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi(name))

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        """Raw JSON-RPC call (anvil_*, evm_* methods); raises ``DevChainError`` on an RPC error."""
        response = self.w3.provider.make_request(RPCEndpoint(method), params or [])
        if "error" in response:
            raise DevChainError(f"{method} failed: {response['error']}")
        return response["result"]

    # --- time travel (tests) --------------------------------------------------------------------

    def snapshot(self) -> str:
        """Take an anvil snapshot; ``revert(id)`` returns the chain to it (once: anvil drops it after)."""
        return self.rpc("evm_snapshot")

    def revert(self, snapshot_id: str) -> None:
        """Return the chain to snapshot ``snapshot_id``, with its clock back on the wall clock.

        anvil's ``evm_revert`` also turns its clock back to the snapshot's time, so every later block would be
        stamped as long before now as the chain was used since the snapshot; over a test session that lag adds
        up until payments look older than the sessions they pay (a real chain's block times follow the clock)."""
        if not self.rpc("evm_revert", [snapshot_id]):
            raise DevChainError(f"evm_revert({snapshot_id}) failed: unknown snapshot")
        latest = self.w3.eth.get_block("latest")["timestamp"]
        if (now := int(time.time())) > latest:
            self.rpc("anvil_setTime", [now])

    def mine(self, blocks: int = 1) -> int:
        """Mine ``blocks`` empty blocks; returns the new head number."""
        self.rpc("anvil_mine", [hex(blocks)])
        return self.w3.eth.block_number

    # --- payments (tests, demo) -----------------------------------------------------------------

    def send_eth(self, to: str, amount: int, account_index: int = 0, wait: bool = True) -> str:
        """Send ``amount`` wei from customer ``account_index`` to ``to`` in a plain transaction; the tx hash."""
        tx: TxParams = {
            "from": Web3.to_checksum_address(self.accounts[account_index]),
            "to": Web3.to_checksum_address(to),
            "value": Wei(amount),
        }
        return self._send(self.w3.eth.send_transaction(tx), wait)

    def send_token(self, symbol: str, to: str, amount: int, account_index: int = 0, wait: bool = True) -> str:
        """Transfer ``amount`` base units of token ``symbol`` from customer ``account_index``; the tx hash."""
        fn = self.token(symbol).functions.transfer(Web3.to_checksum_address(to), amount)
        return self._send(fn.transact({"from": self.accounts[account_index]}), wait)

    def forward_eth(self, to: str, amount: int, account_index: int = 0, wait: bool = True) -> str:
        """Pay ``amount`` wei to ``to`` through the Forwarder contract (an internal call, as a Safe would)."""
        fn = self.contract("Forwarder", self.forwarder).functions.forward(Web3.to_checksum_address(to))
        return self._send(fn.transact({"from": self.accounts[account_index], "value": amount}), wait)

    def set_eth_usd(self, price: Decimal | str | int) -> None:
        """Set the ETH/USD feed's answer (whole dollars as a Decimal, scaled to the feed's 8 decimals)."""
        answer = int(Decimal(price).scaleb(ETH_USD_DECIMALS))
        fn = self.contract("MockV3Aggregator", self.price_feeds["ETH/USD"]).functions.updateAnswer(answer)
        self._send(fn.transact({"from": self.accounts[0]}), wait=True)

    def _send(self, tx_hash: bytes, wait: bool) -> str:
        if wait:
            receipt = self.w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=60, poll_latency=0.05)
            if receipt["status"] != 1:
                raise DevChainError(f"transaction {tx_hash.hex()} reverted")
        return "0x" + bytes(tx_hash).hex().removeprefix("0x")

    def stop(self) -> None:
        """Stop anvil if this object started it."""
        if self.anvil is not None:
            self.anvil.stop()


# --- starting and deploying -------------------------------------------------------------------------


def start_devchain(port: int = 0, block_time: int | None = None, **anvil_options: Any) -> DevChain:
    """Start anvil (``port=0``: a free port) and deploy the dev contracts on it; stop with ``.stop()``.

    ``anvil_options`` go to ``start_anvil`` (``host``, ``detach``, ``extra_args``, ...)."""
    node = start_anvil(port=port, block_time=block_time, **anvil_options)
    try:
        chain = deploy(node.rpc_url, private_keys=node.private_keys)
    except BaseException:
        node.stop()
        raise
    chain.anvil = node
    chain.block_time = block_time
    return chain


def deploy(
    rpc_url: str,
    *,
    eth_usd: Decimal = DEFAULT_ETH_USD,
    customer_tokens: int = CUSTOMER_TOKEN_BALANCE,
    private_keys: list[str] | None = None,
) -> DevChain:
    """Deploy the test tokens, Multicall3, an ETH/USD feed, the Forwarder and the ForwarderFactory on the node at
    ``rpc_url`` from its first unlocked account, and mint ``customer_tokens`` whole units of each token to every
    unlocked account."""
    w3 = _connect(rpc_url)
    accounts = [Web3.to_checksum_address(a) for a in w3.eth.accounts]
    if not accounts:
        raise DevChainError(f"the node at {rpc_url} has no unlocked accounts; is it anvil?")
    deployer = accounts[0]

    def send_deploy(name: str, *args: Any) -> bytes:
        artifact = load_artifact(name)
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        return factory.constructor(*args).transact({"from": deployer})

    # Send everything first, then wait: with interval mining all of it lands in one or two blocks.
    pending = {f"token:{s}": send_deploy("TestToken", name, s, decimals) for s, (name, decimals) in TOKENS.items()}
    pending["multicall3"] = send_deploy("Multicall3")
    pending["ETH/USD"] = send_deploy(
        "MockV3Aggregator", ETH_USD_DECIMALS, "ETH / USD", int(eth_usd.scaleb(ETH_USD_DECIMALS))
    )
    pending["forwarder"] = send_deploy("Forwarder")
    pending["forwarder_factory"] = send_deploy("ForwarderFactory")
    addresses = {key: _receipt(w3, tx)["contractAddress"] for key, tx in pending.items()}

    tokens = {symbol: addresses[f"token:{symbol}"] for symbol in TOKENS}
    mints = [
        w3.eth.contract(address=address, abi=abi("TestToken"))
        .functions.mintMany(accounts, customer_tokens * 10 ** TOKENS[symbol][1])
        .transact({"from": deployer})
        for symbol, address in tokens.items()
    ]
    for tx in mints:
        _receipt(w3, tx)
    return DevChain(
        rpc_url=rpc_url,
        chain_id=w3.eth.chain_id,
        tokens=tokens,
        token_decimals={symbol: decimals for symbol, (_, decimals) in TOKENS.items()},
        multicall3=addresses["multicall3"],
        price_feeds={"ETH/USD": addresses["ETH/USD"]},
        forwarder=addresses["forwarder"],
        forwarder_factory=addresses["forwarder_factory"],
        accounts=[str(a) for a in accounts],
        private_keys=list(private_keys or []),
        _w3=w3,
    )


# --- paying a checkout session from a dev account ---------------------------------------------------


def pay_session(session: Any, amount: int | None = None, account_index: int = 0, *, wait: bool = True) -> str:
    """Pay checkout ``session`` from dev account ``account_index``; return the transaction hash.

    ``amount`` is in base units (wei, token units); ``None`` pays what is still due (amount due minus what is
    received or pending). Only on a network configured with ``"dev": True``: anywhere else it raises
    ``DevChainError``, because the payer is a well-known test account. Used by ``payments_gateway_pay`` and the
    hosted page's "Pay with test wallet" button.
    """
    from ..conf import gateway_settings

    network = gateway_settings.network(session.network)
    if not network.dev:
        raise DevChainError(
            f'network {network.name!r} is not a dev chain (its settings lack "dev": True): refusing to pay '
            "from a test account"
        )
    asset = network.asset(session.asset)
    if amount is None:
        amount = session.amount_remaining
        if amount <= 0:
            raise DevChainError(f"session {session.uuid} has nothing left to pay (received or pending in full)")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"amount must be a positive whole number of base units, not {amount!r}")
    w3 = _connect(network.rpc_urls[0])
    accounts = w3.eth.accounts
    if not 0 <= account_index < len(accounts):
        raise ValueError(f"dev account {account_index} does not exist: the node has accounts 0..{len(accounts) - 1}")
    payer = accounts[account_index]
    to = Web3.to_checksum_address(session.deposit_address.address)
    if asset.is_native:
        tx_hash = w3.eth.send_transaction({"from": payer, "to": to, "value": Wei(amount)})
    else:
        assert asset.address is not None  # a token
        token = w3.eth.contract(address=Web3.to_checksum_address(asset.address), abi=abi("TestToken"))
        balance = token.functions.balanceOf(payer).call()
        if balance < amount:
            raise DevChainError(f"dev account {account_index} holds {balance} base units of {asset.symbol}, less than "
                                f"{amount}")  # fmt: skip
        tx_hash = token.functions.transfer(to, amount).transact({"from": payer})
    if wait:
        _receipt(w3, tx_hash)
    return "0x" + bytes(tx_hash).hex().removeprefix("0x")


# --- helpers ----------------------------------------------------------------------------------------


def _connect(rpc_url: str) -> Web3:
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))


def _receipt(w3: Web3, tx_hash: bytes) -> Any:
    receipt = w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=60, poll_latency=0.05)
    if receipt["status"] != 1:
        raise DevChainError(f"dev-chain transaction {bytes(tx_hash).hex()} reverted")
    return receipt

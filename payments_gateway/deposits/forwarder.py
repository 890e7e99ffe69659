"""The ``"forwarder"`` deposit scheme: CREATE2 addresses of ``ForwarderFactory`` that can only pay the treasury.

Address ``i`` of a network is ``CREATE2(forwarder_factory, salt=i, initCode(treasury))``, computed offline
(:mod:`payments_gateway.chain.forwarder`; the contract and its design are in
``chain/contracts/src/ForwarderFactory.sol``). The treasury and factory are part of the address, so each
:class:`~payments_gateway.models.DepositAddress` stores the ones it was made with: after the merchant changes
``treasury``, old addresses are still swept to the old treasury (the only place their code can send to).

Before anything is swept with a (factory, treasury) pair, :func:`verify_factory` checks, once per process, that
the factory is deployed and predicts the same address for index 0 as this module computes. A wrong factory
address, a factory of another version or another chain would otherwise hand out addresses nobody can sweep.
"""

from __future__ import annotations

import threading
from decimal import Decimal

from django.core.exceptions import ImproperlyConfigured

from ..chain import forwarder
from ..chain.rpc import RPCClient, RPCError, client_for
from ..conf import NetworkConfig
from ..conf.values import key_of
from .base import DepositScheme
from .relayer import RelayerKeyError, relayer_account

FIX_FACTORY = "deploy one with `manage.py payments_gateway_sweep --deploy-factory --network {network}` and set {key}"


class ForwarderMismatch(ImproperlyConfigured):
    """The factory on chain is missing or computes other deposit addresses: nothing may be swept with it."""


class ForwarderScheme(DepositScheme):
    """Deposit addresses that can only ever pay the network's ``treasury``, swept in batches by a relayer."""

    name = "forwarder"

    def __init__(self, network: NetworkConfig) -> None:
        super().__init__(network)
        for attr, what in (
            ("treasury", "the merchant's treasury address (a Safe, a hardware wallet, an exchange account)"),
            ("forwarder_factory", "the ForwarderFactory address (`manage.py payments_gateway_sweep --deploy-factory`)"),
        ):
            if not getattr(network, attr):
                raise ImproperlyConfigured(
                    f"{key_of('NETWORKS', network.name, attr)} is not set, but the network's deposit_scheme is "
                    f"'forwarder': set it to {what}."
                )
        self.treasury: str = network.treasury or ""
        self.factory: str = network.forwarder_factory or ""

    def address(self, index: int) -> str:
        return forwarder.deposit_address(self.factory, self.treasury, index)

    def stored_fields(self) -> dict[str, str]:
        return {"treasury": self.treasury, "factory": self.factory}

    def check(self) -> list[str]:
        """Problems an operator must fix (``payments_gateway_check``): the factory missing or computing other
        addresses, the relayer key missing or invalid, the relayer low on gas. Empty when all is well."""
        return forwarder_findings(self.network)


def forwarder_findings(network: NetworkConfig) -> list[str]:
    """What stops or will stop sweeps on ``network`` (one sentence each, naming the key and the fix)."""
    findings: list[str] = []
    client = client_for(network)
    try:
        verify_factory(client, network, network.forwarder_factory or "", network.treasury or "", cached=False)
        if other := other_code_message(client, network):
            findings.append(other)
    except ForwarderMismatch as exc:
        findings.append(str(exc))
    except RPCError as exc:
        findings.append(f"network {network.name!r}: the forwarder factory could not be checked ({exc})")
    try:
        relayer = relayer_account()
    except RelayerKeyError as exc:
        findings.append(f"network {network.name!r}: {exc}")
        return findings
    try:
        balance = int(client.call("eth_getBalance", [relayer.address, "latest"]), 16)
    except (RPCError, TypeError, ValueError) as exc:
        findings.append(f"network {network.name!r}: the relayer's balance could not be read ({exc})")
        return findings
    if low := relayer_low_message(network, relayer.address, balance):
        findings.append(low)
    return findings


def other_code_message(client: RPCClient, network: NetworkConfig) -> str | None:
    """A sentence when the factory's runtime code differs from this version's compiled ``ForwarderFactory`` (it
    predicts the right addresses, but is not the audited contract: a look is due before sweeping with it)."""
    from eth_utils import keccak

    from ..chain.contracts import load_artifact

    expected = bytes.fromhex(load_artifact("ForwarderFactory")["deployedBytecode"].removeprefix("0x"))
    code = client.call("eth_getCode", [network.forwarder_factory, "latest"])
    found = bytes.fromhex(str(code).removeprefix("0x"))
    if keccak(found) == keccak(expected):
        return None
    key = key_of("NETWORKS", network.name, "forwarder_factory")
    return (
        f"{key}: the contract at {network.forwarder_factory} computes the right deposit addresses, but its code "
        f"({len(found)} bytes) is not this version's ForwarderFactory ({len(expected)} bytes): make sure it is the "
        f"contract you meant, or {FIX_FACTORY.format(network=network.name, key=key)}"
    )


def relayer_low_message(network: NetworkConfig, relayer: str, balance: int, needed: int = 0) -> str | None:
    """The warning for a relayer below ``relayer_min_balance`` (or below ``needed`` wei for the next sweep)."""
    floor = max(network.relayer_min_balance, needed)
    if balance >= floor and (balance > 0 or floor > 0):
        return None
    symbol, decimals = network.native.symbol, network.native.decimals
    return (
        f"network {network.name!r}: the relayer {relayer} is low on gas: it holds {_units(balance, decimals)} "
        f"{symbol}, below {_units(floor, decimals)} {symbol}. Send it {symbol}; sweeps wait until then and no "
        "deposit is lost (the funds stay at their deposit addresses, which only the treasury can receive from)."
    )


_verified: set[tuple[str, int, str, str]] = set()
_verified_lock = threading.Lock()


def verify_factory(
    client: RPCClient, network: NetworkConfig, factory: str, treasury: str, *, cached: bool = True
) -> None:
    """Refuse (:class:`ForwarderMismatch`) a factory that is not deployed or predicts another address for index 0
    of ``treasury`` than the offline formula; remembered per process once it passed."""
    key = (network.name, network.chain_id, factory.lower(), treasury.lower())
    if cached and key in _verified:
        return
    factory_key = key_of("NETWORKS", network.name, "forwarder_factory")
    fix = FIX_FACTORY.format(network=network.name, key=factory_key)
    if not factory or not treasury:
        raise ForwarderMismatch(f"{factory_key} or the treasury is not set: {fix}")
    try:
        onchain = forwarder.factory_deposit_addresses(client.call, factory, treasury, [0])
    except ValueError as exc:  # no code there
        raise ForwarderMismatch(f"{factory_key}: {exc} on chain id {network.chain_id}: {fix}") from None
    except RPCError as exc:
        if "revert" not in str(exc).lower() and "execution" not in str(exc).lower():
            raise
        onchain = ["(the call reverted)"]
    offline = forwarder.deposit_address(factory, treasury, 0)
    if onchain != [offline]:
        raise ForwarderMismatch(
            f"{factory_key}: the contract at {factory} predicts deposit address {onchain[0]} for index 0 of treasury "
            f"{treasury}, but the app computes {offline}: it is not a ForwarderFactory of this version, so its "
            f"deposit addresses could not be swept. Nothing is swept with it; {fix}."
        )
    with _verified_lock:
        _verified.add(key)


def _units(amount: int, decimals: int) -> str:
    return format(Decimal(amount).scaleb(-decimals).normalize(), "f")

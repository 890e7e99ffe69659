"""What deposit addresses, the treasury and the relayer hold now, read on chain (never from recorded transfers:
the merchant may have moved funds with a wallet, and only the chain knows).

- :func:`address_balances`: every deposit address of a network, ETH and each configured token, through Multicall3
  (``getEthBalance`` and the tokens' ``balanceOf`` in one ``aggregate3`` per 1000); the admin lists them and
  exports them as CSV (:func:`balances_csv`) for the merchant's wallet tooling (xpub scheme).
- :func:`forwarder_overview`: per forwarder network, the treasury's balances, what still waits at deposit
  addresses, the relayer's gas and whether it is low (dashboard, sweep admin page).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..chain.multicall import MulticallError, asset_balances
from ..chain.rpc import RPCError, client_for
from ..conf import AssetConfig, NetworkConfig, gateway_settings
from ..deposits.forwarder import relayer_low_message
from ..deposits.relayer import RelayerKeyError, relayer_account
from ..models import DepositAddress, Sweep, SweepStatus
from ..money import format_units


@dataclass(frozen=True)
class Balance:
    """``units`` base units of ``asset`` at ``address`` (``None``: the token did not answer)."""

    network: str
    index: int
    address: str
    asset: AssetConfig
    units: int | None

    @property
    def display(self) -> str:
        return "unreadable" if self.units is None else format_units(self.units, self.asset.decimals)


@dataclass
class ForwarderOverview:
    """A forwarder network's money at a glance; ``error`` when the chain could not be read."""

    network: str
    treasury: str
    relayer: str = ""
    relayer_balance: str = ""
    relayer_low: str = ""
    treasury_balances: list[tuple[str, str]] = field(default_factory=list)  # (asset, amount)
    unswept: list[tuple[str, str, int]] = field(default_factory=list)  # (asset, amount, addresses holding it)
    unswept_units: dict[str, int] = field(default_factory=dict)  # asset → base units waiting at deposit addresses
    relayer_units: int | None = None  # wei
    pending_sweeps: int = 0
    error: str = ""


def address_balances(network: str, *, nonzero: bool = False) -> list[Balance]:
    """ETH and every configured token at each deposit address of ``network``, by index (``nonzero``: only what
    is not zero). Raises :class:`~payments_gateway.chain.rpc.RPCError` when the chain cannot be read."""
    config = gateway_settings.network(network)
    rows = list(DepositAddress.objects.filter(network=network).order_by("index").values_list("index", "address"))
    assets = list(config.assets.values())
    units = _read(config, [address for _, address in rows], assets)
    found = [
        Balance(network, index, address, asset, amount)
        for (index, address), amounts in zip(rows, units, strict=True)
        for asset, amount in zip(assets, amounts, strict=True)
    ]
    return [b for b in found if b.units != 0] if nonzero else found


def balances_csv(balances: Iterable[Balance]) -> str:
    """CSV with a header: network, index, address, asset, balance in base units, balance in whole units."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["network", "index", "address", "asset", "balance_base_units", "balance"])
    for b in balances:
        writer.writerow([b.network, b.index, b.address, b.asset.symbol, "" if b.units is None else b.units, b.display])
    return out.getvalue()


def forwarder_overviews() -> list[ForwarderOverview]:
    """:func:`forwarder_overview` of every network on the forwarder scheme."""
    return [
        forwarder_overview(n) for n, c in sorted(gateway_settings.networks.items()) if c.deposit_scheme == "forwarder"
    ]


def forwarder_overview(network: str) -> ForwarderOverview:
    """The treasury's balances, unswept balances at deposit addresses, pending sweeps and the relayer's gas."""
    config = gateway_settings.network(network)
    overview = ForwarderOverview(network, config.treasury or "")
    overview.pending_sweeps = Sweep.objects.filter(network=network, status=SweepStatus.PENDING).count()
    assets = list(config.assets.values())
    try:
        if config.treasury:
            (treasury,) = _read(config, [config.treasury], assets)
            overview.treasury_balances = [(a.symbol, _shown(u, a)) for a, u in zip(assets, treasury, strict=True)]
        addresses = list(
            DepositAddress.objects.filter(network=network, scheme="forwarder").values_list("address", flat=True)
        )
        held = _read(config, addresses, assets)
        for i, asset in enumerate(assets):
            amounts = [row[i] or 0 for row in held]
            overview.unswept.append(
                (asset.symbol, format_units(sum(amounts), asset.decimals), sum(1 for a in amounts if a))
            )
            overview.unswept_units[asset.symbol] = sum(amounts)
        _relayer(overview, config)
    except (RPCError, MulticallError) as exc:
        overview.error = f"the chain could not be read: {exc}"
    return overview


def _relayer(overview: ForwarderOverview, config: NetworkConfig) -> None:
    try:
        relayer = relayer_account()
    except RelayerKeyError as exc:
        overview.relayer_low = str(exc)
        return
    balance = int(client_for(config).call("eth_getBalance", [relayer.address, "latest"]), 16)
    overview.relayer, overview.relayer_balance = relayer.address, _shown(balance, config.native)
    overview.relayer_units = balance
    overview.relayer_low = relayer_low_message(config, relayer.address, balance) or ""


def _read(config: NetworkConfig, addresses: list[str], assets: list[AssetConfig]) -> list[list[int | None]]:
    """Per address, the balance of each of ``assets`` (in order) at the latest block."""
    if not addresses:
        return []
    holdings = [(address, asset.address) for address in addresses for asset in assets]
    found = asset_balances(client_for(config), config.multicall3, holdings, "latest")
    n = len(assets)
    return [found[i * n : (i + 1) * n] for i in range(len(addresses))]


def _shown(units: int | None, asset: AssetConfig) -> str:
    return "unreadable" if units is None else f"{format_units(units, asset.decimals)} {asset.symbol}"

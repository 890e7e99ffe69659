"""The deposit scheme seam: :class:`DepositScheme`, its registry, and the scheme of each network."""

from __future__ import annotations

from typing import ClassVar

from ..conf import NetworkConfig, gateway_settings, settings_cache
from ..conf.values import key_of
from ..plugins import Plugin, load_plugin


class DepositScheme(Plugin):
    """How the deposit addresses of one network are made.

    A subclass sets ``name`` (the ``deposit_scheme`` value that selects it; a subclass elsewhere is named by its
    dotted path) and implements :meth:`address`. It is built once per settings with the network's
    :class:`~payments_gateway.conf.NetworkConfig`.
    """

    registry: ClassVar[dict[str, type[DepositScheme]]] = {}

    def __init__(self, network: NetworkConfig) -> None:
        self.network = network

    def address(self, index: int) -> str:
        """The EIP-55 deposit address number ``index`` (0 .. 2**31 - 1), computed offline."""
        raise NotImplementedError

    def stored_fields(self) -> dict[str, str]:
        """Fields of :class:`~payments_gateway.models.DepositAddress` (besides the address) that a new address of
        this scheme stores: how it was made, whatever the settings say later (the forwarder scheme's ``treasury``
        and ``factory``: an address bound to an old treasury still sweeps to it after the setting changes)."""
        return {}

    def check(self) -> list[str]:
        """Problems with this network's scheme that only the chain can reveal, one sentence each naming the key
        and the fix (``payments_gateway_check`` reports them). Empty when all is well."""
        return []


def load_scheme(network: str, value: str) -> type[DepositScheme]:
    """The scheme class ``value`` names for ``network``; ``ImproperlyConfigured`` naming the key otherwise."""
    return load_plugin(DepositScheme, value, key_of("NETWORKS", network, "deposit_scheme"))


@settings_cache
def scheme_for(network: str) -> DepositScheme:
    """The deposit scheme of the configured ``network`` (``ValueError`` for an unknown network)."""
    config = gateway_settings.network(network)
    return load_scheme(network, config.deposit_scheme)(config)

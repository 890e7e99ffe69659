"""The ``"xpub"`` deposit scheme: addresses of the merchant's own HD wallet, derived from its public key."""

from __future__ import annotations

from ..chain.hd import derive_address
from ..conf import gateway_settings
from .base import DepositScheme


class XpubScheme(DepositScheme):
    """Address ``i`` is m/44'/60'/0'/0/``i`` of ``PAYMENTS_GATEWAY["XPUB"]`` (public derivation only: the server
    can find the addresses but never spend from them)."""

    name = "xpub"

    def address(self, index: int) -> str:
        return derive_address(gateway_settings.XPUB, index)

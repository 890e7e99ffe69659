"""Deposit addresses: how a network's addresses are made (a scheme) and handed out to sessions (allocation).

A **deposit scheme** is a seam like the rate provider (one base class, a registry, a dotted path): each network
names one with its ``deposit_scheme`` key (default ``"xpub"``). The scheme turns a derivation index into an
address, offline; :func:`allocate_address` takes the next index of the network under a row lock (a new address
for every session, never one used before) and stores the :class:`~payments_gateway.models.DepositAddress`.

- ``"xpub"`` (:mod:`.xpub`): address i = m/44'/60'/0'/0/i of ``PAYMENTS_GATEWAY["XPUB"]``; funds stay on each
  address of the merchant's HD wallet.
- ``"forwarder"`` (:mod:`.forwarder`): CREATE2 addresses of the network's ``forwarder_factory`` that can only pay
  its ``treasury``; swept in batches by the relayer (:mod:`.relayer`, :mod:`payments_gateway.services.sweeps`).
"""

from . import forwarder, xpub  # noqa: F401  (registers the built-in schemes)
from .allocation import CLOCK_SLACK, allocate_address, bind_to_session
from .base import DepositScheme, load_scheme, scheme_for

__all__ = ["CLOCK_SLACK", "DepositScheme", "allocate_address", "bind_to_session", "load_scheme", "scheme_for"]

"""Scanning: find payments to deposit addresses, count confirmations, notice reorgs.

The workflow above the chain layer (which only reads the chain) and the services (which decide what transfers
mean for a session). One module per job:

- :mod:`.scan` — :func:`scan_network`, one scan of one network from its cursor to the head, range by range;
- :mod:`.lease` — one scanner per network (a lease on the ``ChainCursor`` row);
- :mod:`.reorgs` — block hashes kept, fork point found, cursor rewound;
- :mod:`.watched` — which deposit addresses a scan looks for, and their ETH baselines;
- :mod:`.balances` — ETH that reached an address through a contract, found by balance;
- :mod:`.store` — transfers stored once each, matched to sessions, confirmations and reverts;
- :mod:`.transactions` — :func:`check_transaction`, one transaction checked now on a hint.

RPC calls per block range do not grow with the number of watched addresses beyond one call per
``address_chunk`` addresses: token logs come from ``eth_getLogs`` with the addresses as an OR-list, plain ETH from
the block bodies, ETH through contracts from Multicall3 balance reads every few blocks.
"""

from .result import ScanError, ScanResult
from .scan import scan_network
from .transactions import check_transaction

__all__ = ["ScanError", "ScanResult", "check_transaction", "scan_network"]

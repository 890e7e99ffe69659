"""What a scan reports, and the error it raises when it cannot go on."""

from __future__ import annotations

from dataclasses import dataclass, field


class ScanError(Exception):
    """A scan could not proceed (the message says why); the cursor is where the last committed range left it."""


class LeaseLost(ScanError):
    """Another process took the network's lease over (this one was too slow to renew it): stop scanning."""


@dataclass
class ScanResult:
    """What one :func:`~payments_gateway.scanning.scan_network` call did."""

    network: str
    status: str  # "scanned", "up_to_date" or "busy"
    from_block: int | None = None
    to_block: int | None = None
    head: int | None = None
    transfers: int = 0  # transfers stored or updated (found again, moved to a new block)
    confirmed: int = 0
    reverted: int = 0
    reorg_depth: int = 0
    sessions: set[int] = field(default_factory=set)
    rpc_calls: int = 0

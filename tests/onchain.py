"""Steps on the dev chain ("anvil" network) that several test files take: paying sessions until the scanner has
confirmed the payment, sending transactions in one block, and a reorg that drops a confirmed payment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from payments_gateway.models import Transfer
from payments_gateway.scanning import scan_network


def refreshed(obj):
    """``obj`` reloaded from the database (and returned, for use in an expression)."""
    obj.refresh_from_db()
    return obj


@contextmanager
def one_block(chain) -> Iterator[None]:
    """Transactions sent inside land in one block, mined on exit."""
    chain.rpc("evm_setAutomine", [False])
    try:
        yield
        chain.mine(1)
    finally:
        chain.rpc("evm_setAutomine", [True])


def pay(chain, session, amount: int) -> None:
    """Send ``amount`` base units of the session's asset to its deposit address from a customer account."""
    if session.asset == "ETH":
        chain.send_eth(session.address, amount)
    else:
        chain.send_token(session.asset, session.address, amount)


def paid_and_confirmed(chain, *payments) -> None:
    """Each (session, amount) is paid from a customer account, then scanned until confirmed."""
    scan_network("anvil")
    for session, amount in payments:
        pay(chain, session, amount)
    chain.mine(2)
    scan_network("anvil")
    assert all(t.status == "confirmed" for t in Transfer.objects.all())


def paid_then_reorged_away(chain, session, amount: int) -> int:
    """``session`` is paid ``amount`` in full and scanned complete; then the payment's block and its successors leave
    the canonical chain for a longer one without the payment (not scanned yet). Returns the head the payment was
    scanned at."""
    scan_network("anvil")
    before_payment = chain.snapshot()
    pay(chain, session, amount)
    chain.mine(2)
    scan_network("anvil")
    assert refreshed(session).status == "complete"
    old_head = chain.w3.eth.block_number
    chain.revert(before_payment)  # the payment's block and its successors leave the canonical chain
    chain.mine(5)  # a longer chain without the payment
    return old_head

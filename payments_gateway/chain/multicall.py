"""Many ETH balances in a few ``eth_call``\\ s, through Multicall3's ``aggregate3`` of its own ``getEthBalance``.

ETH sent to an address by a contract (a Safe, a forwarder) leaves no log and no top-level transaction to the
address: only its balance shows it. :func:`eth_balances` reads the balances of many addresses at one block.
"""

from __future__ import annotations

from typing import Any

from .rpc import RPCClient

GET_ETH_BALANCE = bytes.fromhex("4d2301cc")  # Multicall3.getEthBalance(address)
AGGREGATE3 = bytes.fromhex("82ad56cb")  # Multicall3.aggregate3((address,bool,bytes)[])
# Addresses per Multicall3 eth_call (each getEthBalance costs ~3k gas; nodes cap eth_call gas near 30-50M).
BALANCE_CHUNK = 1000


class MulticallError(ValueError):
    """Multicall3 answered something that is not the balances asked for."""


def eth_balances(client: RPCClient, multicall: str, addresses: list[str], block_number: int) -> list[int]:
    """The ETH balance (wei) of each of ``addresses`` at ``block_number``, in order."""
    chunks = [addresses[i : i + BALANCE_CHUNK] for i in range(0, len(addresses), BALANCE_CHUNK)]
    calls = [
        ("eth_call", [{"to": multicall, "data": encode_balance_calls(multicall, chunk)}, hex(block_number)])
        for chunk in chunks
    ]
    balances: list[int] = []
    # ~400 KB of hex calldata per 1000 addresses: two calls per HTTP request keeps bodies under nodes' limits.
    answers = client.batch(calls, max_size=2)
    for answer, chunk in zip(answers, chunks, strict=True):
        try:
            balances.extend(decode_balances(answer, len(chunk)))
        except ValueError as exc:
            raise MulticallError(f"Multicall3 at {multicall} answered garbage: {exc}") from None
    return balances


def encode_balance_calls(multicall: str, addresses: list[str]) -> str:
    """Calldata of ``Multicall3.aggregate3`` calling its own ``getEthBalance`` once per address.

    Written by hand: eth_abi's generic encoder is most of a scan's CPU time for a thousand addresses. The layout
    is the ABI's (array of dynamic tuples: offsets, then ``(target, allowFailure, offset, length, data)`` each).
    """
    n = len(addresses)
    target = multicall[2:].lower().rjust(64, "0")
    word = "{:064x}".format
    parts = [AGGREGATE3.hex(), word(0x20), word(n)]
    parts += [word(32 * n + 192 * i) for i in range(n)]
    call_head = target + word(1) + word(0x60) + word(36) + GET_ETH_BALANCE.hex() + "0" * 24
    for address in addresses:
        parts.append(call_head + address[2:].lower() + "0" * 56)
    return "0x" + "".join(parts)


def decode_balances(data: Any, count: int) -> list[int]:
    """Balances from the ``(bool success, bytes returnData)[]`` that ``aggregate3`` returns; ``ValueError`` if
    the answer is not that."""
    if not isinstance(data, str) or not data.startswith("0x"):
        raise ValueError(f"not hex data: {str(data)[:80]!r}")
    raw = bytes.fromhex(data[2:])

    def word(at: int) -> int:
        if at < 0 or at + 32 > len(raw):
            raise ValueError(f"truncated answer ({len(raw)} bytes)")
        return int.from_bytes(raw[at : at + 32], "big")

    base = word(0) + 32  # the array's elements start after its length word
    if word(base - 32) != count:
        raise ValueError(f"{word(base - 32)} results for {count} addresses")
    balances = []
    for i in range(count):
        item = base + word(base + 32 * i)
        if word(item) != 1:
            raise ValueError(f"getEthBalance of address {i} failed")
        returned = item + word(item + 32)
        if word(returned) != 32:
            raise ValueError(f"getEthBalance of address {i} returned {word(returned)} bytes")
        balances.append(word(returned + 32))
    return balances

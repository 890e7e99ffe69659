"""Many ETH balances in a few ``eth_call``\\ s, through Multicall3's ``aggregate3`` of its own ``getEthBalance``.

ETH sent to an address by a contract (a Safe, a forwarder) leaves no log and no top-level transaction to the
address: only its balance shows it. :func:`eth_balances` reads the balances of many addresses at one block.
"""

from __future__ import annotations

from typing import Any

from .rpc import RPCClient

GET_ETH_BALANCE = bytes.fromhex("4d2301cc")  # Multicall3.getEthBalance(address)
AGGREGATE3 = bytes.fromhex("82ad56cb")  # Multicall3.aggregate3((address,bool,bytes)[])
BALANCE_OF = bytes.fromhex("70a08231")  # ERC20.balanceOf(address)
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


def asset_balances(
    client: RPCClient, multicall: str | None, holdings: list[tuple[str, str | None]], block: int | str = "latest"
) -> list[int | None]:
    """The balance of each ``(holder, token)`` (``token`` None: ETH) at ``block``, in order; ``None`` where a token
    call failed (not a token, self-destructed). Through Multicall3 when given, else one JSON-RPC call each."""
    tag = hex(block) if isinstance(block, int) else block
    if multicall is None:
        calls = [
            ("eth_getBalance", [holder, tag])
            if token is None
            else (
                "eth_call",
                [{"to": token, "data": "0x" + (BALANCE_OF.hex() + holder[2:].lower().rjust(64, "0"))}, tag],
            )
            for holder, token in holdings
        ]
        return [_word_or_none(answer) for answer in client.batch(calls)]
    found: list[int | None] = []
    for start in range(0, len(holdings), BALANCE_CHUNK):
        chunk = holdings[start : start + BALANCE_CHUNK]
        targets = [(multicall if token is None else token, GET_ETH_BALANCE if token is None else BALANCE_OF, holder)
                   for holder, token in chunk]  # fmt: skip
        answer = client.call("eth_call", [{"to": multicall, "data": encode_calls(targets)}, tag])
        try:
            found.extend(decode_balances(answer, len(chunk), allow_failure=True))
        except ValueError as exc:
            raise MulticallError(f"Multicall3 at {multicall} answered garbage: {exc}") from None
    return found


def encode_balance_calls(multicall: str, addresses: list[str]) -> str:
    """Calldata of ``Multicall3.aggregate3`` calling its own ``getEthBalance`` once per address.

    Written by hand: eth_abi's generic encoder is most of a scan's CPU time for a thousand addresses. The layout
    is the ABI's (array of dynamic tuples: offsets, then ``(target, allowFailure, offset, length, data)`` each).
    """
    return encode_calls([(multicall, GET_ETH_BALANCE, address) for address in addresses])


def encode_calls(calls: list[tuple[str, bytes, str]]) -> str:
    """``aggregate3`` calldata for ``(target, selector, address)`` calls (each ``selector(address)``, allowed to
    fail), written by hand for speed like :func:`encode_balance_calls`."""
    n = len(calls)
    word = "{:064x}".format
    parts = [AGGREGATE3.hex(), word(0x20), word(n)]
    parts += [word(32 * n + 192 * i) for i in range(n)]
    tail = word(1) + word(0x60) + word(36)
    for target, selector, address in calls:
        parts.append(
            target[2:].lower().rjust(64, "0") + tail + selector.hex() + "0" * 24 + address[2:].lower() + "0" * 56
        )
    return "0x" + "".join(parts)


def decode_balances(data: Any, count: int, *, allow_failure: bool = False) -> list[Any]:
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
    balances: list[Any] = []
    for i in range(count):
        item = base + word(base + 32 * i)
        returned = item + word(item + 32)
        if word(item) != 1 or word(returned) != 32:
            if allow_failure:  # a token that reverted or answered something else: unknown, not zero
                balances.append(None)
                continue
            raise ValueError(f"balance call {i} failed or returned {word(returned)} bytes")
        balances.append(word(returned + 32))
    return balances


def _word_or_none(answer: Any) -> int | None:
    if isinstance(answer, str) and answer.startswith("0x") and len(answer) in range(3, 67):
        return int(answer, 16)
    return None

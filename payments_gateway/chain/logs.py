"""``eth_getLogs`` of ERC-20 transfers to many addresses, with the range halving providers need.

One query covers every token contract at once (no contract filter: a token the merchant never configured is
recorded too), with the recipients as an OR-list on the third topic, ``address_chunk`` recipients per query: the
number of calls does not grow with the watched addresses beyond one call per chunk. ERC-721 transfers share the
topic and the recipient position; :func:`~payments_gateway.chain.blocks.token_transfers` tells them apart.
Providers refuse ranges with too many results ("query returned more than 10000 results"); :func:`transfer_logs`
then halves the range, here and only here, rather than stall the network on it.
"""

from __future__ import annotations

import logging
from typing import Any

from ..conf import NetworkConfig
from .blocks import TRANSFER_TOPIC
from .rpc import RPCClient, RPCResponseError

logger = logging.getLogger(__name__)

Call = tuple[str, list[Any]]


class MalformedLogs(ValueError):
    """The node answered ``eth_getLogs`` with something that is not a list of logs."""


def transfer_log_calls(network: NetworkConfig, start: int, end: int, recipients: list[str]) -> list[Call]:
    """The ``eth_getLogs`` calls for token transfers (any contract) to ``recipients`` (lowercase) in blocks
    ``start..end``."""
    if not recipients:
        return []
    addresses = sorted(recipients)
    chunk = network.address_chunk
    return [
        (
            "eth_getLogs",
            [
                {
                    "fromBlock": hex(start),
                    "toBlock": hex(end),
                    "topics": [TRANSFER_TOPIC, None, [_topic(a) for a in addresses[i : i + chunk]]],
                }
            ],
        )
        for i in range(0, len(addresses), chunk)
    ]


def transfer_logs(
    client: RPCClient, network: NetworkConfig, start: int, end: int, recipients: list[str], *, refused: bool = False
) -> list[dict[str, Any]]:
    """Token transfer logs to ``recipients`` in ``start..end``, halving the range while the node refuses it.

    ``refused``: the node already refused this whole range (asked together with something else): start halving.
    """
    if refused and start < end:
        return _halves(client, network, start, end, recipients)
    calls = transfer_log_calls(network, start, end, recipients)
    if not calls:
        return []
    try:
        answers = client.batch(calls, max_size=10)
    except RPCResponseError as exc:
        if start == end:
            raise
        logger.warning("network %r: eth_getLogs %d..%d refused (%s); splitting", network.name, start, end, exc)
        return _halves(client, network, start, end, recipients)
    return collect_logs(answers)


def collect_logs(answers: list[Any]) -> list[dict[str, Any]]:
    """The logs of several ``eth_getLogs`` answers, in order; :class:`MalformedLogs` if one is not a list."""
    logs: list[dict[str, Any]] = []
    for answer in answers:
        if not isinstance(answer, list):
            raise MalformedLogs(f"eth_getLogs answered {str(answer)[:200]!r}, not a list of logs")
        logs.extend(answer)
    return logs


def _halves(
    client: RPCClient, network: NetworkConfig, start: int, end: int, recipients: list[str]
) -> list[dict[str, Any]]:
    middle = (start + end) // 2
    return transfer_logs(client, network, start, middle, recipients) + transfer_logs(
        client, network, middle + 1, end, recipients
    )


def _topic(address: str) -> str:
    return "0x" + "0" * 24 + address[2:].lower()

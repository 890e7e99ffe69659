"""New chain heads as they arrive, for the scanner that follows a network (``scanning/follow.py``).

Where the network has a ``ws_url``, heads come from ``eth_subscribe("newHeads")`` on a WebSocket: the scan starts
the moment a block exists. The WebSocket only says *that* a block exists; what it holds is always read over HTTP
(``eth_getLogs`` and the blocks, from the cursor), so a missed or forged notification costs nothing but a scan.
Without a ``ws_url``, or while the WebSocket refuses, drops or answers something that is not a head, heads are
found by polling ``eth_blockNumber`` (:func:`poll_interval`); the WebSocket is tried again every
:data:`RECONNECT_SECONDS`. Each change between the two is logged once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from ..conf import NetworkConfig, gateway_settings
from .rpc import RPCClient

logger = logging.getLogger(__name__)

#: Seconds between two attempts to (re)open a network's WebSocket after it failed.
RECONNECT_SECONDS = 10.0
#: Seconds a WebSocket may take to open and to answer the subscription.
OPEN_TIMEOUT = 5.0


def poll_interval(network: NetworkConfig) -> float:
    """Seconds between two ``eth_blockNumber`` polls: ``SCAN_INTERVAL`` when set, else a quarter of the network's
    block time (a block is then seen at most a quarter block late), at least 0.1 s."""
    interval = gateway_settings.SCAN_INTERVAL or network.block_time / 4
    return max(float(Decimal(str(interval))), 0.1)


class Heads:
    """The head of one network, waited for with :meth:`wait`. Holds the network's WebSocket (if any) open
    between waits; :meth:`close` ends it."""

    def __init__(self, network: NetworkConfig, client: RPCClient) -> None:
        self.network = network
        self.client = client
        self.interval = poll_interval(network)
        self._ws: Any = None
        self._retry_at = 0.0  # monotonic time of the next WebSocket attempt
        self.mode = "poll"

    def wait(self, known: int, timeout: float) -> int | None:
        """Block until the chain's head is above block ``known`` (return its number, or -1 when a WebSocket said a
        block arrived without a readable number) or ``timeout`` seconds pass (return None)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if self.network.ws_url and self._ws is None and time.monotonic() >= self._retry_at and self._open():
                # Heads announced while no subscription was open are missed: ask once (the scan backfills them).
                if (polled := self._poll()) > known:
                    return polled
                continue
            if self._ws is not None:
                # A subscription that stays silent for several blocks is checked by one poll (it may be stuck).
                head = self._receive(min(left, 3 * float(self.network.block_time)))
                if head is None and self._ws is not None:
                    head = self._poll()
                if head is not None and (head < 0 or head > known):
                    return head
                continue
            if (polled := self._poll()) > known:
                return polled
            time.sleep(max(min(self.interval, deadline - time.monotonic()), 0))
        return None

    def close(self) -> None:
        if self._ws is not None:
            self._stack.close()
            self._ws = None

    def _poll(self) -> int:
        return int(self.client.call("eth_blockNumber"), 16)

    def _open(self) -> bool:
        from websockets.sync.client import connect

        url = self.network.ws_url or ""
        self._stack = contextlib.ExitStack()
        try:
            ws = self._stack.enter_context(connect(url, open_timeout=OPEN_TIMEOUT, close_timeout=1, max_size=2**20))
        except Exception as exc:  # refused, DNS, TLS, not a WebSocket server: poll instead
            self._fall_back(f"cannot be opened ({type(exc).__name__}: {exc})")
            return False
        try:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
            answer = json.loads(ws.recv(timeout=OPEN_TIMEOUT))
            if not isinstance(answer, dict) or not isinstance(answer.get("result"), str):
                raise ValueError(f"eth_subscribe answered {str(answer)[:200]!r}")
        except Exception as exc:
            self._stack.close()
            self._fall_back(f"did not subscribe to new heads ({type(exc).__name__}: {exc})")
            return False
        self._ws, self._subscription = ws, answer["result"]
        self.mode = "ws"
        _say(self.network.name, "ws", logging.INFO, "network %r: new heads arrive by WebSocket from %s",
             self.network.name, _where(url))  # fmt: skip
        return True

    def _receive(self, timeout: float) -> int | None:
        """The number of the head the WebSocket announces within ``timeout`` (-1: a head without a readable
        number), or None; a dropped connection or garbage falls back to polling."""
        try:
            message = json.loads(self._ws.recv(timeout=timeout))
            if message.get("method") != "eth_subscription":
                return None  # an answer to something else: not a head
            params = message["params"]
            if params["subscription"] != self._subscription:
                return None
            number = params["result"].get("number") if isinstance(params["result"], dict) else None
            return int(number, 16) if isinstance(number, str) else -1
        except TimeoutError:
            return None
        except Exception as exc:  # closed, reset, not JSON, not a subscription message
            self.close()
            self._fall_back(f"failed ({type(exc).__name__}: {exc})")
            return None

    def _fall_back(self, why: str) -> None:
        self._retry_at = time.monotonic() + RECONNECT_SECONDS
        self.mode = "poll-fallback"
        _say(self.network.name, "poll-fallback", logging.WARNING,
             "network %r: WebSocket %s %s; polling for new heads every %.2f s (retrying the WebSocket every %.0f s)",
             self.network.name, _where(self.network.ws_url or ""), why, self.interval, RECONNECT_SECONDS)  # fmt: skip


# How each network's heads last arrived in this process: a change is logged once, not by every follower.
_said: dict[str, str] = {}


def _say(network: str, mode: str, level: int, message: str, *args: Any) -> None:
    if _said.get(network) != mode:
        _said[network] = mode
        logger.log(level, message, *args)


def forget_logged_modes() -> None:
    """Log the next change of every network again (tests)."""
    _said.clear()


def _where(url: str) -> str:
    """A WebSocket URL as it may be logged: scheme, host and port (a provider's path often holds an API key)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")

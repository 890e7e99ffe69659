"""JSON-RPC client for one network, with failover over its ``rpc_urls``.

``client_for(network)`` returns an :class:`RPCClient`; ``client.call(method, params)`` and
``client.batch([(method, params), ...])`` send raw JSON-RPC over HTTP (a batch is one HTTP request).

Raw JSON-RPC instead of web3's provider: web3 formats every log and transaction of a large ``eth_getLogs`` or
full block into attribute dicts, which is most of the scanner's CPU time, and it cannot send batches through
its failover. :func:`web3_for` gives a web3 ``Web3`` on the first healthy URL for code that wants contract
helpers.

Failover: a timeout, a connection error, HTTP 429 or 5xx, an answer that is not JSON-RPC, or a JSON-RPC
"rate limited" error puts the URL in backoff (exponential, honouring ``Retry-After``) and the request goes to the
next URL. The backoff state is a per-process cache, not a claim: losing it only costs one failed request.
Each URL's ``eth_chainId`` is checked once per process before first use; a wrong chain id is refused with an
error naming the URL, the expected and the actual id.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from ..conf import NetworkConfig
from . import rpc_errors

logger = logging.getLogger(__name__)

# Backoff after a failure: 1 s, 2 s, 4 s ... capped; a wrong chain id is a configuration error, retried rarely.
BACKOFF_BASE = 1.0
BACKOFF_MAX = 60.0
CHAIN_ID_BACKOFF = 300.0
# JSON-RPC error codes providers use for throttling / overload (EIP-1474 -32005 "limit exceeded").
THROTTLE_CODES = {-32005, -32029, -32090, 429}

# JSON-RPC calls sent, per network name (for the bench and the admin); a process-local counter.
call_counts: Counter[str] = Counter()
request_counts: Counter[str] = Counter()


class RPCError(Exception):
    """Base class of every error of this module."""


class RPCUnavailable(RPCError):
    """No RPC URL of the network gave a usable answer (each URL's reason is in the message)."""


class ChainIdMismatch(RPCError):
    """An RPC URL serves another chain than the network's configured ``chain_id``."""

    def __init__(self, url: str, expected: int, actual: int | None) -> None:
        self.url, self.expected, self.actual = url, expected, actual
        super().__init__(f"RPC URL {url} serves chain id {actual}, but the network expects chain id {expected}")


class RPCResponseError(RPCError):
    """The node answered with a JSON-RPC error (a valid answer: not a reason to fail over)."""

    def __init__(self, url: str, method: str, error: Any) -> None:
        self.url, self.method, self.error = url, method, error
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        self.code = code
        super().__init__(f"{method} at {url} failed: {message} (code {code})")


class _Failover(Exception):
    """This URL failed in a way that another URL may not: back off and try the next one. ``kind`` is how it
    failed (one of :data:`.rpc_errors.KINDS`), counted per URL in the database."""

    def __init__(self, reason: str, retry_after: float | None = None, *, kind: str = "malformed") -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.kind = kind


@dataclass
class _URLState:
    failures: int = 0
    until: float = 0.0  # time.monotonic() before which the URL is skipped
    last_error: str = ""


# Process-local caches keyed by URL: backoff state and the URLs whose chain id was verified.
_states: dict[str, _URLState] = {}
_verified: set[tuple[str, int]] = set()
_lock = threading.Lock()
_local = threading.local()


def client_for(network: NetworkConfig) -> RPCClient:
    """A client for ``network`` (one per thread and configuration, reusing its HTTP connections)."""
    cache = getattr(_local, "clients", None)
    if cache is None:
        cache = _local.clients = {}
    key = (network.name, network.chain_id, network.rpc_urls, network.rpc_timeout)
    client = cache.get(key)
    if client is None:
        client = cache[key] = RPCClient(network)
    return client


def web3_for(network: NetworkConfig) -> Any:
    """A web3 ``Web3`` on the first URL of ``network`` that is not backing off and serves the right chain."""
    from web3 import HTTPProvider, Web3

    client = client_for(network)
    url = client.healthy_url()
    provider = HTTPProvider(url, request_kwargs={"timeout": float(network.rpc_timeout)})
    return Web3(provider)


def reset_backoff() -> None:
    """Forget every URL's backoff and chain-id state (tests; an operator after fixing an RPC)."""
    with _lock:
        _states.clear()
        _verified.clear()
    rpc_errors.forget()


class RPCClient:
    """Raw JSON-RPC over the ``rpc_urls`` of one network, with failover, backoff and a chain-id check."""

    def __init__(self, network: NetworkConfig, session: requests.Session | None = None) -> None:
        self.network = network
        self.session = session or requests.Session()
        self.timeout = float(network.rpc_timeout)
        self.calls = 0  # JSON-RPC calls sent by this client (a batch of n counts n)
        self.requests = 0  # HTTP requests sent by this client
        self._ids = itertools.count(1)
        self._last_url = ""

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """Send one call; return its ``result`` or raise :class:`RPCResponseError` / :class:`RPCUnavailable`."""
        return self.batch([(method, params)])[0]

    def batch(self, calls: Iterable[tuple[str, Sequence[Any]]], *, max_size: int = 100) -> list[Any]:
        """Send calls as JSON-RPC batches of at most ``max_size``; return the results in order.

        A JSON-RPC error in any item raises :class:`RPCResponseError` (after failover for throttling errors).
        """
        calls = list(calls)
        results: list[Any] = []
        for start in range(0, len(calls), max_size):
            results.extend(self._send(calls[start : start + max_size]))
        return results

    def healthy_url(self) -> str:
        """The first URL that answers with the right chain id (after backoff rules)."""
        self.call("eth_chainId")
        return self._last_url

    def probe_chain_id(self, url: str) -> int:
        """The chain id ``url`` answers, asked now, outside failover and backoff (``payments_gateway_check``
        looks at every URL); :class:`RPCUnavailable` saying why when it gives no usable answer."""
        try:
            (raw,) = self._post(url, [("eth_chainId", [])])
            return int(raw, 16)
        except _Failover as exc:
            raise RPCUnavailable(str(exc)) from None
        except (TypeError, ValueError):
            raise RPCUnavailable("eth_chainId did not answer a hex number") from None

    # -- internals -----------------------------------------------------------------------------------------

    def _send(self, calls: list[tuple[str, Sequence[Any]]]) -> list[Any]:
        if not calls:
            return []
        reasons: list[str] = []
        mismatches: list[ChainIdMismatch] = []
        rpc_errors.flush()  # counts kept while a transaction was open
        now = time.monotonic()
        urls = list(self.network.rpc_urls)
        # URLs not backing off first (in configured order); the rest only if every URL is backing off
        # and its backoff has ended, so a dead network answers at once instead of waiting for timeouts.
        ready = [u for u in urls if self._state(u).until <= now]
        if not ready:
            soonest = min(urls, key=lambda u: self._state(u).until)
            wait = self._state(soonest).until - now
            details = "; ".join(f"{u}: {self._state(u).last_error}" for u in urls)
            raise RPCUnavailable(
                f"network {self.network.name!r}: every RPC URL is backing off (next retry in {wait:.1f} s): {details}"
            )
        for url in ready:
            try:
                self._check_chain_id(url)
                results = self._post(url, calls)
            except ChainIdMismatch as exc:
                logger.error("%s", exc)
                self._fail(url, str(exc), CHAIN_ID_BACKOFF)
                rpc_errors.record(self.network.name, url, "chain_id", str(exc))
                mismatches.append(exc)
                reasons.append(f"{url}: {exc}")
                continue
            except _Failover as exc:
                logger.warning("RPC %s for network %r failed: %s; trying the next URL", url, self.network.name, exc)
                self._fail(url, str(exc), exc.retry_after)
                rpc_errors.record(self.network.name, url, exc.kind, str(exc))
                reasons.append(f"{url}: {exc}")
                continue
            self._ok(url)
            self._last_url = url
            return results
        if mismatches and len(mismatches) == len(reasons):
            raise mismatches[0]
        raise RPCUnavailable(f"network {self.network.name!r}: no RPC URL answered: " + "; ".join(reasons))

    def _check_chain_id(self, url: str) -> None:
        expected = self.network.chain_id
        if (url, expected) in _verified:
            return
        (raw,) = self._post(url, [("eth_chainId", [])])
        try:
            actual = int(raw, 16)
        except (TypeError, ValueError):
            raise _Failover(f"eth_chainId answered {raw!r}, not a hex number", kind="malformed")
        if actual != expected:
            raise ChainIdMismatch(url, expected, actual)
        with _lock:
            _verified.add((url, expected))

    def _post(self, url: str, calls: list[tuple[str, Sequence[Any]]]) -> list[Any]:
        payload: list[dict[str, Any]] = [
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
            for method, params in calls
        ]
        if not url.startswith(("http://", "https://")):
            raise _Failover(
                "only http(s) RPC URLs are supported by the scanner; add an http(s) URL to rpc_urls", kind="connection"
            )
        self.calls += len(payload)
        self.requests += 1
        call_counts[self.network.name] += len(payload)
        request_counts[self.network.name] += 1
        try:
            response = self.session.post(url, json=payload, timeout=self.timeout)
        except requests.Timeout:
            raise _Failover(f"timed out after {self.timeout:g} s", kind="timeout")
        except requests.RequestException as exc:
            raise _Failover(f"connection error: {type(exc).__name__}: {exc}", kind="connection")
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            raise _Failover(f"HTTP {response.status_code}", retry_after, kind="http")
        if response.status_code != 200:
            raise _Failover(f"HTTP {response.status_code}: {response.text[:200]!r}", kind="http")
        try:
            body = response.json()
        except ValueError:
            raise _Failover(f"answer is not JSON: {response.text[:200]!r}")
        if isinstance(body, dict) and len(payload) == 1:
            body = [body]  # some servers answer a one-item batch with a bare object
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise _Failover(f"answer is not a JSON-RPC batch response: {str(body)[:200]!r}")
        by_id = {item.get("id"): item for item in body}
        results = []
        for request in payload:
            item = by_id.get(request["id"])
            if item is None or ("result" not in item and "error" not in item):
                raise _Failover(f"answer has no result for {request['method']} (id {request['id']})")
            if "error" in item and item["error"] is not None:
                error = item["error"]
                code = error.get("code") if isinstance(error, dict) else None
                message = str(error.get("message", "")) if isinstance(error, dict) else str(error)
                if code in THROTTLE_CODES or "rate limit" in message.lower():
                    raise _Failover(f"throttled: {message} (code {code})", kind="throttled")
                raise RPCResponseError(url, request["method"], error)
            results.append(item["result"])
        return results

    def _state(self, url: str) -> _URLState:
        with _lock:
            return _states.setdefault(url, _URLState())

    def _fail(self, url: str, reason: str, retry_after: float | None) -> None:
        state = self._state(url)
        with _lock:
            state.failures += 1
            delay = min(BACKOFF_BASE * 2 ** (state.failures - 1), BACKOFF_MAX)
            if retry_after is not None:
                delay = max(delay, min(retry_after, CHAIN_ID_BACKOFF))
            state.until = time.monotonic() + delay
            state.last_error = reason

    def _ok(self, url: str) -> None:
        state = self._state(url)
        if state.failures:
            with _lock:
                state.failures, state.until, state.last_error = 0, 0.0, ""


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date: the exponential backoff applies

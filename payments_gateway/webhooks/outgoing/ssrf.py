"""SSRF guard for outgoing webhooks.

A merchant (or anyone holding an API key) chooses the URLs we POST to, so a URL must never let them reach our own
network: private, loopback, link-local, CGNAT, multicast, reserved and unspecified addresses are refused, IPv4
embedded in IPv6 included. The check runs on the address a connection is actually opened to (:class:`GuardedAdapter`
resolves once, validates, and connects to that address while TLS SNI, certificate checks and the Host header keep
the name), so a DNS answer that changes between a check and the connection (DNS rebinding) cannot slip through.

``ALLOW_PRIVATE_WEBHOOK_URLS`` lifts the address check (a shop receiving on localhost in development); plain
``http`` is accepted only with that setting or ``DEBUG``.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

from payments_gateway.conf import gateway_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges Python's ipaddress flags do not all cover (CGNAT is neither "private" nor "global").
_BLOCKED_NETWORKS = [
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT (RFC 6598)
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_URL_VALIDATOR = URLValidator(schemes=["http", "https"])


class UnsafeURLError(ValueError):
    """A webhook URL or the address it resolves to is not allowed."""


def validate_endpoint_url(url: str, *, resolve: bool = True) -> None:
    """Raise :class:`django.core.exceptions.ValidationError` with a clear message if ``url`` is not acceptable.

    Used by the admin form and the API when an endpoint is saved. With ``resolve``, also resolves the host name
    and refuses a name that does not resolve or resolves to a forbidden address (delivery checks again).
    """
    try:
        _URL_VALIDATOR(url)
    except ValidationError:
        raise ValidationError(f"{url!r} is not a valid http(s) URL.", code="invalid") from None
    parts = urlsplit(url)
    if parts.scheme != "https" and not http_allowed():
        raise ValidationError(
            "Webhook URLs must use https (http is accepted only with ALLOW_PRIVATE_WEBHOOK_URLS or DEBUG).",
            code="insecure",
        )
    if private_allowed() or not resolve:
        return
    try:
        resolve_public(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    except UnsafeURLError as exc:
        raise ValidationError(str(exc), code="unsafe") from None


def resolve_public(host: str, port: int) -> list[str]:
    """Resolve ``host`` once; return its addresses if every one is allowed, else raise :class:`UnsafeURLError`.

    All addresses must pass, not just one: a name that mixes a public and a private answer is refused whole.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURLError(f"cannot resolve host {host!r}: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeURLError(f"host {host!r} has no address")
    for address in addresses:
        reason = forbidden_reason(address)
        if reason:
            raise UnsafeURLError(f"host {host!r} resolves to {address}, a {reason} address; webhooks cannot go there")
    return addresses


def forbidden_reason(address: str | IPAddress) -> str | None:
    """Why ``address`` may not receive webhooks (e.g. ``"loopback"``), or None if it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = forbidden_reason(embedded)
            return f"{reason} (embedded in IPv6)" if reason else None
    checks = [
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("CGNAT", ip in _BLOCKED_NETWORKS[0]),
        ("reserved", ip.is_reserved or any(ip in net for net in _BLOCKED_NETWORKS[1:])),
        ("private", ip.is_private),
        ("non-global", not ip.is_global),
    ]
    return next((name for name, hit in checks if hit), None)


def private_allowed() -> bool:
    return gateway_settings.ALLOW_PRIVATE_WEBHOOK_URLS


def http_allowed() -> bool:
    return gateway_settings.ALLOW_PRIVATE_WEBHOOK_URLS or settings.DEBUG


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections refuse forbidden addresses at connect time.

    Mount it on a ``requests.Session`` for ``http://`` and ``https://`` and set ``trust_env = False`` (a proxy
    from the environment would connect on our behalf, unchecked). ``allow_private`` defaults to the setting.
    """

    def __init__(self, *args, allow_private: bool | None = None, **kwargs):
        self.allow_private = private_allowed() if allow_private is None else allow_private
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        attrs = {"allow_private": self.allow_private}
        http_conn = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), attrs)
        https_conn = type("GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), attrs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
        }

    def proxy_manager_for(self, *args, **kwargs):
        raise UnsafeURLError("webhooks are never sent through a proxy (it would connect unchecked)")


class _GuardedConnectionMixin(HTTPConnection):
    """Resolve once, validate every address, then connect to a validated address (never re-resolving).

    ``self.host`` stays the name, so urllib3 still sends it as SNI, checks the certificate against it and uses it
    in the Host header; only the socket goes to the checked IP. Mixed into urllib3's HTTP and HTTPS connections.
    """

    allow_private = False

    def _new_conn(self) -> socket.socket:
        host = self._dns_host
        try:
            if self.allow_private:
                infos = socket.getaddrinfo(host, self.port, type=socket.SOCK_STREAM)
                addresses = [str(info[4][0]) for info in infos]
            else:
                addresses = resolve_public(host, self.port)
        except (UnsafeURLError, socket.gaierror) as exc:
            raise NewConnectionError(self, f"refused: {exc}") from exc
        last_error: OSError | None = None
        for address in addresses:
            try:
                return create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:
                last_error = exc
        if isinstance(last_error, TimeoutError):
            raise ConnectTimeoutError(self, f"connection to {host} timed out") from last_error
        raise NewConnectionError(self, f"Failed to establish a new connection: {last_error}") from last_error

"""SSRF guard: forbidden address classes, URL validation, and the check on the address actually connected to.

DNS is remote, so names are resolved by a resolver the test controls (``socket.getaddrinfo`` patched); the
connections themselves go to real servers on 127.0.0.1.
"""

from __future__ import annotations

import socket

import pytest
from django.core.exceptions import ValidationError

from payments_gateway.events import emit
from payments_gateway.models import WebhookDelivery
from payments_gateway.webhooks.outgoing import ssrf
from payments_gateway.webhooks.outgoing.delivery import deliver_due

from .factories import make_endpoint
from .http_receiver import Receiver, Reply

FORBIDDEN = {
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "127.0.0.1": "loopback",
    "127.8.8.8": "loopback",
    "169.254.169.254": "link-local",
    "100.64.0.1": "CGNAT",
    "100.127.255.254": "CGNAT",
    "224.0.0.1": "multicast",
    "240.0.0.1": "reserved",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "::1": "loopback",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "ff02::1": "multicast",
    "::ffff:127.0.0.1": "loopback (embedded in IPv6)",
    "::ffff:10.0.0.1": "private (embedded in IPv6)",
    "::ffff:100.64.0.1": "CGNAT (embedded in IPv6)",
    "2002:7f00:1::": "loopback (embedded in IPv6)",
    "64:ff9b::a9fe:a9fe": "link-local (embedded in IPv6)",
}
PUBLIC = ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.215.14"]


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN.items())
def test_forbidden_addresses(address, reason):
    assert ssrf.forbidden_reason(address) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert ssrf.forbidden_reason(address) is None


class FakeDNS:
    """Answers names from a table (each answer list used in turn, the last repeating); IP literals pass through."""

    def __init__(self, monkeypatch, **names: list[list[str]]):
        self.names = {name.replace("_", "-") + ".test": answers for name, answers in names.items()}
        self.lookups: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):
            if host not in self.names:
                return real(host, port, *args, **kwargs)  # IP literals: no DNS involved
            self.lookups.append(host)
            answers = self.names[host]
            addresses = answers[min(self.lookups.count(host), len(answers)) - 1]
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _allow(settings, allow: bool, debug: bool = False):
    settings.DEBUG = debug
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "ALLOW_PRIVATE_WEBHOOK_URLS": allow}


def _error(url: str) -> str:
    with pytest.raises(ValidationError) as info:
        ssrf.validate_endpoint_url(url)
    return " ".join(info.value.messages)


def test_validate_endpoint_url(settings, monkeypatch):
    _allow(settings, False)
    FakeDNS(monkeypatch, shop=[["93.184.215.14"]], intranet=[["10.0.0.7"]], mixed=[["93.184.215.14", "10.0.0.7"]])
    ssrf.validate_endpoint_url("https://shop.test/hooks")
    assert "not a valid http(s) URL" in _error("not a url")
    assert "not a valid http(s) URL" in _error("ftp://shop.test/")
    assert "must use https" in _error("http://shop.test/hooks")
    assert "10.0.0.7, a private address" in _error("https://intranet.test/")
    assert "10.0.0.7, a private address" in _error("https://mixed.test/")  # one bad answer is enough
    assert "127.0.0.1, a loopback address" in _error("https://127.0.0.1/")
    assert "loopback (embedded in IPv6)" in _error("https://[::ffff:127.0.0.1]/")
    assert "cannot resolve host" in _error("https://nowhere.invalid/")


def test_http_and_private_allowed_by_the_setting_http_alone_by_debug(settings, monkeypatch):
    FakeDNS(monkeypatch, intranet=[["10.0.0.7"]])
    _allow(settings, True)
    ssrf.validate_endpoint_url("http://intranet.test/")
    _allow(settings, False, debug=True)
    ssrf.validate_endpoint_url("http://shop.example/", resolve=False)
    assert "private address" in _error("http://intranet.test/")


@pytest.mark.django_db
def test_delivery_refuses_a_name_that_rebinds_to_loopback_after_validation(settings, monkeypatch):
    with Receiver(Reply(200)) as receiver:
        _allow(settings, False, debug=True)  # DEBUG: http allowed, private addresses still refused
        dns = FakeDNS(monkeypatch, rebind=[["93.184.215.14"], ["127.0.0.1"]])
        url = receiver.url(host="rebind.test")
        ssrf.validate_endpoint_url(url)  # at save time the name looks public
        make_endpoint(url)
        emit("payment.completed", {})
        deliver_due()

    assert receiver.requests == []
    delivery = WebhookDelivery.objects.get()
    assert "127.0.0.1, a loopback address" in delivery.last_error
    assert delivery.attempt_log.get().error == delivery.last_error
    assert dns.lookups == ["rebind.test", "rebind.test"]


@pytest.mark.django_db
def test_delivery_connects_to_the_address_it_resolved_once_and_keeps_the_name(settings, monkeypatch):
    with Receiver(Reply(200)) as receiver:
        _allow(settings, True)
        # A second lookup would answer an unroutable address; the connection must use the first answer.
        dns = FakeDNS(monkeypatch, shop=[["127.0.0.1"], ["10.255.255.1"]])
        make_endpoint(receiver.url(host="shop.test"))
        emit("payment.completed", {})
        deliver_due()

    (request,) = receiver.requests
    assert request.headers["host"] == f"shop.test:{receiver.port}"
    assert dns.lookups == ["shop.test"]
    assert WebhookDelivery.objects.get().last_status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]"])
def test_delivery_refuses_private_literals(settings, host):
    with Receiver(Reply(200)) as receiver:
        _allow(settings, False, debug=True)
        make_endpoint(f"http://{host}:{receiver.port}/hook")
        emit("payment.completed", {})
        deliver_due()
    assert receiver.requests == []
    assert "loopback" in WebhookDelivery.objects.get().last_error


def test_no_proxy_from_the_environment(settings, monkeypatch):
    from payments_gateway.webhooks.outgoing.delivery import http_session

    assert http_session().trust_env is False

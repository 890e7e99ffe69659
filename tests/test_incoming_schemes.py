"""Signature schemes (verification on the raw body) and validation of ``WEBHOOK_SOURCES``."""

import base64
import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from standardwebhooks import Webhook

from payments_gateway.conf import gateway_settings
from payments_gateway.webhooks.incoming.handlers import FunctionHandler, TransactionNoticeHandler
from payments_gateway.webhooks.incoming.schemes import HmacSha256Scheme, SignatureError, StandardWebhooksScheme
from payments_gateway.webhooks.incoming.sources import configured_sources

from .incoming_helpers import (
    GITHUB_SECRET,
    PARTNER_OLD_SECRET,
    PARTNER_SECRET,
    SOURCES,
    hmac_hex,
    standard_headers,
)

GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
NOW = 1_800_000_000


def github_scheme(**options):
    return HmacSha256Scheme(["old-secret", GITHUB_SECRET], **options)


# --- HMAC-SHA256 hex ------------------------------------------------------------------------------------


def test_github_test_vector_verifies_with_and_without_prefix_in_any_case():
    scheme = github_scheme()
    scheme.verify(GITHUB_BODY, {"x-hub-signature-256": GITHUB_SIGNATURE})
    scheme.verify(GITHUB_BODY, {"x-hub-signature-256": GITHUB_SIGNATURE.removeprefix("sha256=")})
    scheme.verify(GITHUB_BODY, {"x-hub-signature-256": GITHUB_SIGNATURE.upper().replace("SHA256=", "sha256=")})


@pytest.mark.parametrize(
    ("body", "signature", "status"),
    [
        (b"Hello, World?", GITHUB_SIGNATURE, 401),  # body changed by one byte
        (GITHUB_BODY, GITHUB_SIGNATURE[:-1] + "f", 401),  # signature changed by one digit
        (GITHUB_BODY, "sha256=" + hmac_hex("guess", GITHUB_BODY), 401),  # signed with another secret
        (GITHUB_BODY, "sha1=" + "0" * 40, 400),  # not a SHA-256 hex digest
        (GITHUB_BODY, "", 400),  # empty
    ],
)
def test_hmac_refuses_any_mismatch(body, signature, status):
    with pytest.raises(SignatureError) as exc:
        github_scheme().verify(body, {"x-hub-signature-256": signature})
    assert exc.value.status == status


def test_hmac_missing_header_is_400_naming_it():
    with pytest.raises(SignatureError, match="Missing header X-Hub-Signature-256") as exc:
        github_scheme().verify(GITHUB_BODY, {})
    assert exc.value.status == 400


def test_hmac_timestamp_header_is_signed_and_within_tolerance_both_ways():
    scheme = HmacSha256Scheme(["k"], timestamp_header="X-Timestamp", signature_header="X-Sig", tolerance=300)

    def headers(ts):
        return {"x-timestamp": str(ts), "x-sig": hmac_hex("k", f"{ts}.".encode() + b"{}")}

    scheme.verify(b"{}", headers(NOW - 300), now=NOW)
    scheme.verify(b"{}", headers(NOW + 300), now=NOW)
    for stale in (NOW - 301, NOW + 301):
        with pytest.raises(SignatureError, match="too") as exc:
            scheme.verify(b"{}", headers(stale), now=NOW)
        assert exc.value.status == 401
    # A replay with a fresh timestamp but the old signature does not verify: the timestamp is signed.
    replay = headers(NOW - 3600) | {"x-timestamp": str(NOW)}
    with pytest.raises(SignatureError, match="does not match"):
        scheme.verify(b"{}", replay, now=NOW)
    with pytest.raises(SignatureError, match="Missing header X-Timestamp"):
        scheme.verify(b"{}", {"x-sig": hmac_hex("k", b"{}")}, now=NOW)


# --- Standard Webhooks -----------------------------------------------------------------------------------


def test_standard_accepts_the_official_librarys_signature_with_current_and_previous_secret():
    scheme = StandardWebhooksScheme([PARTNER_SECRET, PARTNER_OLD_SECRET])
    body = b'{"id": "evt_1", "type": "x"}'
    scheme.verify(body, standard_headers(body, PARTNER_SECRET, at=NOW), now=NOW)
    scheme.verify(body, standard_headers(body, PARTNER_OLD_SECRET, at=NOW), now=NOW)
    # During a sender's rotation, several signatures are sent space-separated; one match is enough.
    other = standard_headers(body, "whsec_" + base64.b64encode(b"x" * 32).decode(), at=NOW)
    mine = standard_headers(body, PARTNER_SECRET, at=NOW)
    both = mine | {"webhook-signature": f"v1a,abc {other['webhook-signature']} {mine['webhook-signature']}"}
    scheme.verify(body, both, now=NOW)


def test_standard_signature_we_accept_is_accepted_by_the_official_library():
    body = b'{"id": "evt_2", "type": "x"}'
    headers = standard_headers(body, PARTNER_SECRET)
    StandardWebhooksScheme([PARTNER_SECRET]).verify(body, headers)
    assert Webhook(PARTNER_SECRET).verify(body, headers) == {"id": "evt_2", "type": "x"}


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"webhook-signature": None}, 400, "Missing header"),
        ({"webhook-id": None}, 400, "Missing header"),
        ({"webhook-timestamp": "soon"}, 400, "Unix time"),
        ({"webhook-timestamp": str(NOW - 301)}, 401, "too old"),
        ({"webhook-timestamp": str(NOW + 301)}, 401, "too far in the future"),
        ({"webhook-id": "msg_2"}, 401, "No webhook-signature matches"),  # the id is signed too
        ({"webhook-signature": "v1,not base64!"}, 401, "No webhook-signature matches"),
        ({"webhook-signature": "v2,AAAA"}, 401, "No webhook-signature matches"),
    ],
)
def test_standard_refuses(change, status, message):
    body = b'{"id": "evt_1"}'
    headers = standard_headers(body, PARTNER_SECRET, at=NOW) | change
    headers = {k: v for k, v in headers.items() if v is not None}
    with pytest.raises(SignatureError, match=message) as exc:
        StandardWebhooksScheme([PARTNER_SECRET]).verify(body, headers, now=NOW)
    assert exc.value.status == status


def test_standard_refuses_a_body_changed_after_signing_and_a_wrong_secret():
    body = b'{"id": "evt_1", "amount": 1}'
    headers = standard_headers(body, PARTNER_SECRET, at=NOW)
    scheme = StandardWebhooksScheme([PARTNER_SECRET])
    with pytest.raises(SignatureError):
        scheme.verify(body.replace(b"1}", b"9}"), headers, now=NOW)
    with pytest.raises(SignatureError):
        StandardWebhooksScheme([PARTNER_OLD_SECRET]).verify(body, headers, now=NOW)


def test_default_tolerance_is_300_seconds():
    body = b"{}"
    scheme = StandardWebhooksScheme([PARTNER_SECRET])
    scheme.verify(body, standard_headers(body, at=time.time() - 290))
    with pytest.raises(SignatureError, match="too old"):
        scheme.verify(body, standard_headers(body, at=time.time() - 310))


# --- WEBHOOK_SOURCES validation ------------------------------------------------------------------------


def sources_setting(sources):
    from django.conf import settings

    return override_settings(PAYMENTS_GATEWAY={**settings.PAYMENTS_GATEWAY, "WEBHOOK_SOURCES": sources})


def test_valid_sources_are_parsed_with_their_schemes_and_handlers():
    with sources_setting(SOURCES | {"transactions": {"scheme": "standard", "secrets": [PARTNER_SECRET]}}):
        sources = configured_sources()
    assert isinstance(sources["partner"].scheme, StandardWebhooksScheme)
    assert isinstance(sources["github"].scheme, HmacSha256Scheme)
    assert sources["stamped"].scheme.settings["timestamp_header"] == "X-Timestamp"
    assert isinstance(sources["partner"].handler, FunctionHandler)
    # The built-in source needs no handler: it defaults to the on-chain check.
    assert isinstance(sources["transactions"].handler, TransactionNoticeHandler)


KEY = "PAYMENTS_GATEWAY['WEBHOOK_SOURCES']['s']"
OK = {"scheme": "standard", "secrets": [PARTNER_SECRET], "handler": "tests.incoming_helpers.record"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (OK | {"scheme": "md5"}, f"{KEY}['scheme'] must be one of ['hmac-sha256', 'standard']"),
        (OK | {"secrets": PARTNER_SECRET}, f"{KEY}['secrets'] must be a non-empty list"),
        (OK | {"secrets": []}, f"{KEY}['secrets'] must be a non-empty list"),
        (OK | {"secrets": [PARTNER_SECRET, ""]}, f"{KEY}['secrets'][1] must be a non-empty string"),
        (OK | {"secrets": ["whsec_***"]}, f"{KEY}['secrets'][0] is malformed"),
        (OK | {"secrets": ["whsec_c2hvcnQ="]}, f"{KEY}['secrets'][0] is malformed: .* at least 16 bytes"),
        (OK | {"tolerance": "5m"}, f"{KEY}['tolerance'] must be a whole number of seconds"),
        (OK | {"tolerance": 0}, f"{KEY}['tolerance'] must be a whole number of seconds"),
        (OK | {"id_header": "X Id"}, f"{KEY}['id_header'] must be an HTTP header name"),
        (OK | {"signature_header": "X-Sig"}, f"{KEY} has unknown keys ['signature_header']"),
        (OK | {"handler": None}, f"{KEY}['handler'] is not set"),
        (OK | {"handler": "tests.nowhere.handler"}, f"{KEY}['handler']: cannot import 'tests.nowhere.handler'"),
        (OK | {"handler": "tests.incoming_helpers.SOURCES"}, f"{KEY}['handler']: .* neither"),
        (
            OK | {"scheme": "hmac-sha256", "secrets": ["k"], "timestamp_header": "X_T!"},
            f"{KEY}['timestamp_header'] must be an HTTP header name",
        ),
        (OK | {"scheme": "hmac-sha256", "secrets": ["k"], "sign_timestamp": "yes"}, f"{KEY}['sign_timestamp']"),
        ("standard", f"{KEY} must be a dict"),
    ],
)
def test_bad_source_settings_name_the_key(spec, message):
    with sources_setting({"s": spec}), pytest.raises(ImproperlyConfigured, match=message.replace("[", "\\[")):
        configured_sources()


def test_bad_source_name_and_non_dict_are_refused():
    with sources_setting({"Bad Name": OK}), pytest.raises(ImproperlyConfigured, match="lowercase letters"):
        configured_sources()
    with sources_setting(["partner"]), pytest.raises(ImproperlyConfigured, match="WEBHOOK_SOURCES'\\] must be"):
        gateway_settings.WEBHOOK_SOURCES  # noqa: B018


def test_manage_py_check_reports_a_bad_source():
    from payments_gateway.checks import check_settings

    with sources_setting({"s": OK | {"secrets": []}}):
        errors = check_settings()
    assert any("['secrets'] must be a non-empty list" in e.msg for e in errors)


def test_the_settings_object_imports_no_handler_sources_are_built_lazily_and_rebuilt_on_change():
    # Reading the settings never imports a handler: a broken one is found when the sources are built (first
    # request, manage.py check), by the sources module.
    with sources_setting({"s": OK | {"handler": "tests.nowhere.handler"}}):
        assert gateway_settings.WEBHOOK_SOURCES["s"]["handler"] == "tests.nowhere.handler"
        with pytest.raises(ImproperlyConfigured, match="cannot import 'tests.nowhere.handler'"):
            configured_sources()
    with sources_setting({"s": OK}):
        first = configured_sources()
        assert configured_sources() is first  # cached
    with sources_setting({"s": OK | {"tolerance": 60}}):
        assert configured_sources()["s"].scheme.tolerance == 60  # rebuilt after the settings changed

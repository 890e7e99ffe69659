"""Fuzzing the verifier and the view: arbitrary bodies and headers never cause a 500 (or any exception
other than a refusal), and no event is ever stored or processed without a valid signature."""

import base64
import json
import time
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st

from payments_gateway.models import WebhookEvent
from payments_gateway.webhooks.incoming.schemes import HmacSha256Scheme, SignatureError, StandardWebhooksScheme

from . import incoming_helpers as h

RELEVANT = ["webhook-id", "webhook-timestamp", "webhook-signature", "x-hub-signature-256", "x-timestamp",
            "x-signature", "x-github-delivery", "x-github-event"]  # fmt: skip
latin1 = st.text(alphabet=st.characters(max_codepoint=255), max_size=120)
header_value = st.one_of(
    latin1,
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.just(str(int(time.time()))),
    st.binary(max_size=40).map(lambda b: "v1," + base64.b64encode(b).decode()),
    st.binary(min_size=32, max_size=32).map(lambda b: "sha256=" + b.hex()),
    st.lists(st.binary(max_size=40).map(lambda b: f"v1,{base64.b64encode(b).decode()}"), max_size=4).map(" ".join),
)
header_name = st.one_of(st.sampled_from(RELEVANT), st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,30}\Z"))
headers_strategy = st.dictionaries(header_name, header_value, max_size=8)
json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
).map(lambda doc: json.dumps(doc).encode())
envelopes = st.builds(h.envelope, st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
bodies = st.one_of(st.binary(max_size=2048), json_bodies, envelopes, envelopes)
source_names = st.one_of(
    st.sampled_from(["partner", "partner", "partner", "github", "stamped", "nobody"]),
    st.sampled_from(["partner", "partner", "partner", "github", "stamped", "nobody"]),
    st.text(min_size=1, max_size=70).map(lambda name: quote(name, safe="")),
)

SCHEMES = [
    StandardWebhooksScheme([h.PARTNER_SECRET, h.PARTNER_OLD_SECRET]),
    HmacSha256Scheme([h.GITHUB_SECRET]),
    HmacSha256Scheme([h.STAMPED_SECRET], signature_header="X-Signature", timestamp_header="X-Timestamp"),
]


@settings(max_examples=500, deadline=None)
@given(body=bodies, headers=headers_strategy, scheme=st.sampled_from(SCHEMES))
def test_verifier_only_ever_refuses_unsigned_input(body, headers, scheme):
    headers = {k.lower(): v for k, v in headers.items()}
    with pytest.raises(SignatureError) as exc:
        scheme.verify(body, headers)
    assert exc.value.status in (400, 401) and exc.value.message


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=2048), msg_id=st.from_regex(r"\A[!-~]{1,60}\Z"), flip=st.integers(min_value=0))
def test_verifier_accepts_exactly_the_signed_body(body, msg_id, flip):
    scheme = SCHEMES[0]
    headers = h.standard_headers(body, msg_id=msg_id)
    scheme.verify(body, headers)
    if body:
        index = flip % len(body)
        tampered = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
        with pytest.raises(SignatureError):
            scheme.verify(tampered, headers)


@pytest.mark.django_db
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    source=source_names,
    body=bodies,
    headers=headers_strategy,
    content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain"]) | latin1,
    sign=st.sampled_from(["no", "yes", "tampered"]),
)
def test_view_never_500_and_never_processes_without_a_valid_signature(
    client, webhook_sources, sync_tasks, django_capture_on_commit_callbacks, source, body, headers, content_type, sign
):
    h.CALLS.clear()  # each example starts with no handler call recorded
    stored_before = set(WebhookEvent.objects.values_list("pk", flat=True))
    if sign != "no" and source == "partner":
        headers = headers | h.standard_headers(body, msg_id="msg_fuzz")
        if sign == "tampered":
            headers["webhook-id"] = "msg_other"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/webhooks/{source}/", data=body, content_type=content_type, headers=headers)

    note_event(f"answer {response.status_code}")
    assert response.status_code < 500
    assert response.status_code in (200, 202, 400, 401, 404, 413)
    new_events = WebhookEvent.objects.exclude(pk__in=stored_before)
    if not (sign == "yes" and source == "partner"):
        assert response.status_code >= 400
        assert not new_events.exists() and h.CALLS == []
    elif response.status_code == 202:
        event = new_events.get()
        assert bytes(event.body) == body
        assert [("partner", event.event_id)] == h.CALLS
    else:
        assert h.CALLS == []


def acceptable(body: bytes) -> bool:
    """What the receiver must accept: a JSON object with printable, non-empty string id and type."""
    try:
        doc = json.loads(body.decode())
    except ValueError:
        return False
    fields = [doc.get("id"), doc.get("type")] if isinstance(doc, dict) else [None]
    return (
        all(printable(v) or type(v) is int for v in fields)
        and len(str(doc["id"])) <= 200
        and (len(str(doc["type"])) <= 100)
    )


def printable(value) -> bool:
    if not isinstance(value, str) or not value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.django_db
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, content_type=st.sampled_from(["application/json", "application/json; charset=utf-8"]))
def test_signed_bodies_are_stored_exactly_when_they_are_well_formed_events(
    client, webhook_sources, django_capture_on_commit_callbacks, body, content_type
):
    WebhookEvent.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/webhooks/partner/", data=body, content_type=content_type,
                               headers=h.standard_headers(body))  # fmt: skip
    note_event(f"answer {response.status_code}")
    if acceptable(body):
        assert response.status_code == 202, response.content
        assert bytes(WebhookEvent.objects.get().body) == body
    else:
        assert response.status_code == 400, response.content
        assert not WebhookEvent.objects.exists()

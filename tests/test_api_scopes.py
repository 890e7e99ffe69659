"""API keys with scopes (403 naming the missing one, read-only keys), ``last_used`` written at most once a minute,
and ``Idempotency-Key`` on every POST of the API (malformed keys refused)."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from payments_gateway.api import urls as api_urls
from payments_gateway.api.auth import touch
from payments_gateway.models import APIKey, CheckoutSession, Customer, Refund, WebhookEndpoint
from payments_gateway.models.apikeys import SCOPES

from .factories import api_client, make_endpoint, make_event, make_session

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway", "public_dns")]

BODY = {"amount": "19.99", "currency": "USD", "asset": "USDC", "network": "test"}


def post(client, path, body=None, **headers):
    return client.post(path, json.dumps(body or {}), content_type="application/json", headers=headers)


def key_with(*scopes):
    return api_client(APIKey.objects.create_key("scoped", list(scopes))[1])


# --- scopes -----------------------------------------------------------------------------------------------------


WRITES = [
    ("/api/v1/sessions/", BODY, "sessions:write"),
    ("/api/v1/customers/", {"email": "a@example.com"}, "sessions:write"),
    ("/api/v1/refunds/", {"session": "00000000-0000-0000-0000-000000000000"}, "refunds:write"),
    ("/api/v1/webhook-endpoints/", {"url": "https://shop.example/hooks"}, "webhooks:write"),
    ("/api/v1/subscriptions/00000000-0000-0000-0000-000000000000/cancel/", {}, "subscriptions:write"),
    ("/api/v1/transfers/1/resolve/", {"action": "dismiss", "note": "x"}, "transfers:write"),
    ("/api/v1/events/evt_x/redeliver/", {}, "webhooks:write"),
]


@pytest.mark.parametrize(("path", "body", "scope"), WRITES)
def test_a_read_only_key_gets_403_naming_the_missing_scope_and_writes_nothing(path, body, scope):
    client = key_with("read")
    response = post(client, path, body)
    assert response.status_code == 403
    error = response.json()["error"]
    assert (
        error["code"] == "missing_scope" and f"'{scope}'" in error["message"] and "its scopes: read" in error["message"]
    )
    assert not CheckoutSession.objects.exists() and not Customer.objects.exists()
    assert not WebhookEndpoint.objects.exists() and not Refund.objects.exists()


def test_a_read_only_key_reads_everything():
    session = make_session()
    client = key_with("read")
    for path in ["/api/v1/sessions/", "/api/v1/customers/", "/api/v1/refunds/", "/api/v1/transfers/",
                 "/api/v1/subscriptions/", "/api/v1/events/", "/api/v1/webhook-endpoints/",
                 f"/api/v1/transactions/{session.uuid}/status/"]:  # fmt: skip
        expected = 405 if path == "/api/v1/sessions/" else 200  # sessions are not listed
        assert client.get(path).status_code == expected, path
    assert client.get(f"/api/v1/sessions/{session.uuid}/").status_code == 200


def test_a_key_with_a_write_scope_only_writes_there_and_cannot_read():
    client = key_with("sessions:write")
    created = post(client, "/api/v1/sessions/", BODY)
    assert created.status_code == 201
    response = client.get(f"/api/v1/sessions/{created.json()['uuid']}/")
    assert response.status_code == 403 and "'read'" in response.json()["error"]["message"]
    assert post(client, "/api/v1/webhook-endpoints/", {"url": "https://shop.example/h"}).status_code == 403


def test_every_api_view_declares_its_write_scope_and_every_post_honours_idempotency_keys():
    checked = []
    for pattern in api_urls.router.urls:
        view = pattern.callback
        cls, actions = view.cls, getattr(view, "actions", {})
        assert getattr(cls, "write_scope", None) in SCOPES, cls
        if "post" in actions:
            handler = getattr(cls, actions["post"])
            assert getattr(handler, "idempotent", False), f"{cls.__name__}.{actions['post']} ignores Idempotency-Key"
            checked.append(f"{cls.__name__}.{actions['post']}")
    expected = {"SessionViewSet.create", "SessionViewSet.expire", "RefundViewSet.create", "TransferViewSet.resolve",
                "SubscriptionViewSet.cancel", "WebhookEndpointViewSet.create", "EventViewSet.redeliver"}  # fmt: skip
    assert expected <= set(checked)


# --- last_used ----------------------------------------------------------------------------------------------


def key_writes(queries) -> int:
    table = APIKey._meta.db_table
    return sum(1 for q in queries if q["sql"].lstrip().upper().startswith("UPDATE") and table in q["sql"])


def test_last_used_is_written_once_a_minute_not_once_a_request(api, api_key):
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert api.get("/api/v1/customers/").status_code == 200
    assert key_writes(queries.captured_queries) == 1
    first = APIKey.objects.get().last_used
    assert first is not None

    APIKey.objects.update(last_used=timezone.now() - timedelta(seconds=61))
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            api.get("/api/v1/customers/")
    assert key_writes(queries.captured_queries) == 1 and APIKey.objects.get().last_used > first


def test_last_used_is_a_conditional_update_so_racing_processes_write_it_once(api_key):
    key, _ = api_key
    stale_copy = APIKey.objects.get(pk=key.pk)  # what a second process read before the first one wrote
    touch(APIKey.objects.get(pk=key.pk))
    written = APIKey.objects.get(pk=key.pk).last_used
    touch(stale_copy)  # its UPDATE finds last_used fresh: it changes nothing
    assert APIKey.objects.get(pk=key.pk).last_used == written


# --- the command and the admin ---------------------------------------------------------------------------------


def run(*args) -> str:
    out = StringIO()
    call_command("payments_gateway_apikey", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_command_creates_keys_with_scopes_and_lists_them():
    raw = run("create", "reporting", "--scope", "read", "--scope", "refunds:write").strip()
    key = APIKey.objects.get()
    assert key.scopes == ["read", "refunds:write"]
    assert api_client(raw).get("/api/v1/customers/").status_code == 200
    assert post(api_client(raw), "/api/v1/sessions/", BODY).status_code == 403
    assert "scopes read,refunds:write" in run("list") and "last used" in run("list")
    run("create", "everything")
    assert APIKey.objects.get(name="everything").scopes == list(SCOPES)


def test_an_unknown_scope_is_a_clear_error_listing_the_valid_ones():
    with pytest.raises(CommandError, match=r"Unknown scope 'sessions:read'; valid scopes: read, sessions:write, "):
        run("create", "shop", "--scope", "read", "--scope", "sessions:read")
    assert not APIKey.objects.exists()


def test_the_admin_lists_scopes_and_changes_them(admin_client):
    key, raw = APIKey.objects.create_key("shop")
    listing = admin_client.get(reverse("admin:payments_gateway_apikey_changelist")).content.decode()
    assert "read, sessions:write, refunds:write" in listing
    change = reverse("admin:payments_gateway_apikey_change", args=[key.pk])
    response = admin_client.post(change, {"name": "shop", "scopes": ["read"]})
    assert response.status_code == 302
    assert APIKey.objects.get().scopes == ["read"]
    assert post(api_client(raw), "/api/v1/sessions/", BODY).status_code == 403
    response = admin_client.post(
        reverse("admin:payments_gateway_apikey_changelist"), {"action": "revoke", "_selected_action": [key.pk]}
    )
    assert api_client(raw).get("/api/v1/customers/").status_code == 401


# --- Idempotency-Key on every POST ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "rule"),
    [("", "must not be empty"), ("   ", "must not be empty"), ("k" * 256, "at most 255 characters"),
     ("abc\x01", "printable ASCII"), ("caf\u00e9", "printable ASCII")],
)  # fmt: skip
def test_a_malformed_idempotency_key_is_a_clear_400_and_writes_nothing(api, key, rule):
    response = post(api, "/api/v1/sessions/", BODY, **{"Idempotency-Key": key})
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"] and rule in response.json()["error"]["message"]
    assert not CheckoutSession.objects.exists()


def test_creating_a_webhook_endpoint_twice_with_one_key_creates_one_and_replays_its_secret(api):
    first = post(api, "/api/v1/webhook-endpoints/", {"url": "https://shop.example/h"}, **{"Idempotency-Key": "e1"})
    second = post(api, "/api/v1/webhook-endpoints/", {"url": "https://shop.example/h"}, **{"Idempotency-Key": "e1"})
    assert first.status_code == second.status_code == 201 and second["Idempotent-Replayed"] == "true"
    assert first.json() == second.json() and WebhookEndpoint.objects.count() == 1


def test_redeliver_and_expire_honour_the_key(api):
    endpoint = make_endpoint()
    event = make_event()
    body = {"endpoint": str(endpoint.uuid)}
    first = post(api, f"/api/v1/events/{event.id}/redeliver/", body, **{"Idempotency-Key": "r1"})
    again = post(api, f"/api/v1/events/{event.id}/redeliver/", body, **{"Idempotency-Key": "r1"})
    assert first.status_code == again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert event.deliveries.count() == 1 and event.deliveries.get().attempts == 0

    session = make_session()
    expired = post(api, f"/api/v1/sessions/{session.uuid}/expire/", **{"Idempotency-Key": "x1"})
    replay = post(api, f"/api/v1/sessions/{session.uuid}/expire/", **{"Idempotency-Key": "x1"})
    assert expired.status_code == replay.status_code == 200 and replay.json() == expired.json()
    assert replay["Idempotent-Replayed"] == "true"


@pytest.mark.django_db(transaction=True)
def test_keys_made_before_scopes_existed_keep_every_scope_after_the_migration():
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("payments_gateway", "0015_subscriptions")], [("payments_gateway", "0016_apikey_scopes")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_key = executor.loader.project_state(before).apps.get_model("payments_gateway", "APIKey")
    old_key.objects.create(name="old", prefix="pgk_old12345", hashed_key="0" * 64)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert APIKey.objects.get(name="old").scopes == list(SCOPES)

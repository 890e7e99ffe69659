"""Every error under ``/api/v1/`` is JSON in the API's shape, ``{"error": {"status", "code", "message"}}``: an oversize
body, a POST to a path that is no endpoint (which met the CSRF failure page), a wrong method, a browser's
``Accept: text/html``."""

from __future__ import annotations

import pytest
from django.test import Client

from payments_gateway.models import APIKey, CheckoutSession, IdempotencyKey, Order

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]

FIVE_MB = b'{"amount": "' + b"1" * (5 * 1024 * 1024) + b'"}'
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def client():
    # As a browser or a script would meet it: CSRF checks on, as in production.
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def auth():
    return {"Authorization": f"Bearer {APIKey.objects.create_key('shop')[1]}"}


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json", response.content[:300]
    error = response.json()["error"]
    assert error["status"] == status and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


@pytest.mark.parametrize("idempotency", [{}, {"Idempotency-Key": "k1"}])
def test_a_body_over_djangos_upload_limit_is_a_json_400_and_writes_nothing(client, auth, settings, idempotency):
    response = client.post("/api/v1/sessions/", FIVE_MB, content_type="application/json", headers=auth | idempotency)
    error = assert_json_error(response, 400, "request_too_large")
    assert f"over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes" in error["message"]
    assert not CheckoutSession.objects.exists() and not Order.objects.exists()
    assert not IdempotencyKey.objects.exists()  # the key is free for the corrected request


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_a_write_to_a_path_that_is_no_endpoint_is_a_json_404_not_the_csrf_page(client, auth, method):
    response = getattr(client, method)("/api/v1/nope/", b"{}", content_type="application/json", headers=auth)
    assert_json_error(response, 404, "not_found")


def test_an_unknown_path_is_a_json_404(client):
    assert_json_error(client.get("/api/v1/nope/"), 404, "not_found")
    assert_json_error(client.get("/api/v1/", headers=BROWSER), 404, "not_found")


def test_a_missing_trailing_slash_is_a_json_404_that_names_the_endpoint(client, auth):
    response = client.post("/api/v1/sessions", b"{}", content_type="application/json", headers=auth)
    error = assert_json_error(response, 404, "not_found")
    assert "Did you mean /api/v1/sessions/ (with the trailing slash)?" in error["message"]


def test_a_wrong_method_is_a_json_405_with_allow(client, auth):
    response = client.put("/api/v1/sessions/", b"{}", content_type="application/json", headers=auth)
    assert_json_error(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]
    # The schema view too (it answered YAML: "detail: ...").
    assert_json_error(client.post("/api/v1/schema/", b"{}", content_type="application/json"), 405)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/sessions/", 401),  # no key
        ("/api/v1/sessions/00000000-0000-0000-0000-000000000000/", 401),
    ],
)
def test_errors_are_json_even_when_a_browser_asks_for_html(client, path, status):
    assert_json_error(client.get(path, headers=BROWSER), status)


def test_errors_are_json_for_a_browser_with_a_key(client, auth):
    # A list of sessions does not exist (405): the browsable API answered this one in HTML.
    assert_json_error(client.get("/api/v1/sessions/", headers=auth | BROWSER), 405)
    assert_json_error(client.get("/api/v1/sessions/00000000-0000-0000-0000-000000000000/", headers=auth | BROWSER), 404)

"""``payments_gateway_apikey create|list|revoke``: the key is printed once, works, and stops working."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from payments_gateway.models import APIKey

from .factories import api_client

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("payments_gateway_apikey", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_list_revoke():
    raw = run("create", "shop backend").strip()
    key = APIKey.objects.get()
    assert raw.startswith("pgk_") and raw.startswith(key.prefix) and raw not in key.hashed_key
    client = api_client(raw)
    assert client.get("/api/v1/customers/").status_code == 200

    listing = run("list")
    assert key.prefix in listing and "shop backend" in listing and "active" in listing and raw not in listing

    assert run("revoke", key.prefix) == f"Revoked API key {key.pk} (shop backend).\n"
    assert client.get("/api/v1/customers/").status_code == 401
    assert "already revoked" in run("revoke", str(key.pk))


def test_bad_input_is_a_command_error():
    with pytest.raises(CommandError, match="No API key with prefix or id 'pgk_nope'"):
        run("revoke", "pgk_nope")
    with pytest.raises(CommandError, match="1 to 100 characters"):
        run("create", " ")
    assert not APIKey.objects.exists()

"""Creating a checkout session through the API is one commit: the Idempotency-Key record, the order, the address,
the quote, the session and its event together (issue 15). Its QR code is drawn only when asked for."""

import contextlib
import json

import pytest
from django.db import connection

from payments_gateway.models import APIKey, CheckoutSession, Event, IdempotencyKey, Order

from .factories import api_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("test_gateway")]

BODY = {"amount": "19.99", "currency": "USD", "asset": "USDC", "network": "test"}
WRITES = ("INSERT", "UPDATE", "DELETE")


class Commits:
    """What reaches the database's disk, counted on the real connection: each COMMIT of a transaction, and each
    write made outside any transaction (autocommit: a commit of its own). Savepoints are counted too."""

    def __init__(self) -> None:
        self.commits = 0
        self.autocommit_writes: list[str] = []
        self.savepoints = 0
        self.statements: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        verb = sql.lstrip().split(" ", 1)[0].upper()
        self.statements.append(sql)
        if verb == "SAVEPOINT":
            self.savepoints += 1
        elif verb in WRITES and not connection.in_atomic_block:
            self.autocommit_writes.append(sql)
        return execute(sql, params, many, context)

    @property
    def total(self) -> int:
        return self.commits + len(self.autocommit_writes)


@contextlib.contextmanager
def counting():
    found = Commits()
    real_commit = connection.commit

    def commit():
        found.commits += 1
        real_commit()

    connection.commit = commit  # what django.db.transaction.Atomic calls on leaving the outermost block
    try:
        with connection.execute_wrapper(found):
            yield found
    finally:
        del connection.commit


def post(client, path, body, **headers):
    return client.post(path, json.dumps(body), content_type="application/json", headers=headers)


@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": "one-commit"}])
def test_creating_a_session_is_one_commit(headers):
    client = api_client(APIKey.objects.create_key("shop")[1])
    # The key's first use writes last_used (then not again within a minute); the network's first address creates
    # its counter row (a savepoint, once): both happen before, as on a server that is running.
    assert post(client, "/api/v1/sessions/", BODY).status_code == 201
    with counting() as db:
        response = post(client, "/api/v1/sessions/", BODY, **headers)
    assert response.status_code == 201
    assert db.total == 1, (db.commits, db.autocommit_writes)
    # Inside the Idempotency-Key's transaction, create_session's own atomic block is a savepoint.
    assert db.savepoints == (1 if headers else 0), "\n".join(s[:150] for s in db.statements)
    # No page can be open for a session that did not exist: creating one wakes nobody (no NOTIFY on PostgreSQL).
    assert not [s for s in db.statements if "pg_notify" in s]
    assert CheckoutSession.objects.count() == Order.objects.count() == 2
    assert Event.objects.filter(type="payment.created").count() == 2
    assert IdempotencyKey.objects.count() == (1 if headers else 0)
    # Retried with the same key: a read, nothing written.
    if headers:
        with counting() as db:
            again = post(client, "/api/v1/sessions/", BODY, **headers)
        assert again.json()["uuid"] == response.json()["uuid"] and db.autocommit_writes == []
        assert CheckoutSession.objects.count() == 2


def test_the_qr_code_is_drawn_only_when_asked_for():
    client = api_client(APIKey.objects.create_key("shop")[1])
    plain = post(client, "/api/v1/sessions/", BODY).json()
    assert plain["qr_code"] is None and plain["payment_uri"].startswith("ethereum:")
    with_qr = client.get(f"/api/v1/sessions/{plain['uuid']}/?include=qr_code").json()
    assert with_qr["qr_code"].startswith("data:image/png;base64,")
    assert client.get(f"/api/v1/sessions/{plain['uuid']}/").json()["qr_code"] is None
    bad = client.get(f"/api/v1/sessions/{plain['uuid']}/?include=qr")
    assert bad.status_code == 400 and "what can be included: qr_code" in bad.json()["error"]["message"]
    refused = post(client, "/api/v1/sessions/?include=everything", BODY)
    assert refused.status_code == 400 and CheckoutSession.objects.count() == 1  # nothing written

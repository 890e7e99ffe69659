"""Several processes write to one database at once (web, django-q2 cluster, scanner in ``make demo``).

On SQLite this holds only with ``payments_gateway.db.SQLITE_OPTIONS`` (WAL, a busy timeout and IMMEDIATE
transactions): without them, two read-then-write transactions deadlock and one fails with "database is
locked". On PostgreSQL the same test shows the row lock serialising the claims.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from payments_gateway.models import AddressCounter, DepositAddress

TRANSACTIONS = 300  # per writer; without SQLITE_OPTIONS a lock error comes within the first few dozen
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db(transaction=True)
def test_two_writer_processes_never_see_database_is_locked():
    AddressCounter.objects.create(network="anvil")
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.concurrent_writer",
                connection.settings_dict["NAME"],
                name,
                str(TRANSACTIONS),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("web", "worker")
    ]
    try:
        for writer in writers:
            assert writer.stdout.readline().strip() == "ready", writer.communicate(timeout=60)[1]
        for writer in writers:  # both are connected: release them together
            writer.stdin.write("go\n")
            writer.stdin.flush()
        results = [writer.communicate(timeout=240) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()

    for writer, (out, err) in zip(writers, results, strict=True):
        assert "database is locked" not in err
        assert writer.returncode == 0, err
    written = [json.loads(out)["indexes"] for out, _ in results]
    assert [len(indexes) for indexes in written] == [TRANSACTIONS, TRANSACTIONS]
    every = sorted(written[0] + written[1])
    assert every == list(range(2 * TRANSACTIONS))  # no index lost, none taken twice
    assert sorted(DepositAddress.objects.values_list("index", flat=True)) == every
    assert AddressCounter.objects.get(network="anvil").next_index == 2 * TRANSACTIONS

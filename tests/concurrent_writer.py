"""A writer process for tests/test_sqlite_concurrency.py: many short read-then-write transactions.

Usage: ``python -m tests.concurrent_writer <database name> <writer name> <transactions>``. Prints ``ready``
once connected, waits for a line on stdin (so both writers start together), then in each transaction reads
the network's address counter, stores the deposit address at that index and advances the counter — the
pattern of every claim in the app. Prints one JSON line with what it wrote. Any error ends it with a traceback
and a non-zero exit status.
"""

import json
import os
import sys


def main(database: str, writer: str, count: int) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = database  # the test database of the pytest process
    django.setup()
    from django.db import connection, transaction

    from payments_gateway.models import AddressCounter, DepositAddress

    connection.ensure_connection()
    print("ready", flush=True)
    sys.stdin.readline()
    written = []
    for _ in range(count):
        with transaction.atomic():
            counter = AddressCounter.objects.select_for_update().get(network="anvil")
            index = counter.next_index
            DepositAddress.objects.create(network="anvil", index=index, address=f"0x{index:040x}")
            AddressCounter.objects.filter(pk=counter.pk).update(next_index=index + 1)
        written.append(index)
    print(json.dumps({"writer": writer, "indexes": written}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))

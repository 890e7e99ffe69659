"""Worker process for the address-allocation concurrency test: allocates N addresses, one transaction each.

Run as ``python -m tests.alloc_worker NETWORK COUNT`` with ``DATABASE_URL`` pointing at the test database and
``PAYMENTS_GATEWAY_TEST_OVERRIDE`` holding the settings dict as JSON. It
prints "ready", waits for a line on stdin (so all workers start together), then prints one JSON line with the
(index, address) pairs it got.
"""

import json
import os
import sys
from datetime import timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from payments_gateway.deposits import allocate_address  # noqa: E402


def main() -> None:
    network, count = sys.argv[1], int(sys.argv[2])
    # The test's PAYMENTS_GATEWAY (its networks and xpub), as JSON.
    override_settings(PAYMENTS_GATEWAY=json.loads(os.environ["PAYMENTS_GATEWAY_TEST_OVERRIDE"])).enable()
    print("ready", flush=True)
    sys.stdin.readline()
    got = []
    for _ in range(count):
        with transaction.atomic():
            address = allocate_address(network, busy_until=timezone.now() + timedelta(days=1))
        got.append((address.index, address.address))
    print(json.dumps(got), flush=True)


if __name__ == "__main__":
    main()

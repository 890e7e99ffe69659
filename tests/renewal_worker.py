"""Worker process for the renewal concurrency test: runs the renewals task at a given time, three times.

Run as ``python -m tests.renewal_worker NOW`` (an ISO 8601 datetime) with ``DATABASE_URL`` pointing at the test
database and ``PAYMENTS_GATEWAY_TEST_OVERRIDE`` holding the settings dict as JSON. It prints "ready", waits for a
line on stdin (so all workers start together), then prints one JSON line: the renewals it opened and the reminder
e-mails it sent.
"""

import json
import os
import sys
from datetime import datetime

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.core import mail  # noqa: E402
from django.test import override_settings  # noqa: E402

from payments_gateway.services.subscriptions import renew_due_subscriptions  # noqa: E402


def main() -> None:
    now = datetime.fromisoformat(sys.argv[1])
    override_settings(
        PAYMENTS_GATEWAY=json.loads(os.environ["PAYMENTS_GATEWAY_TEST_OVERRIDE"]),
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    ).enable()
    mail.outbox = []
    print("ready", flush=True)
    sys.stdin.readline()
    opened = failed = 0
    for _ in range(3):
        counts = renew_due_subscriptions(now=now)
        opened += counts["renewals"]
        failed += counts["failed"]
    print(json.dumps({"renewals": opened, "failed": failed, "mails": len(mail.outbox)}), flush=True)


if __name__ == "__main__":
    main()

"""A process of the deployment, for the operations tests: ``python -m tests.ops_runner check`` runs
``manage.py payments_gateway_check``, ``python -m tests.ops_runner qcluster`` a django-q2 cluster and
``python -m tests.ops_runner scan`` one ``payments_gateway_scan``; ``python -m tests.ops_runner serve`` serves the
project over HTTP on a free port and prints its base URL.

Environment: ``DATABASE_URL`` (the test database), ``PAYMENTS_GATEWAY_TEST_OVERRIDE`` (the settings dict as JSON,
optional) and ``PAYMENTS_GATEWAY_TEST_Q_CLUSTER`` (``Q_CLUSTER`` as JSON, read by tests/settings.py, optional).
"""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import override_settings  # noqa: E402


def main() -> None:
    if os.environ.get("PAYMENTS_GATEWAY_TEST_OVERRIDE"):
        override_settings(PAYMENTS_GATEWAY=json.loads(os.environ["PAYMENTS_GATEWAY_TEST_OVERRIDE"])).enable()
    if sys.argv[1] == "serve":
        import time

        from tests.http_receiver import live_wsgi_server

        with live_wsgi_server() as base:
            print(base, flush=True)
            while True:
                time.sleep(60)
    command = {"check": "payments_gateway_check", "qcluster": "qcluster", "scan": "payments_gateway_scan"}[sys.argv[1]]
    call_command(command)


if __name__ == "__main__":
    main()

"""Settings of bench/receiver.py's gunicorn server: the example shop's, on the bench's own PostgreSQL database
(``DATABASE_URL``), with one Standard Webhooks source and a URLconf that adds the baseline view."""

import os

os.environ["PAYMENTS_GATEWAY_CONFIG"] = os.devnull

from example_shop.settings import *  # noqa: E402,F403
from example_shop.settings import PAYMENTS_GATEWAY  # noqa: E402

DEBUG = False
ROOT_URLCONF = "receiver_urls"
# The server's lifetime is the bench's: keep one connection per worker, as a production server would.
DATABASES["default"]["CONN_MAX_AGE"] = 600  # noqa: F405
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
PAYMENTS_GATEWAY = {
    **PAYMENTS_GATEWAY,
    "WEBHOOK_SOURCES": {
        "bench": {
            "scheme": "standard",
            "secrets": [os.environ["BENCH_WEBHOOK_SECRET"]],
            "handler": "receiver_urls.handle",
        }
    },
}
# django-q2 logs every enqueue at INFO; a production server would not write a line per webhook either.
Q_CLUSTER = {**Q_CLUSTER, "log_level": "WARNING"}  # noqa: F405

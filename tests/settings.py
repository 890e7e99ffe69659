"""Test settings: the example shop's, on SQLite or on PostgreSQL when ``DATABASE_URL`` is set."""

import hashlib
import os
import tempfile

os.environ.setdefault("SHOP_VAR_DIR", tempfile.mkdtemp(prefix="pg-tests-"))
os.environ["PAYMENTS_GATEWAY_CONFIG"] = os.devnull  # tests never read a demo's dev-chain config

from example_shop.settings import *  # noqa: E402,F403
from example_shop.settings import BASE_DIR, DATABASES, VAR_DIR  # noqa: E402

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not :memory:, so tests with several processes see the same database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    # One test database per checkout, so two checkouts on one server never drop each other's database.
    _checkout = hashlib.sha1(str(BASE_DIR).encode()).hexdigest()[:8]
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME", f"test_pg_{_checkout}")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEBUG = False
LOGGING = {"version": 1, "disable_existing_loggers": False}

"""Settings of the test suite, complete in themselves: the library's tests never inherit the example shop's demo
choices (its own settings are proven by tests/test_example_shop_settings.py).

SQLite by default, PostgreSQL when ``DATABASE_URL`` is set (``postgres://user@host:5432/name``). The example shop's
app is installed because its tests run here too (tests/test_shop*.py).
"""

import hashlib
import json
import os
import tempfile
from pathlib import Path

from payments_gateway.chain.devchain import MERCHANT_XPUB
from payments_gateway.db import database_from_url

BASE_DIR = Path(__file__).resolve().parent.parent
# One directory per run, shared with the processes the tests start (they read these settings too).
VAR_DIR = Path(os.environ.setdefault("PAYMENTS_GATEWAY_TEST_DIR", tempfile.mkdtemp(prefix="pg-tests-")))

SECRET_KEY = "payments-gateway-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins; test users only

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_q",
    "payments_gateway",
    "example_shop.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "example_shop.shop.context_processors.cart",  # the shop's templates show the cart
            ],
        },
    },
]

DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL"), sqlite_path=VAR_DIR / "db.sqlite3")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not :memory:, so tests with several processes see the same database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    # One test database per checkout, so two checkouts on one server never drop each other's database.
    _checkout = hashlib.sha1(str(BASE_DIR).encode()).hexdigest()[:8]
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME", f"test_pg_{_checkout}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"

# What README's "Add it to your shop" asks of a project.
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
# The schema's enums under their own names: without these, drf-spectacular names the colliding "status" and "type"
# enums by a hash (and warns).
SPECTACULAR_SETTINGS = {
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {
        "SessionStatusEnum": "payments_gateway.models.SessionStatus",
        "PaymentStatusEnum": "payments_gateway.models.PaymentStatus",
        "TransferStatusEnum": "payments_gateway.models.TransferStatus",
        "EventTypeEnum": "payments_gateway.models.outgoing.EVENT_TYPES",
        "SessionTypeEnum": "payments_gateway.models.SessionType",
    },
}
# The ORM broker: tests look at the queued tasks (django_q.models.OrmQ).
Q_CLUSTER = {
    "name": "payments_gateway",
    "workers": 2,
    "timeout": 60,
    "retry": 120,
    "catch_up": False,
    "max_attempts": 1,
    "orm": "default",
}


# The library's defaults, but for what every test needs: an xpub (the public "abandon ×11 about" test mnemonic's),
# one network named "anvil" that nothing listens on (chain tests point it at their anvil with the ``anvil_settings``
# fixture) and a fixed ETH price. Private webhook URLs stay refused, as in production; tests that deliver to a
# receiver on 127.0.0.1 allow them with the ``private_webhook_urls`` fixture.
PAYMENTS_GATEWAY = {
    "XPUB": MERCHANT_XPUB,
    "NETWORKS": {
        "anvil": {
            "chain_id": 31337,
            "rpc_urls": ["http://127.0.0.1:1"],
            "confirmations": 2,
            "block_time": 1,
            "native": {"symbol": "ETH", "decimals": 18},
            "dev": True,
        }
    },
    "RATE_PROVIDER_OPTIONS": {"rates": {"ETH": {"USD": "3000"}}},
}

# Read by the example shop's app (seed_shop, its webhook receiver).
SHOP_WEBHOOK_SECRET = "whsec_dGVzdC1zdWl0ZS1zaG9wLXdlYmhvb2stc2VjcmV0ISE="  # 32 bytes
SHOP_WEBHOOK_URL = "http://127.0.0.1:8000/shop/webhooks/"

LOGGING = {"version": 1, "disable_existing_loggers": False}

# The processes a test starts (tests/processes.py: web server, django-q2 cluster, scanner) read these settings
# too, with the test's gateway settings and the broker it runs on from the environment.
if os.environ.get("PAYMENTS_GATEWAY_TEST_OVERRIDE"):
    PAYMENTS_GATEWAY = json.loads(os.environ["PAYMENTS_GATEWAY_TEST_OVERRIDE"])
if os.environ.get("PAYMENTS_GATEWAY_TEST_Q_CLUSTER"):  # e.g. the Redis broker: {"orm": None, "redis": url}
    Q_CLUSTER |= json.loads(os.environ["PAYMENTS_GATEWAY_TEST_Q_CLUSTER"])
if os.environ.get("PAYMENTS_GATEWAY_TEST_CACHES"):
    CACHES = json.loads(os.environ["PAYMENTS_GATEWAY_TEST_CACHES"])

"""Settings of the example shop: the embedded defaults (SQLite, django-q2 ORM broker, local anvil chain).

Environment: ``DATABASE_URL`` (PostgreSQL instead of SQLite), ``Q_BROKER=redis`` with ``REDIS_URL`` (the Redis
broker instead of the ORM one), ``PAYMENTS_GATEWAY_CONFIG`` (a JSON file with the ``PAYMENTS_GATEWAY`` dict,
written by ``manage.py payments_gateway_devchain``).
"""

import json
import os
from pathlib import Path

from payments_gateway.db import database_from_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SHOP_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(exist_ok=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-shop-insecure-dev-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

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

ROOT_URLCONF = "example_shop.urls"
WSGI_APPLICATION = "example_shop.wsgi.application"

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
                "example_shop.shop.context_processors.cart",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL"), sqlite_path=VAR_DIR / "shop.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "payments_gateway API",
    "DESCRIPTION": "Crypto checkout sessions, customers, webhooks and events.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {
        "SessionStatusEnum": "payments_gateway.models.SessionStatus",
        "PaymentStatusEnum": "payments_gateway.models.PaymentStatus",
        "TransferStatusEnum": "payments_gateway.models.TransferStatus",
        "EventTypeEnum": "payments_gateway.models.outgoing.EVENT_TYPES",
        "SessionTypeEnum": "payments_gateway.models.SessionType",
    },
}

# django-q2: the ORM broker on the embedded default; Redis when Q_BROKER=redis.
Q_CLUSTER = {
    "name": "payments_gateway",
    "workers": 2,
    "timeout": 60,
    "retry": 120,
    "catch_up": False,
    "max_attempts": 1,
}
if os.environ.get("Q_BROKER") == "redis":
    Q_CLUSTER["redis"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
else:
    Q_CLUSTER["orm"] = "default"

# The merchant's account xpub for the dev chain. It comes from the public BIP39 test mnemonic
# "abandon ... about" (never anvil's default mnemonic, whose first address is a funded dev account).
DEV_XPUB = (
    "xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh5GFZaM6si3yZdUsT8ddYM3PwnATt"
)

PAYMENTS_GATEWAY = {
    "XPUB": DEV_XPUB,
    "NETWORKS": {
        "anvil": {
            "chain_id": 31337,
            "rpc_urls": ["http://127.0.0.1:8545"],
            "confirmations": 2,
            "block_time": 1,
            "native": {"symbol": "ETH", "decimals": 18},
            "dev": True,
        }
    },
    "RATE_PROVIDER_OPTIONS": {"rates": {"ETH": {"USD": "3000"}}},
    "ALLOW_PRIVATE_WEBHOOK_URLS": True,
    # Links in subscription e-mails (the demo prints them: see EMAIL_BACKEND below).
    "PUBLIC_URL": f"http://127.0.0.1:{os.environ.get('DEMO_PORT', '8000')}",
    "CHECKOUT_BRANDING": {"name": "Example Shop", "accent_color": "#0b6e4f"},
}
# Subscription reminders are printed by the process that sends them (the qcluster), not sent.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# The shop's own webhook receiver (example_shop/shop/webhooks.py). `seed_shop` registers it as an endpoint of the
# gateway with this known development secret; ALLOW_PRIVATE_WEBHOOK_URLS above lets the gateway post to localhost.
SHOP_WEBHOOK_SECRET = os.environ.get("SHOP_WEBHOOK_SECRET", "whsec_ZXhhbXBsZS1zaG9wLWRldi13ZWJob29rLXNlY3JldCE=")
SHOP_WEBHOOK_URL = os.environ.get(
    "SHOP_WEBHOOK_URL", f"http://127.0.0.1:{os.environ.get('DEMO_PORT', '8000')}/shop/webhooks/"
)

_config_file = os.environ.get("PAYMENTS_GATEWAY_CONFIG", str(VAR_DIR / "payments_gateway.json"))
if Path(_config_file).is_file():
    PAYMENTS_GATEWAY.update(json.loads(Path(_config_file).read_text()))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"payments_gateway": {"handlers": ["console"], "level": "INFO"}},
}

"""The example shop's own settings (example_shop/settings.py) load, pass ``manage.py check`` and wire the demo as
README describes, on the embedded default and with each environment switch.

The test suite runs on tests/settings.py, which takes nothing from the shop's: so each check here starts a fresh
process with ``DJANGO_SETTINGS_MODULE=example_shop.settings``, in a var directory of its own.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from payments_gateway.chain.devchain import MERCHANT_XPUB
from payments_gateway.db import SQLITE_OPTIONS

ROOT = Path(__file__).resolve().parent.parent
# What the shop's settings read from the environment: each test sets only what it means to.
SWITCHES = {"DATABASE_URL", "Q_BROKER", "REDIS_URL", "PAYMENTS_GATEWAY_CONFIG", "SHOP_VAR_DIR", "DJANGO_DEBUG",
            "DJANGO_SECRET_KEY", "SHOP_WEBHOOK_SECRET", "SHOP_WEBHOOK_URL", "DEMO_PORT"}  # fmt: skip

# Loads the settings in a fresh process and prints what the demo depends on, as JSON.
READ_SETTINGS = """
import json

import django

django.setup()
from django.conf import settings
from django.core.checks import run_checks
from django.urls import resolve

from payments_gateway.conf import gateway_settings

gateway_settings.check_all()  # ImproperlyConfigured (a traceback) if anything is wrong
paths = ["/", "/admin/", "/pay/6b1a9d8e-3c3e-4f6e-9b0a-2f1f3c4d5e6f/", "/api/v1/sessions/", "/webhooks/partner/",
         "/shop/webhooks/"]
print(json.dumps({
    "debug": settings.DEBUG,
    "secret_key": settings.SECRET_KEY,
    "database": {k: str(settings.DATABASES["default"][k]) for k in ("ENGINE", "NAME", "HOST", "PORT")
                 if settings.DATABASES["default"].get(k)},
    "sqlite_options": settings.DATABASES["default"].get("OPTIONS"),  # PostgreSQL's too
    "broker": {k: settings.Q_CLUSTER.get(k) for k in ("orm", "redis")},
    "xpub": gateway_settings.XPUB,
    "networks": {name: {"rpc_urls": list(n.rpc_urls), "dev": n.dev, "tokens": sorted(n.tokens)}
                 for name, n in gateway_settings.networks.items()},
    "private_webhook_urls": gateway_settings.ALLOW_PRIVATE_WEBHOOK_URLS,
    "shop_webhook_url": settings.SHOP_WEBHOOK_URL,
    "shop_webhook_secret": settings.SHOP_WEBHOOK_SECRET,
    "views": {path: resolve(path).view_name for path in paths},
    "gateway_checks": [m.id for m in run_checks(tags=["payments_gateway"])],
}))
"""


def run_python(args, tmp_path, **environ):
    """``python *args`` in the repository with only the given switches set; the finished process."""
    env = {k: v for k, v in os.environ.items() if k not in SWITCHES and k != "DJANGO_SETTINGS_MODULE"}
    env |= {"DJANGO_SETTINGS_MODULE": "example_shop.settings", "SHOP_VAR_DIR": str(tmp_path / "var")} | environ
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def shop_settings(tmp_path, **environ) -> dict:
    result = run_python(["-c", READ_SETTINGS], tmp_path, **environ)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_manage_py_check_passes_with_the_shop_settings(tmp_path):
    result = run_python(["manage.py", "check", "--fail-level", "WARNING"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_embedded_default_is_sqlite_the_orm_broker_and_the_local_dev_chain(tmp_path):
    shop = shop_settings(tmp_path)
    var = tmp_path / "var"
    assert shop["database"] == {"ENGINE": "django.db.backends.sqlite3", "NAME": str(var / "shop.sqlite3")}
    assert shop["sqlite_options"] == SQLITE_OPTIONS  # WAL and a busy timeout: web, cluster and scanner share it
    assert shop["broker"] == {"orm": "default", "redis": None}
    assert shop["debug"] is True
    # The dev merchant's xpub, never one of anvil's funded accounts; a dev chain where the demo starts it.
    assert shop["xpub"] == MERCHANT_XPUB
    assert shop["networks"] == {"anvil": {"rpc_urls": ["http://127.0.0.1:8545"], "dev": True, "tokens": []}}
    assert shop["gateway_checks"] == []
    # seed_shop registers the shop's own receiver on 127.0.0.1: the gateway must be allowed to post there.
    assert shop["private_webhook_urls"] is True
    assert shop["shop_webhook_url"] == "http://127.0.0.1:8000/shop/webhooks/"
    assert shop["shop_webhook_secret"].startswith("whsec_")
    assert shop["views"] == {
        "/": "shop:products",
        "/admin/": "admin:index",
        "/pay/6b1a9d8e-3c3e-4f6e-9b0a-2f1f3c4d5e6f/": "payments_gateway:checkout",
        "/api/v1/sessions/": "payments_gateway:session-list",
        "/webhooks/partner/": "payments_gateway:webhook-receive",
        "/shop/webhooks/": "shop:webhooks",
    }


def test_the_environment_switches_database_broker_ports_and_gateway_config(tmp_path):
    config = tmp_path / "devchain.json"  # as `manage.py payments_gateway_devchain --write-config` writes it
    usdc = {"address": "0x" + "a0" * 20, "decimals": 6}
    config.write_text(json.dumps({"NETWORKS": {"anvil": {"chain_id": 31337, "rpc_urls": ["http://127.0.0.1:8546"],
                                                         "dev": True, "tokens": {"USDC": usdc}}}}))  # fmt: skip
    shop = shop_settings(
        tmp_path,
        DATABASE_URL="postgres://shop:pw@db.example:5433/shopdb?application_name=shop-web&sslmode=require",
        Q_BROKER="redis",
        REDIS_URL="redis://cache.example:6379/2",
        PAYMENTS_GATEWAY_CONFIG=str(config),
        DEMO_PORT="8123",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="from-the-environment",
    )
    assert shop["database"] == {"ENGINE": "django.db.backends.postgresql", "NAME": "shopdb", "HOST": "db.example",
                                "PORT": "5433"}  # fmt: skip
    # The URL's query is libpq's connection options: a group of processes is named in pg_stat_activity.
    assert shop["sqlite_options"] == {"application_name": "shop-web", "sslmode": "require"}
    assert shop["broker"] == {"orm": None, "redis": "redis://cache.example:6379/2"}
    assert shop["networks"] == {"anvil": {"rpc_urls": ["http://127.0.0.1:8546"], "dev": True, "tokens": ["USDC"]}}
    assert shop["shop_webhook_url"] == "http://127.0.0.1:8123/shop/webhooks/"
    assert (shop["debug"], shop["secret_key"]) == (False, "from-the-environment")


def test_the_test_settings_take_nothing_from_the_shop_settings(tmp_path):
    code = "import sys, django\ndjango.setup()\nprint(sorted(m for m in sys.modules if m.startswith('example_shop')))\n"
    result = run_python(["-c", code], tmp_path, DJANGO_SETTINGS_MODULE="tests.settings")
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.strip()
    assert "example_shop.shop" in loaded  # the shop's app is installed: its tests run with the library's
    assert "example_shop.settings" not in loaded

"""The rate limiter (payments_gateway/ratelimit.py): windows, the same decorator on a DRF view, and counts shared
between processes through Redis (and, as its docstring warns, not through the default per-process cache)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from django.core.cache import caches
from django.test import RequestFactory, override_settings
from django.utils.decorators import method_decorator
from rest_framework.response import Response
from rest_framework.views import APIView

from payments_gateway.ratelimit import hit, rate_limit

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(autouse=True)
def fresh_counts():
    caches["default"].clear()


def test_a_window_opens_with_the_first_request_and_ends_after_its_length():
    start = 1_000_000.0
    assert hit("t", "client", limit=2, window=60, now=start) is None
    assert hit("t", "client", limit=2, window=60, now=start + 10) is None
    assert hit("t", "client", limit=2, window=60, now=start + 20) == 40  # seconds until the window ends
    assert hit("t", "other client", limit=2, window=60, now=start + 20) is None
    assert hit("t", "client", limit=2, window=60, now=start + 61) is None  # a new window


class Status(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @method_decorator(rate_limit("test-drf", limit=3, window=60))
    def get(self, request, uuid):
        return Response({"uuid": str(uuid)})


def test_the_same_decorator_limits_a_drf_view():
    view, factory, session = Status.as_view(), RequestFactory(), uuid.uuid4()
    for _ in range(3):
        assert view(factory.get("/status"), uuid=session).status_code == 200
    refused = view(factory.get("/status"), uuid=session)
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
    assert json.loads(refused.content)["error"]["code"] == "rate_limited"
    assert view(factory.get("/status"), uuid=uuid.uuid4()).status_code == 200  # another session


SHARED_CACHE = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}


def other_process_hit(scope: str, client: str, cache: dict) -> int | None:
    """``hit`` once from a separate Python process whose RATE_LIMIT_CACHE is ``cache``."""
    script = f"""
import django, json
from django.conf import settings
settings.configure(CACHES={{"default": {cache!r}}}, USE_TZ=True)
django.setup()
from payments_gateway.ratelimit import hit
print(json.dumps(hit({scope!r}, {client!r}, limit=2, window=600)))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_counts_are_shared_between_processes_through_redis(settings):
    prefix = f"test-{uuid.uuid4().hex}"
    shared = SHARED_CACHE | {"KEY_PREFIX": prefix}
    caches_setting = {**settings.CACHES, "shared": shared}
    with override_settings(CACHES=caches_setting, PAYMENTS_GATEWAY={"RATE_LIMIT_CACHE": "shared"}):
        try:
            assert hit("web", "client", limit=2, window=600) is None
            assert hit("web", "client", limit=2, window=600) is None
            # A second web process (another machine, even) sees the same count: refused.
            assert 1 <= other_process_hit("web", "client", shared) <= 600
        finally:
            # Not cache.clear(): on Redis that empties the whole database, which other tests may be using.
            connection = redis.Redis.from_url(REDIS_URL)
            for key in connection.scan_iter(f"{prefix}:*"):
                connection.delete(key)


def test_the_default_cache_counts_per_process():
    assert hit("web", "client", limit=2, window=600) is None
    assert hit("web", "client", limit=2, window=600) is None
    assert hit("web", "client", limit=2, window=600) is not None
    # LocMemCache lives in one process: another process starts from zero (hence the setting).
    assert other_process_hit("web", "client", {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}) is None

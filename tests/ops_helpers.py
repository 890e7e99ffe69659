"""Helpers of the operations tests: the Redis database they own, django-q2 on the Redis broker, and processes of
the deployment (tests/ops_runner.py) started on the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import redis

from .processes import process_env

#: The Redis databases the operations tests own (FLUSHDB, never FLUSHALL): the broker's, and a shared cache's.
REDIS_URL = "redis://127.0.0.1:6379/8"
SHARED_CACHE_URL = "redis://127.0.0.1:6379/9"


def flush_redis(url: str = REDIS_URL) -> None:
    """Empty one of the operations tests' Redis databases. A missing Redis fails the test (never skipped)."""
    redis.Redis.from_url(url).flushdb()


def use_redis_broker(monkeypatch, url: str = REDIS_URL) -> dict:
    """django-q2 in this process on the Redis broker at ``url`` (it reads ``Q_CLUSTER`` once, into ``Conf``);
    returns the ``Q_CLUSTER`` a process started with it should read."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", url)
    cluster = {"name": Conf.CLUSTER_NAME, "workers": 1, "timeout": 30, "retry": 60, "max_attempts": 1}
    return cluster | {"orm": None, "redis": url}


def run_check_process(command: str = "check", **kwargs) -> subprocess.CompletedProcess:
    """``payments_gateway_check`` (or ``command`` of tests/ops_runner.py) in a process of its own, as cron or a
    container health check runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tests.ops_runner", command],
        env=process_env(**kwargs), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@contextmanager
def running_cluster(q_cluster: dict, gateway: dict | None = None, caches: dict | None = None):
    """A django-q2 cluster (``manage.py qcluster``) on ``q_cluster``'s broker, stopped after the block."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.ops_runner", "qcluster"],
        env=process_env(gateway, q_cluster, caches), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)  # the cluster stops its own workers (a SIGTERM to each would not)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(predicate, what: str, timeout: float = 60):
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout`` seconds (a bound, not a
    measurement)."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)
    return result

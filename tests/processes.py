"""Processes the tests start on the test database: the project's own commands (web server, django-q2 cluster,
scanner) and small workers (tests/alloc_worker.py...), the django-q2 broker they share, and ways to kill them.

A started process reads tests/settings.py with the test's ``PAYMENTS_GATEWAY`` and broker from the environment
(:func:`child_env`). Its output goes to a log file in the run's directory, shown when it fails to start.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
# Redis databases of this suite (one per kind of test, so they never flush each other's queue).
REDIS_HOST = os.environ.get("PAYMENTS_GATEWAY_TEST_REDIS", "redis://127.0.0.1:6379")


def database_url(application_name: str = "") -> str:
    """The test database as a ``DATABASE_URL`` for a child process; on PostgreSQL its connections carry
    ``application_name`` (so a test can find and terminate exactly them)."""
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        return f"sqlite:///{db['NAME']}"
    url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"{url}?application_name={application_name}" if application_name else url


# --- the broker -------------------------------------------------------------------------------------------------


@dataclass
class Broker:
    """django-q2's broker for this test: the ORM (the embedded default) or a Redis database (production)."""

    name: str  # "orm" | "redis"
    url: str = ""

    @property
    def cluster_settings(self) -> dict[str, Any]:
        """What ``Q_CLUSTER`` gets, in this process and in the children."""
        return {"orm": "default"} if self.name == "orm" else {"orm": None, "redis": self.url}

    def activate(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """This process queues its tasks (webhook kicks, incoming events) on this broker too."""
        from django_q.conf import Conf

        monkeypatch.setattr(Conf, "ORM", self.cluster_settings["orm"])
        monkeypatch.setattr(Conf, "REDIS", self.cluster_settings.get("redis", {}))

    def queued(self) -> int:
        """Tasks waiting in the queue."""
        from django_q.brokers import get_broker

        return get_broker().queue_size()

    def lose_queued_tasks(self) -> None:
        """What a Redis restart (or FLUSHDB) does to the queue: every queued task is gone. On the ORM broker, the
        same as a worker dying with the tasks it took."""
        if self.name == "redis":
            import redis

            redis.from_url(self.url).flushdb()  # this suite's own database number: never FLUSHALL
        else:
            from django_q.models import OrmQ

            OrmQ.objects.all().delete()


def redis_broker(db: int) -> Broker:
    """The Redis broker on database ``db`` (emptied first). A Redis that does not answer fails the test: it runs
    on every machine of this project (never skipped)."""
    import redis

    url = f"{REDIS_HOST}/{db}"
    try:
        redis.from_url(url, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {url} ({exc}): start redis-server (never skipped).")
    return Broker("redis", url)


def process_env(
    gateway: dict[str, Any] | None = None,
    q_cluster: dict[str, Any] | None = None,
    caches: dict[str, Any] | None = None,
    application_name: str = "",
    **extra: str,
) -> dict[str, str]:
    """The environment of a child process (a worker, a cluster, a command): the test database, and optionally the
    test's ``PAYMENTS_GATEWAY``, ``Q_CLUSTER`` (merged into the suite's) and ``CACHES``, read by tests/settings.py."""
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url(application_name),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    if gateway is not None:
        env["PAYMENTS_GATEWAY_TEST_OVERRIDE"] = json.dumps(gateway)
    if q_cluster is not None:
        env["PAYMENTS_GATEWAY_TEST_Q_CLUSTER"] = json.dumps(q_cluster)
    if caches is not None:
        env["PAYMENTS_GATEWAY_TEST_CACHES"] = json.dumps(caches)
    return env


def child_env(gateway: dict[str, Any], broker: Broker, application_name: str = "", **extra: str) -> dict[str, str]:
    """The environment of a child process on these gateway settings and this broker (two cluster workers)."""
    return process_env(gateway, broker.cluster_settings | {"workers": 2}, application_name=application_name, **extra)


# --- processes --------------------------------------------------------------------------------------------------


def django_command(*args: str) -> list[str]:
    """``manage.py ARGS`` on the test settings (``DJANGO_SETTINGS_MODULE`` comes from :func:`child_env`)."""
    return [sys.executable, "-m", "django", *args]


def gunicorn(port: int, workers: int = 1, threads: int = 4) -> list[str]:
    """The project under gunicorn on 127.0.0.1:``port``, as README's deployment guide runs it."""
    return [str(Path(sys.executable).parent / "gunicorn"), "example_shop.wsgi:application", "--bind",
            f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads), "--timeout", "60",
            "--graceful-timeout", "2"]  # fmt: skip


class Service:
    """One started process (with its children, e.g. qcluster's workers), in its own process group."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name, self.args, self.env = name, args, env
        self.log_path = Path(settings.VAR_DIR) / f"{name}.{os.getpid()}.{time.monotonic_ns()}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Service:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing to it
        self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)  # fmt: skip
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        """This process and all its descendants."""
        try:
            parent = psutil.Process(self.pid)
            return [self.pid, *(child.pid for child in parent.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> int:
        """``kill -9`` of the process and everything it started; returns how many processes were killed."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # And whatever is left of its process group: a child whose parent already exited (a cluster worker still
        # finishing a follower after its sentinel stopped) is no longer a descendant, but would go on scanning the
        # test database and the chain beside the next tests.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)
        return len(pids)

    def stop(self) -> None:
        """Ask it to stop (SIGTERM), then kill what is left."""
        if self.process is None:
            return
        if self.alive:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        self.kill()

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""


def wait_for(condition: Callable[[], Any], timeout: float, what: str, services: tuple[Service, ...] = ()) -> Any:
    """Poll ``condition`` until it is true (returned); fail naming ``what`` and the services' logs on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {s.name} ---\n{s.log()}" for s in services)
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{logs}")
        time.sleep(0.2)


def wait_http(base_url: str, service: Service, timeout: float = 60) -> None:
    """Wait until the web server at ``base_url`` answers."""

    def up() -> bool:
        if not service.alive:
            pytest.fail(f"{service.name} exited:\n{service.log()}")
        try:
            requests.get(f"{base_url}/api/v1/schema/", timeout=2)
        except requests.RequestException:
            return False
        return True

    wait_for(up, timeout, f"{service.name} at {base_url}", (service,))


def pid_of_client(port: int, server_port: int) -> int | None:
    """The process whose TCP connection from local ``port`` goes to ``server_port`` (e.g. the worker sending a
    webhook that a test receiver holds), or None."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.raddr and conn.laddr.port == port and conn.raddr.port == server_port:
            return conn.pid
    return None


def start(args: list[str], gateway: dict[str, Any], log: Path) -> subprocess.Popen:
    """``python <args>`` as "the deployment" (tests/cluster_settings.py: a cluster worker per network's follower)
    on the test database, in its own process group, its output in ``log``."""
    env = process_env(gateway, DJANGO_SETTINGS_MODULE="tests.cluster_settings")
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the process (qcluster stops its workers), then SIGKILL to whatever is left of its group."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    for _ in range(50):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            break
        process.poll()
        time.sleep(0.1)


def run_together(module: str, args: list[str], env: dict[str, str], count: int = 2, timeout: float = 240) -> list:
    """Run ``count`` copies of the worker ``python -m module args`` (tests/alloc_worker.py, renewal_worker.py) so
    that they start their work at the same moment: each prints "ready" and waits for "go" on stdin. Returns what
    each printed last, parsed as JSON; a worker that fails fails the test with its stderr."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for _ in range(count)
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdin is not None
        assert worker.stdout.readline().strip() == "ready", worker.communicate()[1]
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=timeout)
        assert worker.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results

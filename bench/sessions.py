"""Benchmark: checkout sessions created per second through the API, against a baseline DRF endpoint.

    .venv/bin/python bench/sessions.py [--n 300] [--postgres postgres://postgres@127.0.0.1:5432/postgres]

For each database — a throwaway SQLite file, and a throwaway database created (and dropped) on the given
PostgreSQL server — it migrates a fresh database, creates an API key, starts the app under gunicorn (one sync
worker, a free port) and, as an HTTP client, measures:

- sessions: ``POST /api/v1/sessions/`` (validation, quote, deposit address derived from the xpub and allocated,
  order + session + ``payment.created`` event in one commit) — what it costs to start one checkout. Its QR code
  is drawn only when asked for (``?include=qr_code``), so the answer has ``qr_code: null``;
- baseline: a DRF endpoint in the same server, with the same API key authentication, that parses the JSON body
  and inserts one row.

Both are measured in five interleaved rounds, so a change of load on a shared machine hits both alike. The
same two operations are also timed in-process (Django test client, no HTTP), which shows the application's own
CPU cost. It prints the rates and ratios; the last line is JSON with ``ratio_sqlite`` and ``ratio_postgres`` (over
HTTP) and their targets: at least 0.5 on SQLite and 0.6 on PostgreSQL.

``--profile`` runs the in-process session case under pyinstrument and prints where its time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"sqlite": 0.5, "postgres": 0.6}
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
BIN = Path(sys.executable).parent
NETWORK = {
    "bench": {
        "chain_id": 31337,
        "rpc_urls": ["http://127.0.0.1:1"],  # never called: the fixed rate table needs no RPC
        "confirmations": 2,
        "tokens": {"USDC": {"address": "0x" + "a0" * 20, "decimals": 6}},
    }
}
BODY = {"amount": "19.99", "currency": "USD", "asset": "USDC", "network": "bench",
        "success_url": "https://shop.example/ok/{{UUID}}", "cancel_url": "https://shop.example/cart"}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300, help="operations per measurement (default 300)")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG))
    parser.add_argument("--profile", choices=["sqlite", "postgres"], help="profile the session case on this database")
    args = parser.parse_args()
    if args.profile:
        with Database(args.profile, args.postgres) as env:
            print(measure_inprocess(env, args.n, profile=True))
        return 0

    figures: dict[str, dict] = {}
    for label in ("sqlite", "postgres"):
        with Database(label, args.postgres) as env:
            figures[label] = {"http": measure_http(env, args.n), "inprocess": measure_inprocess(env, args.n)}
        for mode, r in figures[label].items():
            print(
                f"{label:>8} {mode:>9}: sessions {r['sessions_per_s']:7.1f}/s  baseline {r['baseline_per_s']:7.1f}/s"
                f"  ratio {r['ratio']:.3f}",
                flush=True,
            )
    summary = {
        "ratio_sqlite": figures["sqlite"]["http"]["ratio"],
        "ratio_postgres": figures["postgres"]["http"]["ratio"],
        "target_ratio_sqlite": TARGETS["sqlite"],
        "target_ratio_postgres": TARGETS["postgres"],
        "ok": all(figures[db]["http"]["ratio"] >= target for db, target in TARGETS.items()),
        "sessions_per_s_sqlite": figures["sqlite"]["http"]["sessions_per_s"],
        "baseline_per_s_sqlite": figures["sqlite"]["http"]["baseline_per_s"],
        "sessions_per_s_postgres": figures["postgres"]["http"]["sessions_per_s"],
        "baseline_per_s_postgres": figures["postgres"]["http"]["baseline_per_s"],
        "inprocess_ratio_sqlite": figures["sqlite"]["inprocess"]["ratio"],
        "inprocess_ratio_postgres": figures["postgres"]["inprocess"]["ratio"],
        "n": args.n,
    }
    print(json.dumps(summary))
    return 0


class Database:
    """A migrated throwaway database and the environment that points the app at it."""

    def __init__(self, label: str, postgres_url: str) -> None:
        self.label, self.postgres_url = label, postgres_url
        self.tmp = Path(tempfile.mkdtemp(prefix=f"pg-bench-sessions-{label}-"))
        self.pg_name = f"bench_sessions_{os.getpid()}"

    def __enter__(self) -> dict[str, str]:
        config = self.tmp / "payments_gateway.json"
        rates = {"rates": {"ETH": {"USD": "3000"}}}
        config.write_text(json.dumps({"NETWORKS": NETWORK, "RATE_PROVIDER_OPTIONS": rates}))
        if self.label == "postgres":
            self._admin(f'CREATE DATABASE "{self.pg_name}"')
            url = urlunsplit(urlsplit(self.postgres_url)._replace(path="/" + self.pg_name))
        else:
            url = f"sqlite:///{self.tmp / 'bench.sqlite3'}"
        self.env = os.environ | {
            "DATABASE_URL": url,
            "SHOP_VAR_DIR": str(self.tmp),
            "PAYMENTS_GATEWAY_CONFIG": str(config),
            "DJANGO_DEBUG": "0",
            "DJANGO_SETTINGS_MODULE": "example_shop.settings",
            "PYTHONPATH": str(ROOT),
        }
        manage(["migrate", "--noinput", "-v", "0"], self.env)
        self.env["BENCH_API_KEY"] = manage(["payments_gateway_apikey", "create", "bench"], self.env).strip()
        return self.env

    def __exit__(self, *exc) -> None:
        if self.label == "postgres":
            self._admin(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')

    def _admin(self, sql: str) -> None:
        import psycopg

        parts = urlsplit(self.postgres_url)
        with psycopg.connect(
            host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password,
            dbname=parts.path.lstrip("/") or "postgres", autocommit=True,
        ) as conn:  # fmt: skip
            conn.execute(sql)


def manage(args: list[str], env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, capture_output=True,
                         text=True)  # fmt: skip
    if out.returncode:
        raise SystemExit(f"bench: manage.py {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def measure_http(env: dict[str, str], n: int) -> dict:
    import requests

    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--chdir", str(ROOT), "-w", "1", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
         "bench.sessions:application"],
        env=env | {"BENCH_SERVER": "1"}, cwd=ROOT,
    )  # fmt: skip
    try:
        base_url = f"http://127.0.0.1:{port}"
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {env['BENCH_API_KEY']}"
        wait_ready(http, base_url, server)

        def session(i: int) -> None:
            r = http.post(f"{base_url}/api/v1/sessions/", json=BODY, timeout=30)
            assert r.status_code == 201, r.text
            assert r.json()["qr_code"] is None  # not asked for

        def baseline(i: int) -> None:
            r = http.post(f"{base_url}/bench/baseline/", json={"email": f"b{i}@example.com"}, timeout=30)
            assert r.status_code == 201, r.text

        return compare(session, baseline, n)
    finally:
        server.terminate()
        server.wait(10)


def measure_inprocess(env: dict[str, str], n: int, profile: bool = False) -> dict | str:
    code = "import json, sys; from bench.sessions import inprocess; print(json.dumps(inprocess(int(sys.argv[1]))))"
    if profile:
        code = "import sys; from bench.sessions import profile; print(profile(int(sys.argv[1])))"
    out = subprocess.run([sys.executable, "-c", code, str(n)], env=env | {"BENCH_SERVER": "1"}, cwd=ROOT,
                         capture_output=True, text=True)  # fmt: skip
    if out.returncode:
        raise SystemExit(f"bench: in-process run failed:\n{out.stderr}")
    if profile:
        return out.stdout
    return json.loads(out.stdout.strip().splitlines()[-1])


def profile(n: int) -> str:
    """The session case, in process, under pyinstrument: where a session's time goes."""
    from django.test import Client
    from pyinstrument import Profiler

    client = Client(HTTP_AUTHORIZATION=f"Bearer {os.environ['BENCH_API_KEY']}")
    payload = json.dumps(BODY)
    for _ in range(20):
        client.post("/api/v1/sessions/", payload, content_type="application/json")
    profiler = Profiler(interval=0.0005)
    with profiler:
        for _ in range(n):
            client.post("/api/v1/sessions/", payload, content_type="application/json")
    return profiler.output_text(unicode=True, color=False, show_all=False)


def inprocess(n: int) -> dict:
    """Same operations through the Django test client (runs inside a process started with BENCH_SERVER=1)."""
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {os.environ['BENCH_API_KEY']}")
    payload = json.dumps(BODY)

    def session(i: int) -> None:
        r = client.post("/api/v1/sessions/", payload, content_type="application/json")
        assert r.status_code == 201, r.content
        assert r.json()["qr_code"] is None

    def baseline(i: int) -> None:
        r = client.post("/bench/baseline/", json.dumps({"email": f"c{i}@example.com"}), content_type="application/json")
        assert r.status_code == 201, r.content

    return compare(session, baseline, n)


def compare(session, baseline, n: int) -> dict:
    for i in range(20):  # warm up both paths (imports, caches, connections)
        session(i)
        baseline(i)

    # Interleaved rounds, so a change of load on a shared machine hits both sides alike.
    rounds, per = 5, max(n // 5, 1)
    spent = {"session": 0.0, "baseline": 0.0}
    for r in range(rounds):
        for name, fn in (("baseline", baseline), ("session", session)):
            start = time.perf_counter()
            for i in range(per):
                fn(1000 + r * per + i)
            spent[name] += time.perf_counter() - start
    sessions, base = rounds * per / spent["session"], rounds * per / spent["baseline"]
    return {"sessions_per_s": round(sessions, 1), "baseline_per_s": round(base, 1), "ratio": round(sessions / base, 3)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(http, base_url: str, server: subprocess.Popen, timeout: float = 30) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"bench: gunicorn stopped (exit {server.returncode})")
        try:
            http.get(f"{base_url}/api/v1/ready/", timeout=5)  # a JSON 404: cheap, and proves the app loaded
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit("bench: gunicorn did not answer within 30 s")


# --- the app under test: example shop + one baseline endpoint (imported by gunicorn with BENCH_SERVER=1) ---------

if os.environ.get("BENCH_SERVER"):
    import django

    django.setup()
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from django.urls import include, path
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from payments_gateway.api.auth import APIKeyAuthentication, HasAPIKey
    from payments_gateway.models import Customer

    class Baseline(APIView):
        """Same authentication and JSON parsing as the sessions endpoint, then one INSERT."""

        authentication_classes = [APIKeyAuthentication]
        permission_classes = [HasAPIKey]

        def post(self, request):
            customer = Customer.objects.create(email=request.data.get("email", ""))
            return Response({"uuid": str(customer.uuid)}, status=201)

    urlpatterns = [path("bench/baseline/", Baseline.as_view()), path("", include("example_shop.urls"))]
    settings.ROOT_URLCONF = __name__
    application = get_wsgi_application()


if __name__ == "__main__":
    sys.exit(main())

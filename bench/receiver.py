"""Benchmark: signed webhooks per second accepted by the receiver, against a one-insert baseline view.

    .venv/bin/python bench/receiver.py [--events 250] [--clients 16] [--workers 4] [--rounds 8]

Creates its own PostgreSQL database (``BENCH_PG_URL``, default postgres://postgres@127.0.0.1:5432, a database
``bench_receiver_<pid>`` dropped at the end), migrates it, and starts gunicorn (sync workers) on a free port
with bench/receiver_settings.py: the app's receiver at /webhooks/bench/ (Standard Webhooks) and a baseline view
at /baseline/ that reads the body and inserts one row, in the same server.

Each round posts the same 2 x ``--events`` requests to each, one after the other (the order alternates), from
``--clients`` concurrent clients: every event twice, in random order (50 % duplicates), each request with its own
signature and timestamp. The receiver does everything it does in production: verify, log the attempt, store the
event once (unique constraint), queue its processing task (django-q2, ORM broker: one more row). The machine is
shared, so the ratio is taken per round (both sides under the same load) and the median of the rounds reported.

Prints requests/s for both, the ratio (target >= 0.6) and the final counts: stored events must equal the distinct
ids, logged attempts the requests sent. The last line is JSON.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
TARGET_RATIO = 0.6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=250, help="distinct events per round (each sent twice)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()

    server_url = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    database = f"bench_receiver_{os.getpid()}"
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    admin_dsn = server_url.rstrip("/") + "/postgres"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    env = {
        **os.environ,
        "DATABASE_URL": f"{server_url.rstrip('/')}/{database}",
        "DJANGO_SETTINGS_MODULE": "receiver_settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)]),
        "BENCH_WEBHOOK_SECRET": secret,
        "SHOP_VAR_DIR": str(ROOT / "var"),
    }
    server = None
    try:
        subprocess.run([str(PYTHON), "-m", "django", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True)
        port = free_port()
        server = subprocess.Popen(
            [str(GUNICORN), "django.core.wsgi:get_wsgi_application()", "--bind", f"127.0.0.1:{port}",
             "--workers", str(args.workers), "--backlog", "2048", "--log-level", "warning"],
            env=env, cwd=ROOT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base + "/webhooks/bench/")  # a GET: 405, no write
        result = run(base, secret, args, env["DATABASE_URL"], server.pid)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    print(json.dumps(result))
    return 0 if result["ok"] else 1


def run(base: str, secret: str, args, database_url: str, master: int) -> dict:
    rng = random.Random(6)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    baseline_rates, receiver_rates, ratios, answers = [], [], [], {}
    cpu = {"baseline": [], "receiver": []}  # server CPU (gunicorn workers + PostgreSQL backends) per request
    sent = 0
    all_ids: set[str] = set()
    for round_no in range(args.rounds):
        ids = [f"evt_bench_{round_no}_{i}" for i in range(args.events)]
        all_ids.update(ids)
        order = ids + ids  # every event twice: 50 % duplicates
        rng.shuffle(order)
        bodies = [envelope(event_id) for event_id in order]
        signed = [(b, signed_headers(key, event_id, b)) for event_id, b in zip(order, bodies, strict=True)]
        unsigned = [(b, {}) for b in bodies]
        # Alternate which side goes first, so a load change on the shared machine hits both alike.
        for side in ("baseline", "receiver") if round_no % 2 == 0 else ("receiver", "baseline"):
            pids = server_pids(master, database_url)
            cpu_before = cpu_seconds(pids)
            if side == "baseline":
                rate, codes = post_all(base + "/baseline/", unsigned, args.clients)
                assert codes == {200: len(bodies)}, codes
                baseline_rates.append(rate)
            else:
                rate, codes = post_all(base + "/webhooks/bench/", signed, args.clients)
                receiver_rates.append(rate)
                sent += len(signed)
                for code, count in codes.items():
                    answers[code] = answers.get(code, 0) + count
            cpu[side].append((cpu_seconds(pids) - cpu_before) / len(bodies) * 1000)
        ratios.append(receiver_rates[-1] / baseline_rates[-1])
        print(f"round {round_no + 1}: baseline {baseline_rates[-1]:.0f} req/s, receiver {receiver_rates[-1]:.0f} "
              f"req/s, ratio {ratios[-1]:.2f}; server CPU per request: baseline {cpu['baseline'][-1]:.2f} ms, "
              f"receiver {cpu['receiver'][-1]:.2f} ms", flush=True)  # fmt: skip

    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT count(*) FROM payments_gateway_webhookevent").fetchone()[0]
        logged = conn.execute("SELECT count(*) FROM payments_gateway_webhookrequest WHERE source = 'bench'").fetchone()[
            0
        ]
        queued = conn.execute("SELECT count(*) FROM django_q_ormq").fetchone()[0]
    ratio = statistics.median(ratios)
    baseline, receiver = statistics.median(baseline_rates), statistics.median(receiver_rates)
    print(f"baseline (read the body, one insert): median {baseline:.0f} req/s")
    print(f"receiver (verify, log, store once, queue the task): median {receiver:.0f} req/s")
    print(f"ratio: median of {len(ratios)} rounds {ratio:.2f} (target >= {TARGET_RATIO}); "
          f"rounds {', '.join(f'{r:.2f}' for r in ratios)}")  # fmt: skip
    cpu_baseline, cpu_receiver = statistics.median(cpu["baseline"]), statistics.median(cpu["receiver"])
    print(f"server CPU per request (gunicorn + PostgreSQL backends): baseline {cpu_baseline:.2f} ms, "
          f"receiver {cpu_receiver:.2f} ms, ratio {cpu_baseline / cpu_receiver:.2f}")  # fmt: skip
    print(f"requests {sent}, distinct ids {len(all_ids)}, stored events {stored}, logged attempts {logged}, "
          f"queued tasks {queued}, answers {answers}")  # fmt: skip
    return {
        "bench": "receiver",
        "baseline_rps": round(baseline, 1),
        "receiver_rps": round(receiver, 1),
        "ratio": round(ratio, 3),
        "ratio_rounds": [round(r, 3) for r in ratios],
        "server_cpu_ms_baseline": round(cpu_baseline, 3),
        "server_cpu_ms_receiver": round(cpu_receiver, 3),
        "target_ratio": TARGET_RATIO,
        "requests": sent,
        "distinct": len(all_ids),
        "stored": stored,
        "logged": logged,
        "queued": queued,
        "accepted_202": answers.get(202, 0),
        "duplicate_200": answers.get(200, 0),
        "clients": args.clients,
        "workers": args.workers,
        "ok": ratio >= TARGET_RATIO and stored == len(all_ids) == answers.get(202, 0) == queued and logged == sent,
    }


def post_all(url: str, requests_: list[tuple[bytes, dict]], clients: int) -> tuple[float, dict[int, int]]:
    """POST every (body, headers) from ``clients`` threads; returns (requests per second, {status: count})."""
    queue = list(reversed(requests_))
    lock = threading.Lock()
    codes: dict[int, int] = {}
    start = threading.Barrier(clients + 1)

    def client() -> None:
        session = requests.Session()
        start.wait()
        while True:
            with lock:
                if not queue:
                    return
                body, headers = queue.pop()
            response = session.post(url, data=body, headers={"Content-Type": "application/json", **headers},
                                    timeout=60)  # fmt: skip
            with lock:
                codes[response.status_code] = codes.get(response.status_code, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return len(requests_) / (time.perf_counter() - began), codes


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc); 0 for one that has gone."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def server_pids(master: int, database_url: str) -> list[int]:
    """The gunicorn workers and the PostgreSQL backends serving the bench database (when on this machine)."""
    children = Path(f"/proc/{master}/task/{master}/children")
    workers = [int(p) for p in children.read_text().split()] if children.exists() else []
    with psycopg.connect(database_url) as conn:
        backends = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )]  # fmt: skip
    return workers + backends


def envelope(event_id: str) -> bytes:
    data = {"object": "transaction", "network": "bench", "tx_hash": "0x" + "ab" * 32, "amount": "1000000"}
    return json.dumps({"id": event_id, "type": "transaction.detected", "created": time.time(), "data": data}).encode()


def signed_headers(key: bytes, event_id: str, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": event_id, "webhook-timestamp": timestamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode()}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=10)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


if __name__ == "__main__":
    assert urlsplit(os.environ.get("BENCH_PG_URL", "postgres://x")).scheme.startswith("postgres")
    sys.exit(main())

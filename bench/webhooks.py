"""Benchmark: outgoing webhook delivery throughput on PostgreSQL against a baseline of plain signed POSTs.

    .venv/bin/python bench/webhooks.py [--events 10000] [--workers 2] [--batch 50]

Creates its own PostgreSQL database (``bench_webhooks`` on ``BENCH_PG_URL``, default
postgres://postgres@127.0.0.1:5432), migrates it, and starts a local receiver process that counts distinct and
duplicate ``webhook-id``s. Then, in the same run:

1. baseline: one client process POSTs every event, signed, over one keep-alive session (no database);
2. the gateway: N events are emitted through the outbox, and 2 worker processes run the real delivery service
   (claim with skip_locked + lease, POST, record the attempt) until every delivery has succeeded.

Targets: every event delivered at least once, duplicates < 0.1 %, throughput >= 0.5 x baseline. The database is
dropped at the end. The last line printed is JSON with the figures and the targets.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "bench_webhooks"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    stats_queue = ctx.Queue()
    port_queue = ctx.Queue()
    receiver = ctx.Process(target=run_receiver, args=(port_queue, stats_queue), daemon=True)
    receiver.start()
    port = port_queue.get(timeout=30)

    create_database()
    try:
        setup_django()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        bodies = emit_events(args.events, f"http://127.0.0.1:{port}/hook")

        print(f"baseline: 1 client process, {args.events} signed POSTs over keep-alive …", flush=True)
        baseline_seconds = baseline(bodies, f"http://127.0.0.1:{port}/baseline")
        baseline_rate = args.events / baseline_seconds

        print(f"gateway: {args.workers} worker processes, batches of {args.batch} …", flush=True)
        close_connections()
        started = time.perf_counter()
        workers = [ctx.Process(target=run_worker, args=(args.batch,)) for _ in range(args.workers)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        worker_seconds = time.perf_counter() - started
        gateway_rate = args.events / worker_seconds

        state = delivery_states()
        stats_queue.put("stats")
        counts: dict = stats_queue.get(timeout=30)
    finally:
        close_connections()
        drop_database()
        receiver.terminate()

    hook = Counter(counts.get("/hook", {}))
    distinct = len(hook)
    duplicates = sum(hook.values()) - distinct
    duplicate_rate = duplicates / max(distinct, 1)
    ratio = gateway_rate / baseline_rate
    print(f"baseline:  {baseline_rate:8.0f} POST/s ({baseline_seconds:.2f} s)")
    print(f"gateway:   {gateway_rate:8.0f} deliveries/s ({worker_seconds:.2f} s), delivery states {state}")
    print(f"receiver:  {distinct} distinct webhook-ids, {duplicates} duplicates ({duplicate_rate:.4%})")
    print(f"ratio:     {ratio:.2f} x baseline")
    targets = {"delivered_all": True, "duplicate_rate_below": 0.001, "throughput_ratio_at_least": 0.5}
    result = {
        "events": args.events,
        "workers": args.workers,
        "delivered_distinct": distinct,
        "duplicates": duplicates,
        "duplicate_rate": round(duplicate_rate, 6),
        "baseline_per_s": round(baseline_rate, 1),
        "deliveries_per_s": round(gateway_rate, 1),
        "throughput_ratio": round(ratio, 3),
        "delivery_states": state,
        "targets": targets,
        "pass": distinct == args.events and duplicate_rate < 0.001 and ratio >= 0.5,
    }
    print(json.dumps(result))
    return 0 if result["pass"] else 1


# --- receiver -------------------------------------------------------------------------------------------------


def run_receiver(port_queue, stats_queue) -> None:
    """A threaded HTTP/1.1 server answering 200 at once and counting ``webhook-id`` per path."""
    counts: dict[str, Counter] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                counts.setdefault(self.path, Counter())[self.headers.get("webhook-id")] += 1
            # One write: headers and body in separate segments would meet the client's delayed ACK (40 ms).
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port_queue.put(server.server_address[1])
    stats_queue.get()  # the request for the figures
    with lock:
        stats_queue.put({path: dict(counter) for path, counter in counts.items()})
    time.sleep(1)  # let the parent read the queue before this process ends


# --- the two measured runs ------------------------------------------------------------------------------------


def baseline(bodies: list[tuple[str, bytes]], url: str) -> float:
    """Seconds one process takes to POST every event, signed, over one keep-alive session."""
    import requests

    from payments_gateway.models import WebhookEndpoint
    from payments_gateway.webhooks.outgoing import signing

    endpoint = WebhookEndpoint.objects.get()
    session = requests.Session()
    session.trust_env = False
    started = time.perf_counter()
    for event_id, body in bodies:
        headers = {"Content-Type": "application/json", **signing.signed_headers(endpoint, event_id, body)}
        response = session.post(url, data=body, headers=headers, timeout=15, allow_redirects=False)
        response.raise_for_status()
    return time.perf_counter() - started


def run_worker(batch: int) -> None:
    """A delivery worker: the service django-q2's task runs, looped until nothing is pending."""
    setup_django()
    from payments_gateway.models import DeliveryState, WebhookDelivery
    from payments_gateway.webhooks.outgoing.delivery import deliver_due

    while True:
        if deliver_due(limit=batch):
            continue
        if not WebhookDelivery.objects.filter(state=DeliveryState.PENDING).exists():
            return
        time.sleep(0.01)  # the rest is claimed by the other worker: wait for it to finish or its lease to end


# --- setup ----------------------------------------------------------------------------------------------------


def emit_events(count: int, url: str) -> list[tuple[str, bytes]]:
    """Create the receiver's endpoint and ``count`` events through the outbox; return (id, body) for the baseline."""
    from django.db import transaction

    from payments_gateway.events import emit
    from payments_gateway.models import Event, WebhookEndpoint
    from payments_gateway.signals import event_emitted
    from payments_gateway.webhooks.outgoing.delivery import event_body

    # The workers below do the delivering: no per-event task in the django-q2 queue.
    event_emitted.disconnect(dispatch_uid="payments_gateway.webhooks.kick")
    WebhookEndpoint.objects.create(url=url)
    payload = {
        "object": "checkout.session", "status": "complete", "payment_status": "paid", "asset": "ETH",
        "network": "anvil", "amount_due": str(10**18), "amount_received": str(10**18),
    }  # fmt: skip
    for start in range(0, count, 1000):
        with transaction.atomic():
            for n in range(start, min(start + 1000, count)):
                emit("payment.completed", payload | {"uuid": f"bench-{n}"})
    return [(e.id, event_body(e)) for e in Event.objects.order_by("created")]


def delivery_states() -> dict[str, int]:
    from django.db.models import Count

    from payments_gateway.models import WebhookDelivery

    return dict(WebhookDelivery.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))


def setup_django() -> None:
    os.environ["DATABASE_URL"] = f"{PG_URL}/{DB_NAME}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "example_shop.settings"
    os.environ["PAYMENTS_GATEWAY_CONFIG"] = os.devnull
    os.environ.setdefault("SHOP_VAR_DIR", tempfile.mkdtemp(prefix="bench-webhooks-"))
    os.environ["DJANGO_DEBUG"] = "0"  # DEBUG would keep every query in memory
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import logging

    logging.getLogger("payments_gateway").setLevel(logging.WARNING)


def close_connections() -> None:
    if "django" in sys.modules:
        from django.db import connections

        connections.close_all()


def _admin_connection():
    import psycopg

    parts = urlsplit(PG_URL)
    return psycopg.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username or "postgres",
        password=parts.password or None, dbname="postgres", autocommit=True,
    )  # fmt: skip


def create_database() -> None:
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database() -> None:
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())

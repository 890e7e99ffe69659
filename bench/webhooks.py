"""Benchmark: outgoing webhook delivery throughput on PostgreSQL against a baseline of plain signed POSTs.

    .venv/bin/python bench/webhooks.py [--events 10000] [--workers 2] [--batch 50]

Creates its own PostgreSQL database (``bench_webhooks`` on ``BENCH_PG_URL``, default
postgres://postgres@127.0.0.1:5432), migrates it, and starts a local receiver process (asyncio, minimal
HTTP/1.1 with keep-alive, so it is not the bottleneck) that counts distinct and duplicate ``webhook-id``s.
Then, in the same run:

1. baseline: one client process POSTs every event, signed, over one keep-alive session (no database);
2. the gateway: N events are emitted through the outbox, and 2 worker processes run the real delivery service
   (claim with skip_locked + lease, POST, record the attempt) until every delivery has succeeded. The clock
   starts once both workers have started and connected (process start-up is not delivery throughput).

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
import time
from collections import Counter
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
        ready, go = ctx.Semaphore(0), ctx.Event()
        workers = [ctx.Process(target=run_worker, args=(args.batch, ready, go)) for _ in range(args.workers)]
        for worker in workers:
            worker.start()
        for _ in workers:
            ready.acquire()  # process start-up and Django set-up are not part of the measurement
        started = time.perf_counter()
        go.set()
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
    """A minimal asyncio HTTP/1.1 server (keep-alive) answering 200 at once and counting ``webhook-id`` per path.

    Parses only what it needs (request line, Content-Length, webhook-id), so it is not the bottleneck of either run.
    """
    import asyncio

    counts: dict[str, Counter] = {}

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.buffer = transport, b""

        def data_received(self, data):
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) != -1:
                head = self.buffer[:end].decode("latin-1").split("\r\n")
                fields = dict(line.split(":", 1) for line in head[1:] if ":" in line)
                fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
                length = int(fields.get("content-length", "0"))
                if len(self.buffer) < end + 4 + length:
                    return  # wait for the rest of the body
                self.buffer = self.buffer[end + 4 + length :]
                path = head[0].split(" ")[1]
                counts.setdefault(path, Counter())[fields.get("webhook-id")] += 1
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Protocol, "127.0.0.1", 0)
        port_queue.put(server.sockets[0].getsockname()[1])
        await loop.run_in_executor(None, stats_queue.get)  # the request for the figures
        stats_queue.put({path: dict(counter) for path, counter in counts.items()})
        await asyncio.sleep(1)  # let the parent read the queue before this process ends

    asyncio.run(serve())


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


def run_worker(batch: int, ready, go) -> None:
    """A delivery worker: the service django-q2's task runs, looped until nothing is pending."""
    setup_django()
    from django.db import connection

    from payments_gateway.models import DeliveryState, WebhookDelivery
    from payments_gateway.webhooks.outgoing.delivery import deliver_due

    connection.ensure_connection()
    ready.release()
    go.wait()

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

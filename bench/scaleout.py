"""Benchmark: sizing figures for README's deployment guide, measured with the production processes on this
machine (PostgreSQL, django-q2 on Redis, gunicorn, qcluster, the scanner).

    .venv/bin/python bench/scaleout.py [--sessions 240] [--clients 8] [--events 400] [--blocks 300]

On a throwaway PostgreSQL database (created and dropped, as bench/sessions.py does) and Redis database 4
(``BENCH_REDIS_URL``; emptied with FLUSHDB, never FLUSHALL), it measures:

1. checkout sessions created per second through ``POST /api/v1/sessions/`` by gunicorn with 1, 2 and 4 sync
   worker processes, ``--clients`` concurrent HTTP clients; ratios to 1 process;
2. webhook deliveries per second by ``manage.py qcluster`` with 1 and 2 workers: ``--events`` events emitted
   through the outbox while no cluster runs (their delivery tasks wait in Redis), then the cluster starts; the
   clock runs from the first attempt to the end of the last (start-up is not throughput); per worker, and the
   ratio of 2 workers to 1;
3. blocks scanned per second by the scanner (``scan_network``, as ``payments_gateway_scan`` runs it) over
   ``--blocks`` anvil blocks, each with a transfer, every tenth paying one of 100 deposit addresses, against a
   baseline of plain JSON-RPC batch reads of the same blocks with their transactions (what any scan must fetch).

This machine has 2 cores shared by the server, the clients, PostgreSQL and Redis: the ratios say how far one
more process helps here. The last line is JSON with the figures and the targets.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sessions import BODY, DEFAULT_PG, Database, free_port, wait_ready  # noqa: E402
from bench.webhooks import run_receiver  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
BIN = Path(sys.executable).parent
WEB_PROCESSES = (1, 2, 4)
CLUSTER_WORKERS = (1, 2)
WATCHED = 100
# One more process must add throughput while cores are free; the scanner must stay within reach of the raw reads.
TARGETS = {"sessions_2_over_1_at_least": 1.2, "deliveries_2_over_1_at_least": 1.2, "scan_over_raw_at_least": 0.2}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=240, help="sessions per web measurement (default 240)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent API clients (default 8)")
    parser.add_argument("--events", type=int, default=400, help="events per delivery measurement (default 400)")
    parser.add_argument("--blocks", type=int, default=300, help="blocks scanned (default 300)")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG))
    args = parser.parse_args()

    from payments_gateway.chain.devchain import start_devchain

    chain = start_devchain()
    try:
        with Database("postgres", args.postgres) as env:
            config_path = Path(env["PAYMENTS_GATEWAY_CONFIG"])
            config = json.loads(config_path.read_text())
            config["NETWORKS"]["anvil"] = chain.network_settings(confirmations=2)
            config_path.write_text(json.dumps(config))
            env |= {"Q_BROKER": "redis", "REDIS_URL": REDIS_URL}
            os.environ.update(env)
            import logging

            import django

            django.setup()
            logging.getLogger("django-q").setLevel(logging.WARNING)  # not a line per queued task
            try:
                web = {n: measure_sessions(env, n, args) for n in WEB_PROCESSES}
                hooks = {w: measure_deliveries(env, w, args.events) for w in CLUSTER_WORKERS}
                scan = measure_scan(chain, args.blocks)
            finally:
                from django.db import connections

                connections.close_all()
    finally:
        chain.stop()

    for n, rate in web.items():
        print(f"sessions:   {n} web process(es): {rate:7.1f}/s  ratio to 1: {rate / web[1]:.2f}")
    for w, rate in hooks.items():
        print(f"deliveries: {w} cluster worker(s): {rate:7.1f}/s  per worker {rate / w:7.1f}/s  "
              f"ratio to 1: {rate / hooks[1]:.2f}")  # fmt: skip
    print(f"scan:       {scan['blocks_per_s']:7.1f} blocks/s  raw reads {scan['raw_blocks_per_s']:7.1f} blocks/s  "
          f"ratio {scan['ratio']:.2f}")  # fmt: skip
    result = {
        "sessions_per_s": {str(n): round(rate, 1) for n, rate in web.items()},
        "sessions_2_over_1": round(web[2] / web[1], 2),
        "sessions_4_over_1": round(web[4] / web[1], 2),
        "deliveries_per_s": {str(w): round(rate, 1) for w, rate in hooks.items()},
        "deliveries_per_s_per_worker": {str(w): round(rate / w, 1) for w, rate in hooks.items()},
        "deliveries_2_over_1": round(hooks[2] / hooks[1], 2),
        "blocks_per_s": scan["blocks_per_s"],
        "raw_blocks_per_s": scan["raw_blocks_per_s"],
        "scan_over_raw": scan["ratio"],
        "cores": os.cpu_count(),
        "targets": TARGETS,
    }
    result["ok"] = (
        result["sessions_2_over_1"] >= TARGETS["sessions_2_over_1_at_least"]
        and result["deliveries_2_over_1"] >= TARGETS["deliveries_2_over_1_at_least"]
        and result["scan_over_raw"] >= TARGETS["scan_over_raw_at_least"]
    )
    print(json.dumps(result))
    return 0 if result["ok"] else 1


# --- 1. sessions through the API ----------------------------------------------------------------------------------


def measure_sessions(env: dict[str, str], workers: int, args) -> float:
    """Sessions per second created by ``args.clients`` concurrent clients against gunicorn with ``workers``."""
    import requests

    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
         "example_shop.wsgi:application"],
        env=env, cwd=ROOT,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    per_client = max(args.sessions // args.clients, 1)

    def client(count: int, failures: list) -> None:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {env['BENCH_API_KEY']}"
        for _ in range(count):
            r = http.post(f"{base_url}/api/v1/sessions/", json=BODY, timeout=60)
            if r.status_code != 201:
                failures.append(r.text[:200])

    try:
        probe = requests.Session()
        wait_ready(probe, base_url, server)
        failures: list[str] = []
        client(5 * workers, failures)  # warm up every worker (imports, connections)
        threads = [threading.Thread(target=client, args=(per_client, failures)) for _ in range(args.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        if failures:
            raise SystemExit(f"bench: {len(failures)} sessions failed, e.g. {failures[0]}")
        return per_client * args.clients / seconds
    finally:
        server.terminate()
        server.wait(10)


# --- 2. webhook deliveries by the cluster -------------------------------------------------------------------------


def measure_deliveries(env: dict[str, str], workers: int, events: int) -> float:
    """Deliveries per second by a qcluster of ``workers`` workers, from the first attempt to the end of the last."""
    import redis
    from django.db import transaction
    from django.db.models import Max, Min

    from payments_gateway.events import emit
    from payments_gateway.models import DeliveryState, Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

    ctx = multiprocessing.get_context("spawn")
    ports, stats = ctx.Queue(), ctx.Queue()
    receiver = ctx.Process(target=run_receiver, args=(ports, stats), daemon=True)
    receiver.start()
    port = ports.get(timeout=30)
    redis.from_url(REDIS_URL).flushdb()
    Event.objects.all().delete()
    WebhookEndpoint.objects.all().delete()
    WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{port}/hook")
    for i in range(events):
        with transaction.atomic():
            emit("customer.created", {"n": i})  # its delivery task is queued in Redis on commit

    cluster = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        env=env | {"DJANGO_SETTINGS_MODULE": "bench.scaleout_settings", "BENCH_Q_WORKERS": str(workers)},
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while WebhookDelivery.objects.exclude(state=DeliveryState.SUCCEEDED).exists():
            if cluster.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("bench: the cluster stopped or did not deliver every event within 600 s")
            time.sleep(0.2)
    finally:
        cluster.terminate()
        cluster.wait(30)
        receiver.terminate()
    span = WebhookAttempt.objects.aggregate(first=Min("started_at"), last=Max("started_at"))
    last = WebhookAttempt.objects.filter(started_at=span["last"]).values_list("duration_ms", flat=True).first() or 0
    seconds = (span["last"] - span["first"]).total_seconds() + last / 1000
    return events / seconds


# --- 3. blocks scanned --------------------------------------------------------------------------------------------


def measure_scan(chain, blocks: int) -> dict:
    """The scanner's blocks per second over ``blocks`` blocks, and plain batch reads of the same blocks."""
    from datetime import timedelta

    import requests
    from django.utils import timezone
    from web3 import Web3

    from payments_gateway.models import ChainCursor, DepositAddress, Transfer
    from payments_gateway.scanning import scan_network

    rng = random.Random(7)
    watched = [Web3.to_checksum_address("0x" + rng.randbytes(20).hex()) for _ in range(WATCHED)]
    busy = timezone.now() + timedelta(days=2)
    DepositAddress.objects.bulk_create(
        DepositAddress(network="anvil", index=i, address=a, busy_until=busy) for i, a in enumerate(watched)
    )
    start = chain.w3.eth.block_number
    ChainCursor.objects.update_or_create(
        network="anvil", defaults={"block_number": start, "block_hash": chain.w3.eth.get_block(start).hash.to_0x_hex()}
    )
    for i in range(blocks):  # automine: one block per transfer
        payee = watched[i // 10 % WATCHED] if i % 10 == 5 else "0x" + rng.randbytes(20).hex()
        chain.send_eth(payee, 10**15, account_index=1 + i % 8)
    end = chain.w3.eth.block_number

    started = time.perf_counter()
    while scan_network("anvil", max_seconds=600).to_block < end:
        pass
    scan_seconds = time.perf_counter() - started
    assert Transfer.objects.filter(network="anvil").count() == blocks // 10, "the scanner missed a payment"

    http = requests.Session()
    started = time.perf_counter()
    for first in range(start + 1, end + 1, 50):
        batch = [{"jsonrpc": "2.0", "id": n, "method": "eth_getBlockByNumber", "params": [hex(n), True]}
                 for n in range(first, min(first + 50, end + 1))]  # fmt: skip
        answers = http.post(chain.rpc_url, json=batch, timeout=60).json()
        assert all(a.get("result") for a in answers)
    raw_seconds = time.perf_counter() - started
    count = end - start
    return {
        "blocks_per_s": round(count / scan_seconds, 1),
        "raw_blocks_per_s": round(count / raw_seconds, 1),
        "ratio": round(raw_seconds / scan_seconds, 3),
    }


if __name__ == "__main__":
    sys.exit(main())

"""``make demo`` (``python -m example_shop.demo``) for real: anvil, migrations, seed, django-q2 cluster (which
scans) and web server as child processes; a purchase paid end to end over HTTP; then Ctrl-C or SIGTERM stops every
process.

The demo always runs on its own SQLite file in a temporary SHOP_VAR_DIR (it is the embedded default), on free
ports, so it never meets a test database, a Redis queue or another demo.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from payments_gateway.money import format_units

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 90  # anvil + contract deployment + migrations on a fresh SQLite file, on a loaded 2-core machine
PAID_SECONDS = 30  # two confirmations at one block a second, found by the cluster's follower
WEBHOOK_SECONDS = 30  # queued at once on commit; the ORM broker polls every 0.2 s
STOP_SECONDS = 30  # the demo's own grace period is 15 s before it kills what is left


def test_demo_sells_and_is_paid_then_ctrl_c_stops_every_process(tmp_path):
    with running_demo(tmp_path) as demo:
        base = demo.url
        http = requests.Session()
        assert http.get(f"{base}/", timeout=10).status_code == 200
        assert http.get(f"{base}/admin/login/", timeout=10).status_code == 200

        order_url, session_url = buy_and_pay(http, base)
        state = wait_paid(http, session_url)
        assert state["amount_received"] == state["amount_due"]
        # "Continue" leads to the shop's success page, which checks the session on the server.
        page = http.get(f"{session_url}continue", timeout=10)
        assert "/paid/?session=" in page.url
        assert 'data-paid="true"' in page.text
        assert "your order is paid" in page.text
        # The demo's django-q2 cluster delivered payment.completed to the shop's own receiver, which verified it
        # and recorded it against the order.
        order_uuid = order_url.rstrip("/").rsplit("/", 1)[1]
        delivery = wait_shop_webhook(demo.database, order_uuid)
        assert delivery == ("succeeded", 200, "order paid"), delivery

        # The printed login works, and the merchant finds the paid session in the admin.
        login_in_admin(http, base, demo.user, demo.password)
        session_uuid = session_url.rstrip("/").rsplit("/", 1)[1]
        admin_list = http.get(f"{base}/admin/payments_gateway/checkoutsession/", timeout=10)
        assert admin_list.status_code == 200
        assert session_uuid in admin_list.text

        # The payment sits at a forwarder deposit address; "Sweep now" moves it to the treasury.
        sweep_and_see_the_treasury_grow(http, base, demo.database, state["amount_received"])

        tree = demo.process_tree()
        # Ctrl-C in a terminal: SIGINT to the whole foreground process group.
        os.killpg(demo.process.pid, signal.SIGINT)
        demo.assert_stopped(tree)
        assert "demo: stopping" in demo.output()


def test_demo_stops_every_process_on_sigterm_to_the_parent_alone(tmp_path):
    with running_demo(tmp_path) as demo:
        assert requests.get(f"{demo.url}/", timeout=10).status_code == 200
        tree = demo.process_tree()
        demo.process.send_signal(signal.SIGTERM)
        demo.assert_stopped(tree)


# --- the flow, as a customer's browser sends it ---------------------------------------------------------------------


def buy_and_pay(http: requests.Session, base: str) -> tuple[str, str]:
    """Product → cart → order → "Pay with crypto" (USDC on the dev chain) → "Pay with test wallet".

    Returns the order page's and the hosted page's URLs.
    """
    products = http.get(f"{base}/", timeout=10)
    # The first product sold by the piece (a subscription, the coffee club, has no "Add to cart").
    slug = next(
        slug
        for slug in re.findall(r'href="/products/([\w-]+)/"', products.text)
        if f'action="/products/{slug}/add/"' in http.get(f"{base}/products/{slug}/", timeout=10).text
    )
    cart = post(http, base, f"/products/{slug}/add/", {"quantity": "2"})
    assert cart.url == f"{base}/cart/"
    order = post(http, base, "/cart/order/", {})
    assert re.fullmatch(rf"{base}/orders/[0-9a-f-]{{36}}/", order.url), order.url
    options = re.findall(r'<option value="([^"]+)"', order.text)
    assert "anvil:USDC" in options, options
    hosted = post(http, base, order.url.removeprefix(base) + "pay/", {"option": "anvil:USDC"})
    assert re.fullmatch(rf"{base}/pay/[0-9a-f-]{{36}}/", hosted.url), hosted.url
    assert "test wallet" in hosted.text
    paid = post(http, base, hosted.url.removeprefix(base) + "test-pay", {"amount": "full"})
    assert paid.url == hosted.url
    assert "Test wallet sent" in paid.text, "the test wallet did not pay"
    return order.url, hosted.url


def wait_paid(http: requests.Session, session_url: str) -> dict:
    """Poll the status JSON until the cluster's follower has seen enough confirmations."""
    deadline = time.monotonic() + PAID_SECONDS
    while True:
        state = http.get(f"{session_url}status", timeout=10).json()
        if state["status"] == "complete":
            assert state["payment_status"] == "paid", state
            return state
        assert state["status"] == "open", state
        assert time.monotonic() < deadline, f"not paid within {PAID_SECONDS} s: {state}"
        time.sleep(0.3)


def wait_shop_webhook(database: Path, order_uuid: str) -> tuple[str, int, str]:
    """The delivery of the order's payment.completed that the shop's receiver recorded: (state, HTTP status,
    what the receiver answered). Read from the demo's SQLite file, read-only."""
    query = """
        SELECT d.state, d.last_status_code, d.last_response FROM shop_processedwebhook w
        JOIN payments_gateway_order o ON o.id = w.order_id
        JOIN payments_gateway_webhookdelivery d ON d.event_id = w.webhook_id
        WHERE w.event_type = 'payment.completed' AND o.uuid = ?
    """
    deadline = time.monotonic() + WEBHOOK_SECONDS
    while True:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as db:
            row = db.execute(query, [order_uuid.replace("-", "")]).fetchone()
        if row and row[0] == "succeeded":
            return row[0], row[1], json.loads(row[2])["status"]
        assert time.monotonic() < deadline, f"payment.completed not delivered to the shop within {WEBHOOK_SECONDS} s"
        time.sleep(0.3)


def sweep_and_see_the_treasury_grow(http: requests.Session, base: str, database: Path, units: str) -> None:
    """Admin → Sweeps → "Sweep now" (the demo's worker may have swept already, by the sweep policy); then the
    Sweeps page shows the treasury holding what was paid, read on chain."""
    page = http.get(f"{base}/admin/payments_gateway/sweep/", timeout=10)
    assert "Sweep now" in page.text and "pg-relayer-low" not in page.text
    swept = post(http, base, "/admin/payments_gateway/sweep/sweep-now/", {})
    sent_now = "1 sweep(s) sent." in swept.text
    assert sent_now or "Nothing to sweep." in swept.text, swept.text[-2000:]
    if sent_now:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as db:
            (message,) = db.execute("SELECT change_message FROM django_admin_log").fetchone()
        assert message.startswith("Sweep now: USDC from 1 addresses"), message
    expected = f'class="pg-treasury">{format_units(int(units), 6)} USDC'
    deadline = time.monotonic() + PAID_SECONDS
    while expected not in (page := http.get(f"{base}/admin/payments_gateway/sweep/", timeout=10)).text:
        assert time.monotonic() < deadline, f"the treasury did not receive the payment: {page.text[-3000:]}"
        time.sleep(0.3)


def login_in_admin(http: requests.Session, base: str, user: str, password: str) -> None:
    http.get(f"{base}/admin/login/", timeout=10)
    page = post(http, base, "/admin/login/?next=/admin/", {"username": user, "password": password})
    assert page.url == f"{base}/admin/", "the printed admin login does not work"
    assert "Site administration" in page.text


def post(http: requests.Session, base: str, path: str, data: dict) -> requests.Response:
    """A form POST with Django's CSRF token, following the redirect like a browser."""
    token = http.cookies.get("csrftoken")
    assert token, f"no CSRF cookie before posting to {path}"
    response = http.post(f"{base}{path}", data={**data, "csrfmiddlewaretoken": token}, headers={"Referer": base},
                         timeout=30)  # fmt: skip
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    return response


# --- running the demo -----------------------------------------------------------------------------------------------


@dataclass
class Demo:
    process: subprocess.Popen
    port: int
    chain_port: int
    var: Path
    lines: list[str] = field(default_factory=list)
    user: str = ""
    password: str = ""
    seen: dict[int, tuple[str, str]] = field(default_factory=dict)  # every descendant seen, to clean up after a failure

    @property
    def database(self) -> Path:
        return self.var / "shop.sqlite3"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return "".join(self.lines)

    def process_tree(self) -> dict[int, tuple[str, str]]:
        """Every live descendant of the demo: pid → (start time, command line)."""
        tree = descendants(self.process.pid)
        self.seen |= tree
        commands = " ".join(command for _, command in tree.values())
        for expected in ("payments_gateway_devchain", "anvil", "qcluster", "uvicorn example_shop.asgi"):
            assert expected in commands, f"no {expected} process under the demo: {commands}"
        return tree

    def assert_stopped(self, tree: dict[int, tuple[str, str]]) -> None:
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the demo did not exit within {STOP_SECONDS} s:\n{self.output()[-3000:]}")
        for port in (self.port, self.chain_port):
            with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
                sock.connect(("127.0.0.1", port))
        # The children stopped before the demo exited, so nothing is left even a moment later.
        left = {pid: command for pid, (started, command) in tree.items() if alive(pid, started)}
        assert not left, f"processes left running after the demo exited: {left}"
        assert self.process.returncode == 0, self.output()[-3000:]
        assert "demo: killing" not in self.output(), "a child did not stop on SIGTERM within the demo's grace period"


@contextlib.contextmanager
def running_demo(tmp_path: Path):
    port, chain_port = free_ports(2)
    var = tmp_path / "var"
    env = {
        key: value
        for key, value in os.environ.items()
        # Its own SQLite file and ORM queue, never the test run's PostgreSQL database or Redis queue.
        if key not in {"DATABASE_URL", "Q_BROKER", "REDIS_URL", "PAYMENTS_GATEWAY_CONFIG", "DJANGO_SETTINGS_MODULE"}
    }
    env |= {"SHOP_VAR_DIR": str(var), "DEMO_PORT": str(port), "DEMO_CHAIN_PORT": str(chain_port)}
    # Its own session, like a terminal's foreground job: the test can send SIGINT to the group as Ctrl-C does.
    process = subprocess.Popen([sys.executable, "-m", "example_shop.demo"], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    demo = Demo(process, port, chain_port, var)
    reader = threading.Thread(target=lambda: demo.lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_banner(demo)
        demo.seen |= descendants(process.pid)
        yield demo
    finally:
        # After a failure, leave nothing behind for the next test (even when the demo itself left orphans).
        if process.poll() is None:
            demo.seen |= descendants(process.pid)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid, (started, _) in demo.seen.items():
            if alive(pid, started):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        reader.join(timeout=5)


def wait_banner(demo: Demo) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while "Ctrl-C stops everything." not in demo.output():
        assert demo.process.poll() is None, f"the demo exited ({demo.process.returncode}):\n{demo.output()[-3000:]}"
        assert time.monotonic() < deadline, f"no banner within {STARTUP_SECONDS} s:\n{demo.output()[-3000:]}"
        time.sleep(0.2)
    output = demo.output()
    assert f"Example shop:   {demo.url}/" in output
    assert f"Merchant admin: {demo.url}/admin/" in output
    demo.user, demo.password = re.search(r"\(login: (\S+) / (\S+)\)", output).groups()


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def descendants(root: int) -> dict[int, tuple[str, str]]:
    """The live processes under ``root`` (from /proc): pid → (start time, command line)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parents[int(entry.name)] = int(stat_fields(int(entry.name))[1])
    found: dict[int, tuple[str, str]] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                with contextlib.suppress(OSError, IndexError):
                    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    found[pid] = (stat_fields(pid)[19], command)
                    frontier.append(pid)
    return found


def alive(pid: int, started: str) -> bool:
    """The same process (pid and start time) still runs; a zombie has stopped (only its exit status is left)."""
    try:
        fields = stat_fields(pid)
    except OSError:
        return False
    return fields[19] == started and fields[0] != "Z"


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: state, ppid, ... (field 22, the start time, is index 19)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

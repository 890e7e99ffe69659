"""``make demo``: the example shop on the embedded defaults, with every process it needs.

Starts anvil with the test tokens (``payments_gateway_devchain --forwarder``: deposit addresses are forwarder
addresses swept to a dev treasury, signed with a public anvil test key), migrates, seeds the shop and an admin login,
then runs the documented processes only: a django-q2 cluster (its workers follow the chain: one follower task per
network scans at every new head) and the ASGI web server (uvicorn, ``example_shop.asgi``: the checkout pages' push
channel holds no thread per page) on 127.0.0.1:8000, until Ctrl-C, which stops every child process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("SHOP_VAR_DIR", ROOT / "var"))
CONFIG = VAR / "payments_gateway.json"
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"
HOST = "127.0.0.1"
# Signs the demo's forwarder sweeps: anvil's default account 9, a public test key (dev money only). In production
# the relayer key comes from the environment of the processes that sweep, never from a file like this one.
DEV_RELAYER_KEY = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"


def _port(variable: str, default: int) -> int:
    value = os.environ.get(variable, str(default))
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SystemExit(f"demo: {variable} must be a TCP port number (1-65535), not {value!r}")
    return int(value)


PORT = _port("DEMO_PORT", 8000)
CHAIN_PORT = _port("DEMO_CHAIN_PORT", 8545)


def main() -> int:
    # Ctrl-C in a terminal, SIGTERM to this process alone, or a closed terminal: each ends in stop() below. Set
    # explicitly, since a shell that starts us in the background hands us SIGINT ignored.
    for signum in STOP_SIGNALS:
        signal.signal(signum, _interrupt)
    for port, variable in ((PORT, "DEMO_PORT"), (CHAIN_PORT, "DEMO_CHAIN_PORT")):
        if listening(HOST, port):
            print(f"demo: {HOST}:{port} is already in use; choose another port with {variable}=…", file=sys.stderr)
            return 1
    VAR.mkdir(exist_ok=True)
    CONFIG.unlink(missing_ok=True)
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "example_shop.settings",  # the demo is the example shop, whatever the shell says
        "PAYMENTS_GATEWAY_CONFIG": str(CONFIG),
        "PAYMENTS_GATEWAY_RELAYER_KEY": DEV_RELAYER_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    children: list[subprocess.Popen] = []
    try:
        children.append(start("devchain", ["manage.py", "payments_gateway_devchain", "--port", str(CHAIN_PORT),
                                           "--forwarder", "--write-config", str(CONFIG)], env))  # fmt: skip
        wait_for(CONFIG.exists, children[0], f"writing {CONFIG}")
        manage(["migrate", "--noinput"], env)
        manage(["seed_shop"], env)
        manage(["shell", "--verbosity", "0", "-c", CREATE_ADMIN], env)
        children.append(start("workers", ["manage.py", "qcluster"], env))
        children.append(start("web", ["-m", "uvicorn", "example_shop.asgi:application", "--host", HOST,
                                      "--port", str(PORT), "--log-level", "warning"], env))  # fmt: skip
        # The URLs are printed once they answer, not before.
        wait_for(lambda: listening(HOST, PORT), children[-1], f"listening on {HOST}:{PORT}")
        print(BANNER.format(host=HOST, port=PORT, user=ADMIN_USER, password=ADMIN_PASSWORD), flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = next(child for child in children if child.poll() is not None)
        print(f"demo: {failed.args[2]} stopped (exit {failed.returncode}); stopping the others.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: stopping…", flush=True)
        return 0
    finally:
        stop(children)
        # Its chain is gone: a stale config would point the shop (and `manage.py check`) at a forwarder network
        # whose relayer key only the demo's processes had.
        CONFIG.unlink(missing_ok=True)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum, frame):
    # Once: a second Ctrl-C before stop() takes over would break out of the clean-up; stop() then handles it.
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise KeyboardInterrupt


CREATE_ADMIN = f"""
from django.contrib.auth import get_user_model
User = get_user_model()
if not User.objects.filter(username={ADMIN_USER!r}).exists():
    User.objects.create_superuser({ADMIN_USER!r}, "admin@example.com", {ADMIN_PASSWORD!r})
"""

BANNER = """
  Example shop:   http://{host}:{port}/
  Merchant admin: http://{host}:{port}/admin/   (login: {user} / {password})
  API schema:     http://{host}:{port}/api/v1/schema/

  Buy something, choose "Pay with crypto" (any coin: pick it on the payment page), then "Pay with test wallet"
  or your browser wallet (it may add the dev chain) on the checkout page.
  Payments land on forwarder deposit addresses: Admin > Sweeps > "Sweep now" moves them to the treasury (its
  balance is on that page and the dashboard).
  Ctrl-C stops everything.
"""


def manage(args: list[str], env: dict[str, str]) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], check=True, env=env, cwd=ROOT)


def start(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """``python <args>`` (``manage.py ...`` or ``-m uvicorn ...``): its name is ``args[2]`` of the Popen."""
    print(f"demo: starting {name}", flush=True)
    # Own session and process group: a terminal's Ctrl-C reaches only us, and stop() stops each child its own way.
    return subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, start_new_session=True)


def wait_for(ready: Callable[[], bool], process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    """Poll ``ready()`` until it is true; stop with a clear message if ``process`` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise SystemExit(f"demo: {process.args[2]} stopped (exit {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: {process.args[2]} did not get to {what} within {timeout:.0f} s")
        time.sleep(0.2)


def listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def stop(children: list[subprocess.Popen], timeout: float = 15) -> None:
    """Stop every child and everything it started; a second Ctrl-C (or the timeout) kills what is left.

    SIGTERM goes to each child alone, never to its whole group: each stops its own children in order (the dev chain
    stops anvil; qcluster stops its sentinel, which stops the workers). Signalling the group would kill qcluster's
    sentinel under it, and qcluster then hangs forever waiting for it. Whatever is still in a child's process
    group afterwards is killed.
    """
    hurry = False

    def on_signal(signum, frame):
        nonlocal hurry
        hurry = True

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    for child in reversed(children):
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + timeout
    while not hurry and time.monotonic() < deadline and any(child.poll() is None for child in children):
        time.sleep(0.1)
    for child in children:
        if child.poll() is None:
            print(f"demo: killing {child.args[2]} (pid {child.pid})", file=sys.stderr, flush=True)
    # Then the rest of each group (anvil if its parent died first, qcluster's workers): until none answers.
    for _ in range(50):
        remaining = [child for child in children if _kill_group(child.pid)]
        for child in children:
            child.poll()  # reap a killed child, or its group never empties
        if not remaining:
            break
        time.sleep(0.1)


def _kill_group(pgid: int) -> bool:
    """SIGKILL the process group; False once it has no member left."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())

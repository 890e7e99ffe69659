"""``make demo``: the example shop on the embedded defaults, with every process it needs.

Starts anvil with the test tokens (``payments_gateway_devchain``), migrates, seeds the shop and an admin login,
then runs the scanner, a django-q2 cluster and the web server on 127.0.0.1:8000 until Ctrl-C, which stops every
child process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("SHOP_VAR_DIR", ROOT / "var"))
CONFIG = VAR / "payments_gateway.json"
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"
HOST = "127.0.0.1"
PORT = int(os.environ.get("DEMO_PORT", "8000"))
CHAIN_PORT = int(os.environ.get("DEMO_CHAIN_PORT", "8545"))


def main() -> int:
    VAR.mkdir(exist_ok=True)
    CONFIG.unlink(missing_ok=True)
    env = os.environ | {"PAYMENTS_GATEWAY_CONFIG": str(CONFIG), "PYTHONUNBUFFERED": "1"}
    children: list[subprocess.Popen] = []
    try:
        children.append(start("devchain", ["payments_gateway_devchain", "--port", str(CHAIN_PORT), "--write-config",
                                           str(CONFIG)], env))  # fmt: skip
        wait_for(CONFIG, children[0])
        manage(["migrate", "--noinput"], env)
        manage(["seed_shop"], env)
        manage(["shell", "-c", CREATE_ADMIN], env)
        children.append(start("scanner", ["payments_gateway_scan", "--loop"], env))
        children.append(start("workers", ["qcluster"], env))
        children.append(start("web", ["runserver", f"{HOST}:{PORT}", "--noreload"], env))
        print(BANNER.format(host=HOST, port=PORT, user=ADMIN_USER, password=ADMIN_PASSWORD), flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = next(child for child in children if child.poll() is not None)
        print(f"demo: a child process stopped (exit {failed.returncode}); stopping the others.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: stopping…", flush=True)
        return 0
    finally:
        stop(children)


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

  Buy something, choose "Pay with crypto", then "Pay with test wallet" on the checkout page.
  Ctrl-C stops everything.
"""


def manage(args: list[str], env: dict[str, str]) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], check=True, env=env, cwd=ROOT)


def start(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    print(f"demo: starting {name}", flush=True)
    # Own process group, so Ctrl-C reaches us first and we stop each child (and its children) in order.
    return subprocess.Popen([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, start_new_session=True)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise SystemExit(f"demo: the dev chain stopped before writing {path} (exit {process.returncode})")
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: the dev chain did not write {path} within {timeout:.0f} s")
        time.sleep(0.2)


def stop(children: list[subprocess.Popen]) -> None:
    for child in reversed(children):
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in reversed(children):
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


if __name__ == "__main__":
    sys.exit(main())

"""Running anvil, Foundry's local node (installed from npm into ``node_modules/``): find it, start it, stop it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ANVIL_CHAIN_ID = 31337
_ANVIL_NPM_PATH = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
_REPO_ROOT = Path(__file__).resolve().parents[2]


class DevChainError(RuntimeError):
    """anvil is missing, did not start, or a dev-chain call failed."""


@dataclass
class AnvilProcess:
    """A running anvil node. ``stop()`` (or leaving the ``with`` block) ends it."""

    process: subprocess.Popen
    rpc_url: str
    port: int
    block_time: int | None
    log_path: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def private_keys(self) -> list[str]:
        """Private keys of the default accounts, as anvil reported them (public test keys)."""
        return list(self.config.get("private_keys", []))

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        shutil.rmtree(self.log_path.parent, ignore_errors=True)

    def __enter__(self) -> AnvilProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def find_anvil() -> str:
    """Path of the anvil binary: ``$ANVIL_BIN``, the repo's npm install, or ``anvil`` on PATH."""
    env = os.environ.get("ANVIL_BIN")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise DevChainError(f"ANVIL_BIN={env!r} is not an executable file; unset it or run `make setup`.")
        return env
    for root in (_REPO_ROOT, Path.cwd()):
        candidate = root / _ANVIL_NPM_PATH
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    on_path = shutil.which("anvil")
    if on_path:
        return on_path
    raise DevChainError(
        "anvil (Foundry's dev node) was not found: run `make setup` (installs @foundry-rs/anvil from npm into "
        "node_modules/) or set ANVIL_BIN to the anvil binary."
    )


def start_anvil(
    port: int = 0,
    block_time: int | None = None,
    *,
    host: str = "127.0.0.1",
    chain_id: int = ANVIL_CHAIN_ID,
    accounts: int = 10,
    extra_args: tuple[str, ...] = (),
    timeout: float = 30,
    detach: bool = False,
) -> AnvilProcess:
    """Start anvil and wait until it answers. ``port=0`` picks a free port; ``block_time=None`` mines one block
    per transaction (automine), an int mines every that many seconds. ``detach=True`` puts anvil in its own
    session so it outlives this process (stop it with ``kill <pid>``)."""
    binary = find_anvil()
    attempts = 3 if port == 0 else 1  # a free port found by binding can be taken before anvil binds it
    last_error = ""
    for _ in range(attempts):
        chosen = port or _free_port(host)
        workdir = Path(tempfile.mkdtemp(prefix="pg-anvil-"))
        log_path = workdir / "anvil.log"
        config_path = workdir / "anvil.json"
        args = [
            binary,
            "--host", host,
            "--port", str(chosen),
            "--chain-id", str(chain_id),
            "--accounts", str(accounts),
            "--config-out", str(config_path),
            *extra_args,
        ]  # fmt: skip
        if block_time is not None:
            args += ["--block-time", str(block_time)]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=detach
            )
        rpc_url = f"http://{host}:{chosen}"
        if _wait_ready(process, rpc_url, timeout):
            config = json.loads(config_path.read_text()) if config_path.is_file() else {}
            return AnvilProcess(process, rpc_url, chosen, block_time, log_path, config)
        process.kill()
        process.wait()
        last_error = log_path.read_text(errors="replace")[-2000:]
    if port and not _free_port(host, port):
        raise DevChainError(f"port {port} on {host} is already in use (another anvil?): choose another port")
    raise DevChainError(f"anvil did not start on {host}:{port or 'a free port'}: {last_error.strip() or 'no output'}")


def _free_port(host: str, port: int = 0) -> int:
    """``port`` (0: any free one) if it can be bound now, else 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return 0
        return sock.getsockname()[1]


def _wait_ready(process: subprocess.Popen, rpc_url: str, timeout: float) -> bool:
    import requests

    deadline = time.monotonic() + timeout
    payload: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if requests.post(rpc_url, json=payload, timeout=2).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.05)
    return False

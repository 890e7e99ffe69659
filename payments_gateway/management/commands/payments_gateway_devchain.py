"""``manage.py payments_gateway_devchain``: a local anvil chain with the test tokens, for the demo and development."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ...chain.devchain import DevChainError, start_devchain


class Command(BaseCommand):
    help = (
        "Start anvil on 127.0.0.1, deploy test USDC/USDT/DAI, Multicall3 and an ETH/USD price feed, fund anvil's "
        "default accounts, and print the PAYMENTS_GATEWAY NETWORKS entry. Runs until Ctrl-C unless --detach."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8545, help="port to listen on (default 8545; 0: any free)")
        parser.add_argument(
            "--block-time",
            type=int,
            default=1,
            help="seconds between blocks (default 1, so confirmations progress); 0: one block per transaction",
        )
        parser.add_argument("--confirmations", type=int, default=2, help="confirmations in the printed settings")
        parser.add_argument("--network", default="anvil", help='network name in the settings (default "anvil")')
        parser.add_argument(
            "--forwarder",
            action="store_true",
            help='deposit_scheme "forwarder" in the printed settings: the deployed ForwarderFactory and a dev treasury '
            "(sign sweeps with the printed relayer key, anvil's public test account 9)",
        )
        parser.add_argument(
            "--write-config",
            metavar="FILE",
            help='also write {"NETWORKS": {name: entry}} as JSON to FILE (the example shop reads '
            "var/payments_gateway.json)",
        )
        parser.add_argument(
            "--detach",
            "--no-wait",
            action="store_true",
            dest="detach",
            help="leave anvil running in the background and exit (prints its pid)",
        )

    def handle(self, *args, host, port, block_time, confirmations, network, forwarder, write_config, detach, **options):
        if not 0 <= port <= 65535:
            raise CommandError(f"--port must be 0..65535, not {port}")
        if block_time < 0:
            raise CommandError(f"--block-time must be 0 (automine) or more seconds, not {block_time}")
        if confirmations < 1:
            raise CommandError(f"--confirmations must be at least 1, not {confirmations}")
        try:
            chain = start_devchain(port=port, block_time=block_time or None, host=host, detach=detach)
        except DevChainError as exc:
            raise CommandError(str(exc)) from None
        try:
            entry = chain.network_settings(confirmations=confirmations, forwarder=forwarder)
            config = {"NETWORKS": {network: entry}}
            self.stdout.write(json.dumps(config, indent=2))
            if write_config:
                _write_json(Path(write_config), config)
                self.stderr.write(f"wrote {write_config}")
            if forwarder:
                self.stderr.write(
                    f"forwarder deposit addresses sweep to the dev treasury {chain.treasury}; sign sweeps with anvil's "
                    f"public test account {chain.accounts[9]}: export PAYMENTS_GATEWAY_RELAYER_KEY={chain.relayer_key}"
                )
            assert chain.anvil is not None  # started here
            self.stderr.write(
                f"anvil (pid {chain.anvil.process.pid}) at {chain.rpc_url}, chain id {chain.chain_id}; customers: "
                f"anvil's default accounts {chain.accounts[0]} ... (each with 10000 ETH and 1,000,000 of each token)"
            )
        except BaseException:
            chain.stop()
            raise
        if detach:
            assert chain.anvil is not None
            self.stderr.write(f"detached: stop it with `kill {chain.anvil.process.pid}`")
            return
        self._wait(chain)

    def _wait(self, chain) -> None:
        # SIGTERM (the demo stopping its children) ends the wait like Ctrl-C does, so anvil is always stopped.
        def on_term(signum, frame):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, on_term)
        self.stderr.write("running; Ctrl-C stops the chain")
        try:
            while chain.anvil.process.poll() is None:
                time.sleep(0.5)
            raise CommandError(f"anvil exited unexpectedly (exit code {chain.anvil.process.returncode})")
        except KeyboardInterrupt:
            self.stderr.write("stopping anvil")
        finally:
            signal.signal(signal.SIGTERM, previous)
            chain.stop()


def _write_json(path: Path, data: dict) -> None:
    """Write atomically: a reader polling for the file never sees it half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)

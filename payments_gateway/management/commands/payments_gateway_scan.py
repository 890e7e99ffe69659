"""``manage.py payments_gateway_scan [--network NAME ...] [--once | --loop [--interval S]]``."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from ...conf import gateway_settings
from ...scanning import scan_network


class Command(BaseCommand):
    help = (
        "Scan the configured networks for payments to deposit addresses. --once (the default) scans each network "
        "up to its head and exits; --loop repeats every SCAN_INTERVAL seconds (default: the shortest block_time)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--network", action="append", dest="networks", metavar="NAME",
                            help="Scan only this network (repeatable). Default: every configured network.")  # fmt: skip
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--once", action="store_true", help="Scan once and exit (the default).")
        mode.add_argument("--loop", action="store_true", help="Scan forever, every --interval seconds.")
        parser.add_argument("--interval", type=Decimal, help="Seconds between scans with --loop.")

    def handle(self, *args: Any, networks: list[str] | None, loop: bool, interval: Decimal | None, **options: Any):
        self.verbosity = options["verbosity"]
        try:
            configured = gateway_settings.networks
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc))
        names = networks or sorted(configured)
        unknown = [n for n in names if n not in configured]
        if unknown:
            known = ", ".join(sorted(configured)) or "none"
            raise CommandError(f"unknown network {', '.join(map(repr, unknown))}; configured networks: {known}")
        if not names:
            raise CommandError("no networks configured: add PAYMENTS_GATEWAY['NETWORKS'].")
        if interval is not None and interval <= 0:
            raise CommandError("--interval must be a positive number of seconds.")
        delay = interval or gateway_settings.SCAN_INTERVAL or min(configured[n].block_time for n in names)
        failures = 0
        try:
            while True:
                started = time.monotonic()
                failures = sum(not self._scan(name) for name in names)
                if not loop:
                    break
                time.sleep(max(float(delay) - (time.monotonic() - started), 0.05))
                # As between two requests: a connection the database dropped (restart, pg_terminate_backend, a
                # failover) is replaced instead of failing every scan after it.
                close_old_connections()
        except KeyboardInterrupt:
            # Ctrl-C (or the demo stopping): a range is committed whole or not at all, so stopping here is safe.
            self.stdout.write("scanner stopped")
            return
        if failures:
            raise CommandError(f"{failures} of {len(names)} networks failed to scan (see the log above).")

    def _scan(self, name: str) -> bool:
        try:
            result = scan_network(name)
        except Exception as exc:  # one failing network must not stop the others; scan_network logged it
            self.stderr.write(f"{name}: scan failed: {exc}")
            return False
        if result.status == "busy":
            self.stdout.write(f"{name}: another scanner holds the lease; skipped")
        elif self.verbosity > 1 or result.transfers or result.confirmed or result.reverted or result.reorg_depth:
            self.stdout.write(
                f"{name}: blocks {result.from_block}..{result.to_block} (head {result.head}): "
                f"{result.transfers} transfers, {result.confirmed} confirmed, {result.reverted} reverted"
                + (f", reorg of {result.reorg_depth} blocks" if result.reorg_depth else "")
            )
        return True

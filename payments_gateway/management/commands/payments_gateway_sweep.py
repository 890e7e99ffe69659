"""``manage.py payments_gateway_sweep``: show or run the forwarder sweep plan; deploy a ForwarderFactory."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from ...chain.rpc import RPCError
from ...conf import gateway_settings
from ...services.forwarder_factory import DeployError, deploy_factory
from ...services.sweeps import Batch, run_sweeps


class Command(BaseCommand):
    help = (
        "Forwarder deposit scheme: print the sweep plan of each forwarder network (which deposit addresses, how "
        "much, estimated gas, due or not and why) and send the due sweeps, signed with the relayer key from the "
        "environment. --dry-run only prints. --deploy-factory deploys a ForwarderFactory on --network."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="print the plan, send nothing")
        parser.add_argument("--network", action="append", default=[], help="only this network (repeatable)")
        parser.add_argument("--asset", help="only this asset symbol (e.g. USDC; the native coin: ETH only)")
        parser.add_argument("--force", action="store_true", help="send every batch, whatever the sweep policy says")
        parser.add_argument(
            "--deploy-factory", action="store_true", help="deploy a ForwarderFactory on --network with the relayer key"
        )

    def handle(self, *args, dry_run, network, asset, force, deploy_factory, **options):
        if deploy_factory:
            return self._deploy(network)
        names = network or [n for n, c in sorted(gateway_settings.networks.items()) if c.deposit_scheme == "forwarder"]
        if not names:
            raise CommandError('no network uses deposit_scheme "forwarder": there is nothing to sweep')
        problems = []
        for name in names:
            try:
                config = gateway_settings.network(name)
                if asset:
                    config.asset(asset)
                run = run_sweeps(name, asset, dry_run=dry_run, force=force)
            except (ValueError, ImproperlyConfigured, RPCError) as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"network {name}: {len(run.batches)} batch(es){' (dry run)' if dry_run else ''}")
            for batch in run.batches:
                self.stdout.write("  " + describe(batch))
            for sweep in run.sent:
                self.stdout.write(f"  sent {sweep.tx_hash} ({sweep.status}{': ' + sweep.error if sweep.error else ''})")
            problems += run.problems
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} problem(s): sweeps wait, the funds stay at their deposit addresses")

    def _deploy(self, networks: list[str]) -> None:
        if len(networks) != 1:
            raise CommandError("--deploy-factory needs exactly one --network")
        try:
            deployed = deploy_factory(networks[0])
        except (ValueError, ImproperlyConfigured, RPCError, DeployError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"ForwarderFactory deployed on {deployed.network} at {deployed.address} (tx {deployed.tx_hash}, "
            f"{deployed.gas_used} gas). Set PAYMENTS_GATEWAY['NETWORKS'][{deployed.network!r}]['forwarder_factory'] "
            f"= {deployed.address!r}, with 'deposit_scheme': 'forwarder' and your 'treasury'."
        )


def describe(batch: Batch) -> str:
    """One line of the plan: what, from how many addresses, to where, at what cost, and whether it is due."""
    amount = Decimal(batch.amount).scaleb(-batch.asset.decimals).normalize()
    indexes = [row.index for row, _ in batch.addresses]
    shown = ", ".join(map(str, indexes[:8])) + (", …" if len(indexes) > 8 else "")
    state = "REFUSED" if batch.refused else "DUE " if batch.due else "wait"
    return (
        f"{state} {format(amount, 'f')} {batch.asset.symbol} from {len(indexes)} "
        f"address(es) [{shown}] to {batch.treasury}; ~{batch.gas} gas; {batch.reason}"
    )

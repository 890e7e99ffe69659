"""``manage.py payments_gateway_check``: one line per problem, for cron or a container health check.

Exit status: 0 and an ``OK: ...`` summary when nothing is wrong; 1 when there are only warnings (something could
not be verified); 2 with any error. The system checks do not run first: a broken setting is a finding line too.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...operations.check import run_check
from ...schedules import SCHEDULES


class Command(BaseCommand):
    help = (
        "Check that payments can be taken: RPC URLs and chain ids, the deposit scheme (xpub, or the forwarder factory "
        "and relayer gas), the task broker, django-q2 clusters and schedules, scanner lag, webhook delivery backlog. "
        "Prints one line per problem; exit status 0 OK, 1 warnings only, 2 errors."
    )
    requires_system_checks: list[str] = []  # reported as findings instead of a traceback

    def handle(self, *args: Any, **options: Any) -> None:
        report = run_check(list(SCHEDULES))
        for finding in report.findings:
            self.stdout.write(finding.line())
        if not report.findings:
            self.stdout.write(report.summary())
        if report.exit_code:
            raise SystemExit(report.exit_code)

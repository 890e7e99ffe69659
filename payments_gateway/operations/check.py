"""``payments_gateway_check``: everything an operator must fix, one :class:`Finding` each.

Looked at, in order: the settings (the ``payments_gateway`` system checks), every network (each RPC URL reachable
and serving the configured chain id; its deposit scheme: the xpub derives addresses, a forwarder factory is
deployed with the expected code and the relayer holds enough gas), the task broker, the django-q2 clusters and
the gateway's schedules, each scanner's lag behind the chain head (read now), and the webhook delivery backlog.
A part that cannot be looked at because another failed (no RPC URL answers, so no head) says so once, in the
failing part's finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.core import checks
from django.db import DatabaseError
from django.utils import timezone

from ..chain.rpc import RPCError, client_for
from ..chain.rpc_errors import shown_url
from ..conf import NetworkConfig, gateway_settings
from . import probes

ERROR, WARNING = "ERROR", "WARNING"
TOO_FEW_WORKERS_ID = "payments_gateway.W003"


@dataclass(frozen=True)
class Finding:
    """One problem: ``level`` (``ERROR``: something does not work; ``WARNING``: it cannot be verified, or will
    stop working), the ``part`` looked at (``settings``, ``rpc``, ``scheme``, ``broker``, ``cluster``,
    ``schedule``, ``scanner``, ``deliveries``), the ``subject`` (a network, a URL, a schedule...) and the words."""

    level: str
    part: str
    subject: str
    message: str

    def line(self) -> str:
        return f"{self.level} {self.part} {self.subject}: {self.message}"


@dataclass
class Report:
    """The findings, and what was looked at (for the summary line when all is well)."""

    schedules: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)

    def add(self, level: str, part: str, subject: str, message: str) -> None:
        self.findings.append(Finding(level, part, subject, message))

    @property
    def exit_code(self) -> int:
        """2 with any error, 1 with only warnings, 0 when nothing is wrong (the monitoring plugins' convention)."""
        if any(f.level == ERROR for f in self.findings):
            return 2
        return 1 if self.findings else 0

    def summary(self) -> str:
        s = self.seen
        return (
            f"OK: {s.get('networks', 0)} networks ({s.get('urls', 0)} RPC URLs), {s.get('clusters', 0)} django-q2 "
            f"cluster(s) with {s.get('workers', 0)} workers, {s.get('schedules', 0)} schedules, scanners within "
            f"{int(gateway_settings.SCANNER_LAG_LIMIT.total_seconds())} s, no webhook delivery backlog"
        )


def run_check(schedules: list[str], now: datetime | None = None) -> Report:
    """Look at everything (module docstring), with ``schedules`` the names of the schedules that must exist
    (``payments_gateway.schedules.SCHEDULES``); never raises for what it finds."""
    now = now or timezone.now()
    report = Report(schedules=schedules)
    if not _settings(report):
        return report  # the rest reads the settings
    heads = {}
    for config in gateway_settings.networks.values():
        head = _network(report, config)
        if head is not None:
            heads[config.name] = head
    _broker(report)
    if problem := probes.database_problem():
        report.add(ERROR, "database", "default", f"unreachable: {problem}")
        return report  # schedules, scanners and deliveries are read from it
    try:
        for look in (_schedules, _scanners, _deliveries):
            look(report, now, heads)
    except DatabaseError as exc:  # tables missing: migrate was not run
        report.add(ERROR, "database", "default", f"{type(exc).__name__}: {exc}: has `manage.py migrate` run?")
    return report


def _settings(report: Report) -> bool:
    """The app's system checks: errors are ERROR findings; W003 (fewer cluster workers than networks + 1, which
    leaves deliveries and expiry waiting behind the followers) a WARNING finding. The other warnings (no xpub, no
    relayer key) are reported by the deposit scheme's own probe, with what it found on chain."""
    messages = checks.run_checks(tags=["payments_gateway"])
    errors = [m for m in messages if m.is_serious()]
    for message in errors:
        report.add(ERROR, "settings", message.id or "-", str(message.msg))
    for message in messages:
        if message.id == TOO_FEW_WORKERS_ID:  # checks.TOO_FEW_WORKERS_ID (checks.py sits above this layer)
            report.add(WARNING, "settings", message.id, str(message.msg))
    return not errors


def _network(report: Report, config: NetworkConfig) -> int | None:
    """Each RPC URL and the deposit scheme of ``config``; returns the chain head when a URL answered."""
    report.seen["networks"] = report.seen.get("networks", 0) + 1
    client = client_for(config)
    answering = False
    for url in config.rpc_urls:
        report.seen["urls"] = report.seen.get("urls", 0) + 1
        subject = f"{config.name} {shown_url(url)}"
        try:
            chain_id = client.probe_chain_id(url)
        except RPCError as exc:
            report.add(ERROR, "rpc", subject, f"unreachable: {_without_path(str(exc), url)}")
            continue
        if chain_id != config.chain_id:
            report.add(ERROR, "rpc", subject, f"chain id {chain_id}, expected {config.chain_id}")
            continue
        answering = True
    if not answering:
        report.add(ERROR, "scheme", config.name, "not checked: no RPC URL of the network answers with its chain id")
        return None
    _scheme(report, config)
    try:
        return int(client.call("eth_blockNumber"), 16)
    except (RPCError, TypeError, ValueError) as exc:
        report.add(ERROR, "rpc", config.name, f"the chain head could not be read: {exc}")
        return None


def _scheme(report: Report, config: NetworkConfig) -> None:
    from ..deposits import scheme_for

    try:
        scheme = scheme_for(config.name)
        scheme.address(0)
        problems = scheme.check()
    except Exception as exc:  # a third-party scheme may raise anything: it is this network's finding
        report.add(ERROR, "scheme", config.name, f"{config.deposit_scheme}: {type(exc).__name__}: {exc}")
        return
    for problem in problems:
        report.add(ERROR, "scheme", config.name, problem)


def _broker(report: Report) -> None:
    name = probes.broker_name()
    try:
        queue = probes.broker()
    except Exception as exc:
        report.add(ERROR, "broker", name, f"cannot be used: {type(exc).__name__}: {exc}")
        queue = None
    problem = probes.broker_problem(queue) if queue is not None else "not built"
    if problem is not None:
        if queue is not None:
            report.add(ERROR, "broker", name, f"unreachable: {problem}")
        report.add(ERROR, "cluster", "django-q2", "not checked: the broker is unreachable")
    else:
        _clusters(report, queue)


def _schedules(report: Report, now: datetime, heads: dict[str, int]) -> None:
    for schedule, text in probes.schedule_problems(report.schedules, now).items():
        report.add(ERROR, "schedule", schedule, text)
    report.seen["schedules"] = len(report.schedules)


def _clusters(report: Report, queue: object) -> None:
    try:
        found = probes.clusters(queue)
    except Exception as exc:
        report.add(ERROR, "cluster", "django-q2", f"statistics unreadable: {type(exc).__name__}: {exc}")
        return
    if not found.visible:
        report.add(
            WARNING, "cluster", "django-q2",
            f"cannot tell whether a cluster runs: with this broker django-q2 keeps its statistics in {found.where}, "
            "which only its own process can read. Set Q_CLUSTER['cache'] to a shared cache (Redis, the database) "
            "or use the Redis broker; overdue schedules are still reported.",
        )  # fmt: skip
        return
    if not found.count:
        report.add(ERROR, "cluster", "django-q2",
                   f"no cluster is running (none reported to {found.where}): start `manage.py qcluster`")  # fmt: skip
    report.seen["clusters"], report.seen["workers"] = found.count, found.workers


def _scanners(report: Report, now: datetime, heads: dict[str, int]) -> None:
    for lag in probes.scanner_lags(now, heads):
        if lag.network not in heads:
            continue  # its RPC finding says why
        if problem := lag.problem:
            report.add(ERROR, "scanner", lag.network, problem)
        elif lag.last_error:
            report.add(WARNING, "scanner", lag.network, f"the last scan failed: {lag.last_error[:300]}")


def _deliveries(report: Report, now: datetime, heads: dict[str, int]) -> None:
    limit = gateway_settings.DELIVERY_DELAY_LIMIT
    for backlog in probes.delivery_backlog(now, older_than=limit):
        waited = int((now - backlog.oldest).total_seconds())
        report.add(
            ERROR, "deliveries", f"{backlog.endpoint} {shown_url(backlog.url)}",
            f"{backlog.count} webhook deliveries due and not attempted, the oldest for {waited} s (limit "
            f"DELIVERY_DELAY_LIMIT {int(limit.total_seconds())} s): is a django-q2 cluster running?",
        )  # fmt: skip


def _without_path(text: str, url: str) -> str:
    """``text`` (an HTTP library's error, which quotes the URL's path) without ``url``'s path and query, where
    providers put API keys."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    secret = parts.path + (f"?{parts.query}" if parts.query else "")
    return text.replace(secret, "/…") if secret.strip("/") else text

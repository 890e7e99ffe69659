"""System checks (``manage.py check``): the same validation as the settings object, as E### messages.

Each key of ``DEFAULTS`` has its own id, ``payments_gateway.E001`` for the first key onwards (append new keys at
the end of ``DEFAULTS`` so the ids stay stable). The message is the text of the ``ImproperlyConfigured`` that
reading the key raises, so an operator sees the same words at startup and in ``manage.py check``.

Pluggable parts named by a setting (the rate provider, webhook sources, deposit schemes) are built by their own
modules; this module asks each to build once and reports its error under the setting's id.

Beyond the settings: ``payments_gateway.E101`` when the default database is a SQLite library too old for the app;
``payments_gateway.E102`` / ``W002`` when a forwarder network's relayer key (from the environment) is not a key /
not set; ``payments_gateway.W003`` when django-q2 has fewer workers than networks + 1 (each network's follower
holds a worker).
"""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections

from .conf import DEFAULTS, SETTING_NAME, gateway_settings, parse_network, unknown_keys_message

# One id per key, so an operator can look an error up and silence nothing by accident.
CHECK_IDS = {name: f"payments_gateway.E{index:03d}" for index, name in enumerate(DEFAULTS, start=1)}
NOT_A_DICT_ID = "payments_gateway.E099"
UNKNOWN_KEY_ID = "payments_gateway.E100"
XPUB_MISSING_ID = "payments_gateway.W001"
SQLITE_TOO_OLD_ID = "payments_gateway.E101"
RELAYER_KEY_INVALID_ID = "payments_gateway.E102"
RELAYER_KEY_MISSING_ID = "payments_gateway.W002"
TOO_FEW_WORKERS_ID = "payments_gateway.W003"
# INSERT ... RETURNING (storing incoming webhook events in one statement) arrived in SQLite 3.35; Django 5.2
# itself accepts 3.31, so its own check lets an older library through.
MIN_SQLITE_VERSION = (3, 35, 0)


@checks.register("payments_gateway")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every mistake in ``PAYMENTS_GATEWAY`` at once (reading the settings stops at the first one)."""
    from django.conf import settings

    try:
        user = gateway_settings.user_settings
    except ImproperlyConfigured as exc:
        user = getattr(settings, SETTING_NAME)
        if not isinstance(user, dict):
            return [checks.Error(str(exc), id=NOT_A_DICT_ID)]
        # Otherwise the error was unknown keys: reported below, beside the other mistakes.
    errors: list[checks.CheckMessage] = []
    unknown = sorted(set(user) - set(DEFAULTS), key=str)
    if unknown:
        errors.append(checks.Error(unknown_keys_message(unknown), id=UNKNOWN_KEY_ID))
    for name in DEFAULTS:
        if name == "XPUB" and user.get("XPUB") is None:
            errors.append(
                checks.Warning(
                    f"{SETTING_NAME}['XPUB'] is not set: no deposit address can be derived.",
                    hint="Set it to the account-level xpub (m/44'/60'/0') of the merchant wallet.",
                    id=XPUB_MISSING_ID,
                )
            )
            continue
        if name == "NETWORKS" and isinstance(user.get(name), dict):
            # One message per broken network, so fixing one does not reveal the next only on the next run.
            for network, spec in user[name].items():
                errors.extend(_errors(CHECK_IDS[name], parse_network, network, spec))
            continue
        errors.extend(_errors(CHECK_IDS[name], gateway_settings.validate, name, user.get(name, DEFAULTS[name])))
    errors.extend(_plugin_errors(user))
    return errors


def _plugin_errors(user: dict[str, Any]) -> list[checks.CheckMessage]:
    """Pluggable parts named by a setting (built lazily by their own modules), each reported under its key's id:
    the rate provider, every webhook source and every network's deposit scheme."""
    from .pricing import build_rate_provider
    from .webhooks.incoming.sources import SOURCES_KEY, parse_sources

    errors: list[checks.CheckMessage] = []
    provider, options = user.get("RATE_PROVIDER", DEFAULTS["RATE_PROVIDER"]), user.get("RATE_PROVIDER_OPTIONS", {})
    options_ok = not _errors(
        CHECK_IDS["RATE_PROVIDER_OPTIONS"], gateway_settings.validate, "RATE_PROVIDER_OPTIONS", options
    )
    if isinstance(provider, str) and provider and options_ok:
        errors += _errors(CHECK_IDS["RATE_PROVIDER"], build_rate_provider, provider, options)
    if isinstance(user.get("WEBHOOK_SOURCES", {}), dict):
        errors += _errors(CHECK_IDS["WEBHOOK_SOURCES"], parse_sources, user.get("WEBHOOK_SOURCES", {}), SOURCES_KEY)
    networks = user.get("NETWORKS")
    for name, spec in networks.items() if isinstance(networks, dict) else ():
        if isinstance(spec, dict) and isinstance(spec.get("deposit_scheme", "xpub"), str):
            errors += _errors(CHECK_IDS["NETWORKS"], _build_scheme, name, spec)
    return errors


def _build_scheme(name: str, spec: dict[str, Any]) -> None:
    """Load and build a network's deposit scheme (which checks the keys it needs, e.g. the forwarder's treasury);
    a network entry that does not parse is reported already."""
    from .deposits import load_scheme

    scheme = load_scheme(name, spec.get("deposit_scheme", "xpub"))
    try:
        config = parse_network(name, spec)
    except ImproperlyConfigured:
        return
    scheme(config)


@checks.register("payments_gateway")
def check_relayer_key(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """On a forwarder network, sweeps are signed with the key in the environment variable ``RELAYER_KEY_ENV``
    names: an error when it holds something that is not a private key, a warning when it is not set (this
    process cannot sweep). The messages name the variable, never its value."""
    from .deposits.relayer import relayer_key_is_set, relayer_key_problem

    try:
        networks = gateway_settings.networks
        gateway_settings.validate("RELAYER_KEY_ENV", gateway_settings.RELAYER_KEY_ENV)
    except ImproperlyConfigured:
        return []  # reported by check_settings
    forwarders = sorted(name for name, config in networks.items() if config.deposit_scheme == "forwarder")
    problem = relayer_key_problem() if forwarders else None
    if problem is None:
        return []
    hint = f"Sweeps of {', '.join(forwarders)} are signed with it; the key needs only gas money."
    if relayer_key_is_set():
        return [checks.Error(problem, hint=hint, id=RELAYER_KEY_INVALID_ID)]
    return [checks.Warning(problem, hint=hint, id=RELAYER_KEY_MISSING_ID)]


@checks.register("payments_gateway")
def check_workers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A warning when ``Q_CLUSTER["workers"]`` is below the number of networks + 1: each network's follower
    (``scanning/follow.py``) holds one worker for as long as it runs, and webhooks, expiry and renewals need one
    more; with fewer, a network waits for a free worker and payments are seen late."""
    import os

    from django.conf import settings

    cluster = getattr(settings, "Q_CLUSTER", None)
    try:
        networks = len(gateway_settings.networks)
    except ImproperlyConfigured:
        return []  # reported by check_settings
    if not isinstance(cluster, dict) or not networks:
        return []
    workers = cluster.get("workers") or os.cpu_count() or 4  # django-q2's own default
    if not isinstance(workers, int) or workers >= networks + 1:
        return []
    return [
        checks.Warning(
            f"Q_CLUSTER['workers'] is {workers}, fewer than the {networks} networks + 1: each network's scanner "
            "(a follower task) holds a worker while it runs, so some networks or the other tasks would wait.",
            hint=f"Set Q_CLUSTER['workers'] to at least {networks + 1}.",
            id=TOO_FEW_WORKERS_ID,
        )
    ]


@checks.register("payments_gateway")
def check_database(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """An error when the default database is SQLite older than :data:`MIN_SQLITE_VERSION`.

    Reads the version of the SQLite library Python is linked against; it opens no connection.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "sqlite":
        return []
    found = tuple(connection.Database.sqlite_version_info)  # type: ignore[attr-defined]  # the sqlite3 module
    if found >= MIN_SQLITE_VERSION:
        return []
    need = ".".join(map(str, MIN_SQLITE_VERSION[:2]))
    return [
        checks.Error(
            f"The default database is SQLite {'.'.join(map(str, found))}, but payments_gateway needs SQLite {need} "
            "or newer (it stores incoming webhook events with INSERT ... RETURNING).",
            hint="Run Python linked against a newer SQLite library, or use PostgreSQL (DATABASE_URL=postgres://...).",
            id=SQLITE_TOO_OLD_ID,
        )
    ]


def _errors(check_id: str, validate: Any, *args: Any) -> list[checks.CheckMessage]:
    try:
        validate(*args)
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id=check_id)]
    return []

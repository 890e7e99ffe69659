"""System checks (``manage.py check``): the same validation as the settings object, as E### messages."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .conf import DEFAULTS, SETTING_NAME, gateway_settings

# One id per key, so an operator can look an error up and silence nothing by accident.
CHECK_IDS = {name: f"payments_gateway.E{index:03d}" for index, name in enumerate(DEFAULTS, start=1)}
UNKNOWN_KEY_ID = "payments_gateway.E100"


@checks.register("payments_gateway")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    try:
        user = gateway_settings.user_settings
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id=UNKNOWN_KEY_ID)]
    unknown = sorted(set(user) - set(DEFAULTS))
    if unknown:
        errors.append(
            checks.Error(
                f"{SETTING_NAME} has unknown keys {unknown}.",
                hint=f"Known keys: {', '.join(DEFAULTS)}.",
                id=UNKNOWN_KEY_ID,
            )
        )
    for name in DEFAULTS:
        if name == "XPUB" and "XPUB" not in user:
            errors.append(
                checks.Warning(
                    f"{SETTING_NAME}['XPUB'] is not set: no deposit address can be derived.",
                    hint="Set it to the account-level xpub (m/44'/60'/0') of the merchant wallet.",
                    id="payments_gateway.W001",
                )
            )
            continue
        try:
            getattr(gateway_settings, name)
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(str(exc), id=CHECK_IDS[name]))
    return errors

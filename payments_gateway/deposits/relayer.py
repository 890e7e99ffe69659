"""The relayer: the account that signs forwarder sweeps. Its key comes from the environment, never elsewhere.

The key holds gas money only: a sweep can send the deposits nowhere but the treasury, so whoever holds it can
at worst waste that gas. Still it is a key: it is read from the environment variable that
``PAYMENTS_GATEWAY["RELAYER_KEY_ENV"]`` names (default ``PAYMENTS_GATEWAY_RELAYER_KEY``), only by the process
that signs, and is never a setting, never stored in the database, and never written to a log or an error message
(errors name the variable, not its value).
"""

from __future__ import annotations

import os
import re
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..conf import gateway_settings

_KEY_RE = re.compile(r"(0x)?[0-9a-fA-F]{64}")


class RelayerKeyError(ImproperlyConfigured):
    """The relayer key is missing or is not a private key (the message names the variable, never the value)."""


def relayer_account() -> Any:
    """The relayer's ``eth_account`` ``LocalAccount`` (``.address``, ``.sign_transaction``), from the environment;
    :class:`RelayerKeyError` when the variable is unset or does not hold a private key."""
    from eth_account import Account

    variable = gateway_settings.RELAYER_KEY_ENV
    raw = os.environ.get(variable, "").strip()
    if not raw:
        raise RelayerKeyError(
            f"the environment variable {variable} (PAYMENTS_GATEWAY['RELAYER_KEY_ENV']) is not set: sweeps cannot be "
            "signed. Set it, in the environment of the processes that sweep (django-q2 workers, "
            "payments_gateway_sweep), to the private key of an account that holds only gas money."
        )
    problem = None if _KEY_RE.fullmatch(raw) else "is not a private key (64 hex digits, optionally 0x-prefixed)"
    if problem is None:
        try:
            return Account.from_key(raw if raw.startswith("0x") else "0x" + raw)
        except Exception:  # eth_keys refuses 0 and values above the curve order; its message would echo the key
            problem = "is not a valid secp256k1 private key (zero or above the curve order)"
    raise RelayerKeyError(
        f"the environment variable {variable} {problem}: set it to the relayer account's private key (an "
        "account that holds only gas money; never an address, a mnemonic or the treasury's key)."
    )


def relayer_key_problem() -> str | None:
    """Why sweeps cannot be signed in this process, or ``None`` when the relayer key is usable."""
    try:
        relayer_account()
    except RelayerKeyError as exc:
        return str(exc)
    return None


def relayer_key_is_set() -> bool:
    """Whether the relayer key's variable is set at all (a wrong value is an error, a missing one a warning)."""
    return bool(os.environ.get(gateway_settings.RELAYER_KEY_ENV, "").strip())

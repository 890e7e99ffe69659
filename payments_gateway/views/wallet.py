"""What the "Pay with wallet" button (``static/payments_gateway/wallet.js``) needs from the server: the chain to
switch to or add, where to send what, and every sentence it may show, in the customer's language.

The script talks to the browser wallet (EIP-1193, found through EIP-6963 announcements or ``window.ethereum``); the
server never sees the wallet. The amount it sends is read from the page's live status at the moment of sending
(``amount_to_pay``, in base units), so a top-up after a partial payment sends exactly the remainder.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils import formats
from django.utils.translation import gettext as _

from ..conf import AssetConfig, NetworkConfig
from ..models import CheckoutSession


def wallet_context(session: CheckoutSession, network: NetworkConfig, asset: AssetConfig) -> dict[str, Any]:
    """``wallet``: the data attributes of the wallet box; ``wallet_messages``: its sentences, as JSON (an attribute
    too: the page has no inline script, not even a data block)."""
    return {
        "wallet": {
            "chain-id": network.chain_id,
            "chain-name": network.display_name,
            "rpc-url": network.wallet_rpc_url or "",
            "explorer-url": network.explorer_url or "",
            "native-symbol": network.native.symbol,
            "native-decimals": network.native.decimals,
            "asset": asset.symbol,
            "decimals": asset.decimals,
            "token": asset.address or "",
            "to": session.address or "",
            "decimal-separator": formats.get_format("DECIMAL_SEPARATOR"),
        },
        "wallet_messages": json.dumps(wallet_messages(), ensure_ascii=False),
    }


def wallet_messages() -> dict[str, str]:
    """The script's sentences in the active language; ``%(name)s`` placeholders are filled in by the script."""
    return {
        "pay_with": _("Pay with %(wallet)s"),
        "browser_wallet": _("browser wallet"),
        "connecting": _("Open your wallet to connect it to this page…"),
        "rejected_connect": _("You declined the connection in your wallet. Nothing was sent."),
        "switching": _("Confirm the switch to %(network)s in your wallet…"),
        "rejected_switch": _(
            "Your wallet stayed on another network. Switch it to %(network)s (chain %(chain)s) to pay here."
        ),
        "wrong_chain": _(
            "Your wallet is on another network (chain %(current)s). Switch it to %(network)s (chain %(chain)s) "
            "and try again."
        ),
        "add_chain": _(
            "Your wallet does not know %(network)s. Add this network (chain id %(chain)s) in your wallet, then try "
            "again."
        ),
        "insufficient_native": _(
            "Not enough %(asset)s in your wallet: this payment needs %(amount)s %(asset)s plus a small network fee, "
            "and the account holds %(balance)s %(asset)s."
        ),
        "insufficient_token": _(
            "Not enough %(asset)s in your wallet: this payment needs %(amount)s %(asset)s, and the account holds "
            "%(balance)s %(asset)s."
        ),
        "no_fee": _("Your wallet has no %(asset)s to pay the network fee of this payment."),
        "confirm": _("Confirm the payment of %(amount)s %(asset)s in your wallet…"),
        "rejected_send": _("You rejected the payment in your wallet. Nothing was sent; you can try again."),
        "sent": _("Payment sent. It shows here as soon as the network sees it."),
        "transaction": _("Transaction"),
        "gone": _(
            "Your wallet is no longer available (it was closed, locked or removed). Open it and try again, or pay "
            "with the QR code or the address."
        ),
        "busy": _("Your wallet already has a request waiting: open it to continue."),
        "nothing_to_pay": _("Nothing is left to pay."),
        "failed": _("Your wallet could not send the payment: %(reason)s"),
    }

"""Serializers of the reconciliation API: transfers (with their resolution) and refunds.

What a transfer or a refund looks like comes from ``services/payloads.py`` (the same description the events
carry); the fields are declared here so the OpenAPI schema describes them.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Refund, RefundStatus, Transfer, TransferReason, TransferResolution
from ..services.payloads import refund_payload, transfer_payload
from ..services.refunds import claim_token, refund_uri
from .strict import StrictSerializer

RESOLVE_ACTIONS = ["credit", "refund", "dismiss"]


class RefundSerializer(serializers.Serializer):
    """A refund as the API shows it: its event payload, with the claim link and the EIP-681 URI."""

    object = serializers.CharField(default="refund")
    uuid = serializers.UUIDField()
    status = serializers.ChoiceField(choices=RefundStatus.choices)
    session = serializers.UUIDField(allow_null=True, help_text="The session refunded (or null).")
    transfer = serializers.IntegerField(allow_null=True, help_text="The unmatched transfer refunded (or null).")
    network = serializers.CharField()
    asset = serializers.CharField(help_text="A configured symbol, or the contract address of an unknown token.")
    amount = serializers.CharField(help_text="Base units, as a string.")
    amount_display = serializers.CharField(allow_null=True)
    address = serializers.CharField(allow_null=True, help_text="Where the refund goes; null until known.")
    reason = serializers.CharField()
    tx_hash = serializers.CharField(allow_null=True, help_text="The payment, once seen on chain.")
    created = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    claim_url = serializers.CharField(
        allow_null=True,
        help_text="While awaiting_address: the signed link where the customer gives their address (valid for "
        "REFUND_LINK_TTL from this answer).",
    )
    payment_uri = serializers.CharField(
        allow_null=True, help_text="While initiated: the EIP-681 URI for the merchant's wallet to pay the refund."
    )

    def to_representation(self, refund: Refund) -> dict[str, Any]:
        data = refund_payload(refund)
        request = self.context.get("request")
        claim = None
        if refund.status == RefundStatus.AWAITING_ADDRESS:
            path = reverse("payments_gateway:refund-claim", args=[claim_token(refund)])
            claim = request.build_absolute_uri(path) if request else path
        uri = refund_uri(refund) if refund.status == RefundStatus.INITIATED else None
        return data | {"claim_url": claim, "payment_uri": uri}


class TransferResourceSerializer(serializers.Serializer):
    """A transfer seen on chain, with why it settles nothing (if so) and what was done about it."""

    object = serializers.CharField(default="transaction")
    id = serializers.IntegerField()
    network = serializers.CharField()
    tx_hash = serializers.CharField()
    log_index = serializers.IntegerField()
    block_number = serializers.IntegerField()
    block_hash = serializers.CharField()
    # "from" is a keyword: declared below under its JSON name.
    to = serializers.CharField()
    asset = serializers.CharField(help_text="A configured symbol, or the contract address of an unknown token.")
    amount = serializers.CharField(help_text="Base units, as a string.")
    confirmations = serializers.IntegerField()
    status = serializers.CharField()
    late = serializers.BooleanField()
    session = serializers.UUIDField(allow_null=True, help_text="The session it pays, or was meant for.")
    reason = serializers.ChoiceField(choices=[("", "pays its session"), *TransferReason.choices])
    resolution = serializers.ChoiceField(choices=[("", "pays its session"), *TransferResolution.choices])
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolution_note = serializers.CharField()
    refunds = RefundSerializer(many=True)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.CharField(help_text="The sender (empty for ETH found by balance).")
        return fields

    def to_representation(self, t: Transfer) -> dict[str, Any]:
        refunds = RefundSerializer(t.refunds.all(), many=True, context=self.context).data
        return transfer_payload(t) | {
            "resolved_at": t.resolved_at.isoformat() if t.resolved_at else None,
            "resolution_note": t.resolution_note,
            "refunds": refunds,
        }


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "pattern": "^[0-9]{1,78}$", "description": 'base units, e.g. "21000000"'},
            {"type": "integer", "minimum": 0},
        ]
    }
)
class BaseUnitsField(serializers.JSONField):
    """An amount in base units: a string of digits or an integer (checked by the refund service)."""


class ResolveSerializer(StrictSerializer):
    """``POST /transfers/<id>/resolve/``: credit it to a session, refund it, or dismiss it."""

    action = serializers.ChoiceField(choices=RESOLVE_ACTIONS)
    session = serializers.UUIDField(required=False, help_text="credit: the session it pays (same network and asset).")
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Why (required to dismiss)."
    )
    amount = BaseUnitsField(required=False, help_text="refund: base units (default: all of it).")
    address = serializers.CharField(
        required=False, allow_blank=True, max_length=100,
        help_text="refund: where to (without it the refund awaits the customer's address: send them claim_url).",
    )  # fmt: skip


class RefundCreateSerializer(StrictSerializer):
    """``POST /refunds/``: a refund for a session or an unmatched transfer."""

    session = serializers.UUIDField(required=False, help_text="The session to refund (or give transfer).")
    transfer = serializers.IntegerField(required=False, help_text="The unmatched transfer to refund.")
    amount = BaseUnitsField(
        required=False,
        help_text='Base units, a string of digits ("21000000") or an integer. Default: an overpaid session\'s '
        "excess, else all that is refundable.",
    )
    address = serializers.CharField(
        required=False, allow_blank=True, max_length=100,
        help_text="EIP-55 (or lowercase) address to refund; without it the refund awaits the customer's address.",
    )  # fmt: skip
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class RefundCancelSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class RefundPaymentSerializer(StrictSerializer):
    tx_hash = serializers.CharField(max_length=100, help_text="The hash of the refund's payment, checked on chain.")

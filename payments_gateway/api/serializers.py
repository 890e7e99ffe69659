"""Request and response shapes of the API. Amounts on chain are strings of base units (exact for uint256)
with a ``*_display`` decimal string beside them; fiat amounts are decimal strings."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..conf import gateway_settings
from ..hotpath import shared_input_fields, shared_output_fields
from ..models import CheckoutSession, Customer, SessionType, SubscriptionInterval, Transfer
from ..qr import qr_data_uri
from ..services.payloads import describe_session
from .strict import JSONObjectField, StrictModelSerializer, StrictSerializer


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "minLength": 1, "maxLength": 40, "pattern": "^[^\\u0000]*$"},
            {"type": "integer"},
        ]
    }
)
class AmountField(serializers.CharField):
    """A fiat amount: a JSON string ("19.99") or an integer (20), never a JSON number with a fraction.

    Python's JSON parser reads ``19.999999999999999`` as the float 20.0; accepting it would charge a price the
    client never wrote. An integer is exact, so it is fine.
    """

    default_error_messages = {"not_exact": 'give the amount as a string, e.g. "19.99" (a JSON number with a '
                                           "fraction is not exact)."}  # fmt: skip

    checks_its_own_type = True

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, bool) or not isinstance(data, str | int):
            self.fail("not_exact")
        return super().to_internal_value(str(data))


class PaymentMethodInputSerializer(StrictSerializer):
    network = serializers.CharField(max_length=40, help_text="A configured network name.")
    asset = serializers.CharField(max_length=12, help_text="ETH, USDC, ... (configured on the network).")


class SessionCreateSerializer(StrictSerializer):
    """``POST /sessions/``: a price (``amount`` + ``currency``) or the ``order`` reference of an existing order;
    ``network`` + ``asset`` for one fixed payment method, or ``payment_methods`` (or neither, or only one of
    network and asset: every configured pair that matches) for the customer to choose on the hosted page."""

    amount = AmountField(
        required=False,
        max_length=40,
        trim_whitespace=False,  # " 19.99" is refused, not guessed at
        help_text='Fiat price as a decimal string of ASCII digits with at most one decimal point, e.g. "19.99".',
    )
    currency = serializers.CharField(required=False, max_length=3, help_text="ISO 4217 code, e.g. USD.")
    order = serializers.CharField(
        required=False, max_length=200, help_text="Reference of an existing unpaid order (instead of amount)."
    )
    reference = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Your order number for a new order."
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=500)
    asset = serializers.CharField(
        required=False, max_length=12, help_text="ETH, USDC, ... (configured on the network). With network: fixed."
    )
    network = serializers.CharField(required=False, max_length=40, help_text="A configured network name.")
    payment_methods = PaymentMethodInputSerializer(
        many=True,
        required=False,
        help_text="What the customer may choose from on the hosted page (instead of network and asset).",
    )
    type = serializers.ChoiceField(choices=SessionType.choices, default=SessionType.PAYMENT)
    success_url = serializers.CharField(
        required=False, allow_blank=True, max_length=2000,
        help_text="May contain {{UUID}}, {{TRANSACTION_TYPE}}, {CHECKOUT_SESSION_ID}.",
    )  # fmt: skip
    cancel_url = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    customer = serializers.UUIDField(required=False, help_text="uuid of an existing customer.")
    metadata = JSONObjectField(required=False, help_text="A JSON object kept with the session.")
    # type "createSubscription" only
    interval = serializers.ChoiceField(
        choices=SubscriptionInterval.choices, required=False,
        help_text='createSubscription: the billing period\'s unit (required with that type).',
    )  # fmt: skip
    interval_count = serializers.IntegerField(
        required=False, help_text="createSubscription: periods of `interval` between bills, 1 to 365 days, 52 "
        "weeks, 12 months or 1 year (default 1).",
    )  # fmt: skip
    customer_email = serializers.EmailField(
        required=False, max_length=254, help_text="createSubscription: the customer's e-mail address for reminders "
        "(a new customer), when no `customer` is given.",
    )  # fmt: skip

    @property
    def fields(self) -> Any:
        # Built once for the class (hotpath.shared_input_fields): none of them reads the request.
        return shared_input_fields(self)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        subscription_fields = [name for name in ("interval", "interval_count", "customer_email") if name in data]
        if data.get("type") == SessionType.CREATE_SUBSCRIPTION:
            if "interval" not in data:
                raise serializers.ValidationError({"interval": ["required for a createSubscription session."]})
        elif subscription_fields:
            raise serializers.ValidationError(
                {subscription_fields[0]: ['only for "type": "createSubscription" sessions.']}
            )
        return data


class DescribedSessionSerializer(serializers.ModelSerializer):
    """A session shown through its one description: a field named like a fact of
    :func:`~payments_gateway.services.payloads.describe_session` takes its value from it (formatted by the
    field, so datetimes look like every other API datetime); other fields read the model as usual."""

    def to_representation(self, instance: CheckoutSession) -> dict[str, Any]:
        facts = describe_session(instance, new=self.context.get("new_session", False))
        data: dict[str, Any] = {}
        for field in shared_output_fields(self):
            name = str(field.field_name)
            if isinstance(field, serializers.SerializerMethodField):
                data[name] = getattr(self, field.method_name)(instance)  # this serializer's own context
                continue
            value = facts[name] if name in facts else field.get_attribute(instance)
            data[name] = None if value is None else field.to_representation(value)
        return data


class OrderSummarySerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    reference = serializers.CharField(help_text="The merchant's own order number.")
    amount = serializers.CharField(help_text="Fiat price, a decimal string.")
    currency = serializers.CharField()


class QuoteSerializer(serializers.Serializer):
    rate = serializers.DecimalField(
        source="quote_rate",
        max_digits=40,
        decimal_places=18,
        allow_null=True,
        help_text="Fiat per one whole unit of the asset (null until a payment method is chosen).",
    )
    source = serializers.CharField(source="quote_source")  # type: ignore[assignment]  # a field named "source"
    quoted_at = serializers.DateTimeField(allow_null=True)
    fiat_amount = serializers.DecimalField(max_digits=24, decimal_places=8)
    fiat_currency = serializers.CharField()


class PaymentMethodSerializer(serializers.Serializer):
    network = serializers.CharField()
    asset = serializers.CharField()
    chain_id = serializers.IntegerField(allow_null=True, help_text="null when the network is no longer configured.")
    decimals = serializers.IntegerField(allow_null=True)


class SessionSerializer(DescribedSessionSerializer):
    """A checkout session as the API shows it. Until the customer chooses a payment method, ``network``,
    ``asset``, ``deposit_address``, the amounts due / remaining and the quote's rate are null."""

    link = serializers.SerializerMethodField(help_text="The hosted checkout page (absolute URL).")
    payment_methods = PaymentMethodSerializer(many=True, help_text="What the customer may pay with.")
    network = serializers.CharField(allow_null=True, help_text="The chosen network (null until chosen).")
    asset = serializers.CharField(allow_null=True, help_text="The chosen asset (null until chosen).")
    deposit_address = serializers.CharField(allow_null=True)
    chain_id = serializers.IntegerField(allow_null=True)
    decimals = serializers.IntegerField(allow_null=True)
    amount_due = serializers.CharField(allow_null=True, help_text="Base units (wei, token units), as a string.")
    amount_due_display = serializers.CharField(allow_null=True)
    amount_received = serializers.CharField(help_text="Confirmed base units received.")
    amount_received_display = serializers.CharField(allow_null=True)
    amount_pending = serializers.CharField(help_text="Base units seen but not yet confirmed.")
    amount_remaining = serializers.CharField(allow_null=True, help_text="Base units still to pay.")
    amount_remaining_display = serializers.CharField(allow_null=True)
    tx_hashes = serializers.ListField(
        child=serializers.CharField(), help_text="Transactions seen paying the session, oldest first."
    )
    quote = QuoteSerializer(source="*")
    payment_uri = serializers.CharField(
        allow_null=True, help_text="EIP-681 URI of the amount still to pay (what the hosted page's QR code encodes)."
    )
    qr_code = serializers.SerializerMethodField(
        help_text="Only with `?include=qr_code` (else null): the QR code of payment_uri as a PNG data URI, for your "
        "own checkout screen; null when nothing is left to pay."
    )
    order = OrderSummarySerializer()
    customer = serializers.UUIDField(allow_null=True, help_text="uuid of the session's customer.")
    subscription = serializers.UUIDField(
        allow_null=True, help_text="uuid of the subscription a createSubscription or renewSubscription session pays."
    )

    class Meta:
        model = CheckoutSession
        fields = [
            "uuid", "link", "type", "status", "payment_status", "expires_at", "payment_methods", "network",
            "chain_id", "asset", "decimals", "deposit_address", "amount_due", "amount_due_display", "amount_received",
            "amount_received_display", "amount_pending", "amount_remaining", "amount_remaining_display",
            "payment_uri", "qr_code", "quote", "tx_hashes",
            "success_url", "cancel_url", "late", "order", "customer", "subscription", "metadata", "created",
            "completed_at", "expired_at", "canceled_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_link(self, session: CheckoutSession) -> str:
        path = reverse("payments_gateway:checkout", args=[session.uuid])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_qr_code(self, session: CheckoutSession) -> str | None:
        if "qr_code" not in self.context.get("include", ()):
            return None  # drawing it is most of the cost of a session: only when asked
        uri = describe_session(session)["payment_uri"]
        return qr_data_uri(uri) if uri else None


class TransferSerializer(serializers.ModelSerializer):
    amount = serializers.CharField(help_text="Base units, as a string.")
    confirmations_required = serializers.SerializerMethodField()

    class Meta:
        model = Transfer
        fields = [
            "tx_hash", "log_index", "block_number", "from_address", "to_address", "asset", "amount",
            "confirmations", "confirmations_required", "status", "late", "detected_at", "confirmed_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_confirmations_required(self, transfer: Transfer) -> int | None:
        network = gateway_settings.networks.get(transfer.network)
        return network.confirmations if network else None


class TransactionStatusSerializer(DescribedSessionSerializer):
    """``GET /transactions/<uuid>/status/``: where the payment of a session stands, with its transfers."""

    network = serializers.CharField(allow_null=True, help_text="null until the customer chooses.")
    asset = serializers.CharField(allow_null=True, help_text="null until the customer chooses.")
    amount_due = serializers.CharField(allow_null=True)
    amount_received = serializers.CharField()
    amount_pending = serializers.CharField()
    amount_remaining = serializers.CharField(allow_null=True)
    confirmations_required = serializers.IntegerField(allow_null=True)
    transfers = TransferSerializer(many=True, read_only=True)

    class Meta:
        model = CheckoutSession
        fields = [
            "uuid", "type", "status", "payment_status", "network", "asset", "amount_due", "amount_received",
            "amount_pending", "amount_remaining", "confirmations_required", "late", "expires_at", "transfers",
        ]  # fmt: skip
        read_only_fields = fields


class CustomerSerializer(StrictModelSerializer):
    metadata = JSONObjectField(required=False, help_text="A JSON object kept with the customer.")

    class Meta:
        model = Customer
        fields = ["uuid", "email", "name", "metadata", "created", "updated"]
        read_only_fields = ["uuid", "created", "updated"]

    def validate_metadata(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object.")
        return value

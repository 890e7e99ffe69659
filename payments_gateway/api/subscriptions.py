"""API views of subscriptions: list (filters ``status`` and ``customer``), retrieve, cancel. Thin: the services do
the work. Subscriptions are created through ``POST /sessions/`` with ``"type": "createSubscription"``."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ..models import Subscription, SubscriptionInterval, SubscriptionStatus
from ..services.payloads import describe_subscription
from ..services.subscriptions import cancel_subscription
from .checkout import ERRORS, IDEMPOTENCY_PARAMETER, GatewayAPIMixin
from .idempotency import idempotent
from .pagination import Pagination
from .reconcile import CANONICAL_UUID
from .serializers import PaymentMethodSerializer
from .strict import StrictBooleanField, StrictSerializer


class SubscriptionSerializer(serializers.Serializer):
    """A subscription as the API shows it: its one description (``describe_subscription``)."""

    uuid = serializers.UUIDField()
    status = serializers.ChoiceField(choices=SubscriptionStatus.choices)
    customer = serializers.UUIDField(allow_null=True)
    description = serializers.CharField()
    amount = serializers.CharField(help_text="Fiat price of one period, a decimal string.")
    currency = serializers.CharField()
    interval = serializers.ChoiceField(choices=SubscriptionInterval.choices)
    interval_count = serializers.IntegerField()
    payment_methods = PaymentMethodSerializer(
        many=True,
        help_text="What the first session offered; each renewal is in the network and asset of the period before.",
    )
    current_period_start = serializers.DateTimeField(allow_null=True)
    current_period_end = serializers.DateTimeField(
        allow_null=True, help_text="The end of the period paid for: when the next payment is due."
    )
    cancel_at_period_end = serializers.BooleanField()
    canceled_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    cancellation_reason = serializers.CharField(allow_null=True)
    latest_session = serializers.UUIDField(
        allow_null=True, help_text="The session of the newest period: the one to pay while a renewal is open."
    )
    metadata = serializers.JSONField()
    created = serializers.DateTimeField()

    def to_representation(self, instance: Subscription) -> dict[str, Any]:
        facts = describe_subscription(instance)
        return {
            name: None if facts[name] is None else field.to_representation(facts[name])
            for name, field in self.fields.items()
        }


class CancelSerializer(StrictSerializer):
    at_period_end = StrictBooleanField(
        default=False, help_text="true: end when the period paid for ends; false (default): end now."
    )


@extend_schema_view(
    list=extend_schema(
        summary="List subscriptions",
        parameters=[
            OpenApiParameter("status", str, enum=SubscriptionStatus.values, description="Only this status."),
            OpenApiParameter("customer", uuid.UUID, description="Only this customer's (uuid)."),
        ],
        responses={200: SubscriptionSerializer(many=True), 400: ERRORS[400], 401: ERRORS[401]},
    ),
    retrieve=extend_schema(
        summary="Retrieve a subscription", responses={200: SubscriptionSerializer, 401: ERRORS[401], 404: ERRORS[404]}
    ),  # fmt: skip
)
class SubscriptionViewSet(GatewayAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Subscriptions, newest first."""

    serializer_class = SubscriptionSerializer
    lookup_field = "uuid"
    write_scope = "subscriptions:write"
    pagination_class = Pagination

    def get_queryset(self):
        queryset = Subscription.objects.select_related("customer").order_by("-created", "-pk")
        if self.action != "list":
            return queryset
        params = self.request.query_params
        if "status" in params:
            if params["status"] not in SubscriptionStatus.values:
                raise exceptions.ValidationError(
                    {"status": [f"unknown status {params['status']!r}; one of {', '.join(SubscriptionStatus.values)}."]}
                )
            queryset = queryset.filter(status=params["status"])
        if "customer" in params:
            try:
                if not CANONICAL_UUID.fullmatch(params["customer"]):
                    raise ValueError(params["customer"])
                queryset = queryset.filter(customer__uuid=uuid.UUID(params["customer"]))
            except ValueError:
                raise exceptions.ValidationError({"customer": [f"{params['customer']!r} is not a customer uuid."]})
        return queryset

    @extend_schema(
        summary="Cancel a subscription, now or at the end of its period",
        request=CancelSerializer,
        responses={
            200: SubscriptionSerializer,
            400: OpenApiResponse(description="Already canceled, or already canceling at period end: `error.fields`."),
            401: ERRORS[401],
            404: ERRORS[404],
            409: OpenApiResponse(description="Idempotency-Key in use."),
        },
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, *args, **kwargs):
        subscription = self.get_object()
        form = CancelSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            subscription = cancel_subscription(subscription, at_period_end=form.validated_data["at_period_end"])
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict)
        return Response(self.get_serializer(subscription).data)

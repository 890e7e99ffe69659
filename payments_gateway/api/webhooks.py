"""API for outgoing webhooks: ``webhook-endpoints/`` (secret shown once, test events, secret rotation) and
``events/`` (list, retrieve with the delivery log, redeliver)."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from payments_gateway.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from payments_gateway.models.outgoing import EVENT_TYPES
from payments_gateway.webhooks.outgoing import delivery as delivery_service
from payments_gateway.webhooks.outgoing import signing, ssrf

from .checkout import GatewayAPIMixin


class WebhookEndpointViewSet(GatewayAPIMixin, viewsets.ModelViewSet):
    """Endpoints that receive signed events. ``POST`` answers the ``secret`` once; it is never shown again."""

    queryset = WebhookEndpoint.objects.all()
    lookup_field = "uuid"

    def get_serializer_class(self):
        if self.action == "test":
            return TestEventSerializer
        if self.action == "rotate_secret":
            return RotateSecretSerializer
        return WebhookEndpointSerializer

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = serializer.save()
        return Response({**serializer.data, "secret": endpoint.secret}, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def test(self, request, uuid=None):
        """Send a sample event of any type (``{"type": "payment.completed"}``) to this endpoint only."""
        endpoint = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = delivery_service.send_test_event(endpoint, serializer.validated_data["type"])
        return Response(EventSerializer(event).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, uuid=None):
        """New secret (shown once); the old one stays valid for ``overlap_seconds`` (default: the setting)."""
        endpoint = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        seconds = serializer.validated_data.get("overlap_seconds")
        overlap = None if seconds is None else timedelta(seconds=seconds)
        secret = signing.rotate_secret(endpoint, overlap=overlap)
        return Response(
            {
                "uuid": str(endpoint.uuid),
                "secret": secret,
                "previous_secret_expires": serializers.DateTimeField().to_representation(
                    endpoint.previous_secret_expires
                ),
            }
        )


class EventViewSet(GatewayAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Events, newest first, with each delivery and its attempts. ``?type=payment.completed`` filters."""

    pagination_class = type("EventPagination", (PageNumberPagination,), {"page_size": 50})

    def get_queryset(self):
        events = Event.objects.prefetch_related("deliveries__endpoint", "deliveries__attempt_log")
        event_type = self.request.query_params.get("type")
        return events.filter(type=event_type) if event_type else events

    def get_serializer_class(self):
        return RedeliverSerializer if self.action == "redeliver" else EventSerializer

    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        """Send the event again (same ``webhook-id``): to ``{"endpoint": uuid}``, or to every endpoint it went to."""
        event = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint_uuid = serializer.validated_data.get("endpoint")
        endpoints = None
        if endpoint_uuid is not None:
            endpoints = [get_object_or_404(WebhookEndpoint, uuid=endpoint_uuid)]
        elif not event.deliveries.exists():
            raise serializers.ValidationError({"endpoint": "This event has no deliveries: name an endpoint."})
        with transaction.atomic():
            delivery_service.redeliver(event, endpoints)
        event = self.get_queryset().get(pk=event.pk)
        return Response(EventSerializer(event).data, status=status.HTTP_202_ACCEPTED)


# --- serializers ----------------------------------------------------------------------------------------------


class WebhookEndpointSerializer(serializers.ModelSerializer):
    enabled_events = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text='Event types to receive; empty or ["*"]: all.',
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "uuid",
            "url",
            "description",
            "enabled_events",
            "active",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "created",
        ]
        read_only_fields = ["uuid", "disabled_reason", "disabled_at", "failing_since", "created"]
        extra_kwargs = {"url": {"validators": []}}

    def validate_url(self, value: str) -> str:
        try:
            ssrf.validate_endpoint_url(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages)
        return value

    def validate_enabled_events(self, value: list[str]) -> list[str]:
        return validate_event_types(value)

    def update(self, instance, validated_data):
        if validated_data.get("active") and not instance.active:
            # Re-enabling starts afresh; deliveries held while disabled go out again.
            instance.disabled_reason, instance.disabled_at, instance.failing_since = "", None, None
        return super().update(instance, validated_data)


def validate_event_types(value: list[str]) -> list[str]:
    """Refuse unknown event types, naming them and the known ones."""
    unknown = [t for t in value if t != "*" and t not in EVENT_TYPES]
    if unknown:
        raise serializers.ValidationError(
            f"Unknown event type(s) {', '.join(unknown)}. Known: *, {', '.join(EVENT_TYPES)}."
        )
    return list(dict.fromkeys(value))


class TestEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=EVENT_TYPES, default="payment.completed")


class RotateSecretSerializer(serializers.Serializer):
    overlap_seconds = serializers.IntegerField(min_value=0, max_value=7 * 86400, required=False)


class RedeliverSerializer(serializers.Serializer):
    endpoint = serializers.UUIDField(required=False, help_text="Only to this endpoint (default: all it went to).")


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["started_at", "duration_ms", "status_code", "success", "error", "response_excerpt"]


class DeliverySerializer(serializers.ModelSerializer):
    endpoint = serializers.UUIDField(source="endpoint.uuid")
    url = serializers.CharField(source="endpoint.url")
    attempt_log = AttemptSerializer(many=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "endpoint",
            "url",
            "state",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "attempt_log",
        ]


class EventSerializer(serializers.ModelSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta:
        model = Event
        fields = ["id", "type", "created", "livemode", "data", "deliveries"]
